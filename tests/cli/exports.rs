//! Exports: the example's assignments written to a real PostgreSQL (one transaction per export,
//! history appended) and what happens when an export fails, is interrupted or is read meanwhile.
//! Each Postgres test skips locally without a test database and fails in CI without one.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::{postgres_url, read_assignments, read_json, repo_path, stderr};

/// The example pipeline in a scratch folder beside its data, with `exports` appended.
struct Example {
    dir: TempDir,
    url: String,
}

impl Example {
    fn new(url: &str, exports: &str) -> Self {
        Example::with_features(url, exports, "")
    }

    /// The example with `features` (YAML list items) added after its own.
    fn with_features(url: &str, exports: &str, features: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let text = std::fs::read_to_string(repo_path("pipelines/saas_quarterly.yaml"))
            .unwrap()
            .replacen("\nsegments:\n", &format!("{features}\nsegments:\n"), 1);
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            format!("{text}\nexports:\n{exports}"),
        )
        .unwrap();
        std::os::unix::fs::symlink(repo_path("pipelines/data"), dir.path().join("data")).unwrap();
        Example {
            dir,
            url: url.to_string(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, out: &str) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"));
        command
            .env("NO_COLOR", "1")
            .current_dir(self.path())
            .env("CRM_DATABASE_URL", &self.url)
            .args(["run", "pipeline.yaml", "--quiet", "--out", out]);
        command
    }

    fn run(&self, out: &str) -> Output {
        self.command(out).output().unwrap()
    }

    fn run_ok(&self, out: &str) -> Output {
        let output = self.run(out);
        assert!(output.status.success(), "{}", stderr(&output));
        output
    }

    /// Start a run paused by the debug-only hooks (`variable` = milliseconds).
    fn spawn(&self, out: &str, pauses: &[(&str, &str)]) -> Child {
        let mut command = self.command(out);
        command.envs(pauses.iter().copied());
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command.spawn().unwrap()
    }
}

/// A connection of the test's own, for looking at what the exports wrote.
struct Db {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
        });
        Db { runtime, client }
    }

    fn execute(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap();
    }

    fn rows(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.runtime.block_on(self.client.query(sql, &[])).unwrap()
    }

    /// (rows, smallest run_id, largest run_id) of `table`.
    fn content(&self, table: &str) -> (i64, Option<String>, Option<String>) {
        let row = &self.rows(&format!(
            "SELECT count(*), min(run_id), max(run_id) FROM {table}"
        ))[0];
        (row.get(0), row.get(1), row.get(2))
    }

    /// Whether a backend runs a statement starting with `prefix`.
    fn running(&self, prefix: &str) -> bool {
        let rows = self.rows(&format!(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '{prefix}%' AND pid <> pg_backend_pid()"
        ));
        !rows.is_empty()
    }
}

/// Drop the tables a test uses, left by an earlier local run of it.
fn fresh(db: &Db, tables: &[&str]) {
    for table in tables {
        db.execute(&format!("DROP TABLE IF EXISTS {table}"));
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut Child) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
}

fn postgres_export(table: &str, history: &str) -> String {
    format!(
        "  - name: crm\n    postgres: {{ url: \"${{CRM_DATABASE_URL}}\", table: {table}, history_table: {history} }}\n    features: [active_days_90, last_event_date, revenue_12m]\n"
    )
}

#[test]
fn the_table_holds_the_assignments_customer_by_customer_and_history_appends() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_equal", "exp_equal_history"]);
    let example = Example::new(&url, &postgres_export("exp_equal", "exp_equal_history"));
    example.run_ok("first");

    let (assignments, _) = read_assignments(
        &example.path().join("first/assignments.parquet"),
        "customer_id",
    );
    let rows = db.rows(
        "SELECT customer_id, segment, active_days_90, last_event_date::text, revenue_12m, run_id, as_of::text FROM exp_equal",
    );
    assert_eq!(rows.len(), assignments.len());
    let manifest = read_json(&example.path().join("first/manifest.json"));
    let record = &manifest["exports"][0];
    assert_eq!(record["name"], "crm");
    assert_eq!(record["kind"], "postgres");
    assert_eq!(record["rows"], assignments.len());
    assert!(
        !record["target"].as_str().unwrap().contains("segflow-test"),
        "no password"
    );
    let first_id = record["run_id"].as_str().unwrap().to_string();
    for row in &rows {
        let key: i64 = row.get(0);
        let expected = &assignments[&key];
        assert_eq!(
            expected["segment"],
            row.get::<_, String>(1),
            "customer {key}"
        );
        assert_eq!(
            expected["active_days_90"].as_i64(),
            row.get::<_, Option<i64>>(2)
        );
        assert_eq!(
            expected["last_event_date"].as_str(),
            row.get::<_, Option<&str>>(3)
        );
        assert_eq!(
            expected["revenue_12m"].as_f64(),
            row.get::<_, Option<f64>>(4)
        );
        assert_eq!(row.get::<_, &str>(5), first_id);
        assert_eq!(row.get::<_, &str>(6), "2026-10-01");
    }
    let history = db.content("exp_equal_history");
    assert_eq!(
        history,
        (
            rows.len() as i64,
            Some(first_id.clone()),
            Some(first_id.clone())
        )
    );

    // A second run replaces the table's content and appends a second batch to the history.
    example.run_ok("second");
    let second_id = read_json(&example.path().join("second/manifest.json"))["exports"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first_id, second_id);
    let table = db.content("exp_equal");
    assert_eq!(
        table,
        (
            rows.len() as i64,
            Some(second_id.clone()),
            Some(second_id.clone())
        )
    );
    let batches =
        db.rows("SELECT run_id, count(*) FROM exp_equal_history GROUP BY run_id ORDER BY run_id");
    let batches: Vec<(String, i64)> = batches.iter().map(|r| (r.get(0), r.get(1))).collect();
    let n = rows.len() as i64;
    assert_eq!(batches, vec![(first_id, n), (second_id, n)]);
}

#[test]
fn an_export_killed_mid_copy_or_before_its_commit_leaves_the_old_table() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_killed", "exp_killed_history"]);
    let example = Example::new(&url, &postgres_export("exp_killed", "exp_killed_history"));
    example.run_ok("first");
    let before = db.content("exp_killed");
    let history = db.content("exp_killed_history");

    for (hook, statement) in [
        ("SEGFLOW_TEST_PAUSE_IN_EXPORT_COPY", "COPY segflow_staging"),
        (
            "SEGFLOW_TEST_PAUSE_BEFORE_EXPORT_COMMIT",
            "INSERT INTO \"exp_killed_history\"",
        ),
    ] {
        let mut child = example.spawn("killed", &[(hook, "60000")]);
        wait_until(statement, || db.running(statement));
        kill(&mut child);
        // The server notices the closed connection and rolls the transaction back.
        wait_until("the rollback", || !db.running(statement));
        assert_eq!(db.content("exp_killed"), before, "{hook}");
        assert_eq!(db.content("exp_killed_history"), history, "{hook}");
        assert!(!example.path().join("killed").exists(), "{hook}");
    }
}

#[test]
fn a_concurrent_reader_sees_the_old_content_or_the_new_never_a_mix() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_reader", "exp_reader_history"]);
    let example = Example::new(&url, &postgres_export("exp_reader", "exp_reader_history"));
    example.run_ok("first");
    let (rows, old, _) = db.content("exp_reader");

    let mut child = example.spawn(
        "second",
        &[
            ("SEGFLOW_TEST_PAUSE_IN_EXPORT_COPY", "700"),
            ("SEGFLOW_TEST_PAUSE_BEFORE_EXPORT_COMMIT", "700"),
        ],
    );
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        let (count, min, max) = db.content("exp_reader");
        assert_eq!(count, rows, "a reader saw {count} rows");
        assert_eq!(min, max, "a reader saw two runs at once");
        if seen.last() != Some(&min) {
            seen.push(min);
        }
    }
    assert!(child.wait().unwrap().success());
    let (_, new, _) = db.content("exp_reader");
    assert_ne!(old, new);
    assert_eq!(
        seen.first(),
        Some(&old),
        "the reader saw the old content during the export"
    );
    assert!(seen.len() <= 2, "{seen:?}");
}

#[test]
fn a_wrong_password_fails_with_exit_12_writes_nothing_and_never_shows_the_password() {
    let Some(url) = postgres_url() else { return };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let password = String::from_utf8(config.get_password().unwrap().to_vec()).unwrap();
    let wrong = url.replace(&password, "not-the-password-4711");
    let example = Example::new(
        &wrong,
        &postgres_export("exp_password", "exp_password_history"),
    );
    let output = example.run("out");
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    let text = format!(
        "{}{}",
        stderr(&output),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(text.contains("segflow::export"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("not-the-password-4711"), "{text}");
    assert!(!text.contains(&password), "{text}");
    assert!(!example.path().join("out").exists());
}

#[test]
fn an_unreachable_database_fails_with_exit_12_and_writes_nothing() {
    let example = Example::new(
        "postgres://crm:s3cret-pass@127.0.0.1:1/crm",
        &postgres_export("exp_unreachable", "exp_unreachable_history"),
    );
    let output = example.run("out");
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("export `crm`"), "{text}");
    assert!(!text.contains("s3cret-pass"), "{text}");
    assert!(!example.path().join("out").exists());
    let entries: Vec<PathBuf> = std::fs::read_dir(example.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "only the pipeline and its data: {entries:?}"
    );
}

#[test]
fn a_table_segflow_did_not_create_is_refused_and_left_alone() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_foreign", "exp_foreign_history"]);
    db.execute("CREATE TABLE exp_foreign (customer_id bigint, segment text, note text); INSERT INTO exp_foreign VALUES (1, 'mine', 'keep me')");
    let example = Example::new(&url, &postgres_export("exp_foreign", "exp_foreign_history"));
    let output = example.run("out");
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    assert!(
        crate::support::stderr_unwrapped(&output)
            .contains("exp_foreign exists and segflow did not create it"),
        "{}",
        stderr(&output)
    );
    let rows = db.rows("SELECT note FROM exp_foreign");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, &str>(0), "keep me");
    // Nothing else happened in the refused transaction: the history table was not created.
    assert!(
        db.rows("SELECT to_regclass('exp_foreign_history')::text")[0]
            .get::<_, Option<String>>(0)
            .is_none()
    );
    assert!(!example.path().join("out").exists());
}

fn file_exports() -> &'static str {
    "  - name: segments_csv\n    file: exports/segments.csv\n    features: [active_days_90, revenue_12m]\n  - name: segments_parquet\n    file: exports/segments.parquet\n"
}

#[test]
fn file_exports_hold_the_assignments_and_replace_only_what_segflow_wrote() {
    let example = Example::new("postgres://unused", file_exports());
    example.run_ok("first");
    let exports = example.path().join("exports");
    let (assignments, _) = read_assignments(
        &example.path().join("first/assignments.parquet"),
        "customer_id",
    );
    let (exported, _) = read_assignments(&exports.join("segments.parquet"), "customer_id");
    for (key, row) in &exported {
        assert_eq!(row.len(), 2, "key and segment only");
        assert_eq!(row["segment"], assignments[key]["segment"]);
    }
    assert_eq!(exported.len(), assignments.len());
    let csv = std::fs::read_to_string(exports.join("segments.csv")).unwrap();
    assert!(
        csv.starts_with("customer_id,segment,active_days_90,revenue_12m\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), assignments.len() + 1);
    let manifest = read_json(&example.path().join("first/manifest.json"));
    assert_eq!(manifest["exports"][0]["kind"], "file");
    assert_eq!(manifest["exports"][1]["rows"], assignments.len());

    // Without --replace an existing file is never overwritten: exit 12, nothing written.
    let again = example.run("second");
    assert_eq!(again.status.code(), Some(12), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert!(!example.path().join("second").exists());
    // With --replace, segflow's own file is replaced...
    let mut command = example.command("second");
    let replaced = command.arg("--replace").output().unwrap();
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    // ...but a file the user wrote over it is not.
    std::fs::write(exports.join("segments.csv"), "my own notes\n").unwrap();
    let refused = example.command("third").arg("--replace").output().unwrap();
    assert_eq!(refused.status.code(), Some(12), "{}", stderr(&refused));
    assert!(
        crate::support::stderr_unwrapped(&refused).contains("segflow did not write it"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(exports.join("segments.csv")).unwrap(),
        "my own notes\n"
    );
    assert!(!example.path().join("third").exists());
    let mut names: Vec<String> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".segments.csv.segflow-export",
            ".segments.parquet.segflow-export",
            "segments.csv",
            "segments.parquet"
        ],
        "no staging files or locks are left"
    );
}

#[test]
fn a_failed_export_leaves_no_partial_file_and_no_run_folder() {
    // The file export is written first, then the Postgres export fails: nothing is kept.
    let exports = format!(
        "{}{}",
        file_exports(),
        postgres_export("exp_failed", "exp_failed_history")
    );
    let example = Example::new("postgres://crm:s3cret-pass@127.0.0.1:1/crm", &exports);
    let output = example.run("out");
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    assert!(!example.path().join("out").exists());
    assert!(
        !example.path().join("exports").exists(),
        "the folder created for the file exports is removed with the staged files"
    );
}

#[test]
fn decimals_timestamps_booleans_and_nulls_keep_their_values_in_postgres() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_types"]);
    let features = "  - name: revenue_exact\n    kind: value\n    description: Revenue as an exact decimal.\n    expr: CAST(revenue_12m AS DECIMAL(12, 2)) - 1000\n  - name: last_event_at\n    kind: behavioral\n    description: The latest event, to the microsecond; null without one.\n    aggregate: { source: events, expr: max(ts) }\n";
    let export = "  - name: crm\n    postgres: { url: \"${CRM_DATABASE_URL}\", table: exp_types }\n    features: [revenue_exact, last_event_at, email_reachable]\n";
    let example = Example::with_features(&url, export, features);
    example.run_ok("out");
    let (assignments, types) = read_assignments(
        &example.path().join("out/assignments.parquet"),
        "customer_id",
    );
    assert_eq!(types["revenue_exact"], "Decimal128(23, 2)");
    assert!(
        types["last_event_at"].starts_with("Timestamp("),
        "{types:?}"
    );
    let columns: Vec<(String, String)> = db
        .rows("SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'exp_types'::regclass AND attnum > 0 ORDER BY attnum")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(columns[2], ("revenue_exact".into(), "numeric(23,2)".into()));
    assert_eq!(
        columns[3],
        ("last_event_at".into(), "timestamp without time zone".into())
    );
    assert_eq!(columns[4], ("email_reachable".into(), "boolean".into()));
    let rows = db.rows("SELECT customer_id, revenue_exact::text, last_event_at::text, email_reachable FROM exp_types");
    assert_eq!(rows.len(), assignments.len());
    let (mut negative, mut nulls) = (0, 0);
    for row in &rows {
        let key: i64 = row.get(0);
        let expected = &assignments[&key];
        let revenue: String = row.get(1);
        assert_eq!(
            expected["revenue_exact"].as_str(),
            Some(revenue.as_str()),
            "customer {key}"
        );
        negative += usize::from(revenue.starts_with('-'));
        let at: Option<String> = row.get(2);
        let parse =
            |text: &str, format: &str| chrono::NaiveDateTime::parse_from_str(text, format).unwrap();
        match (expected["last_event_at"].as_str(), at.as_deref()) {
            (Some(arrow), Some(postgres)) => assert_eq!(
                parse(arrow, "%Y-%m-%dT%H:%M:%S%.f"),
                parse(postgres, "%Y-%m-%d %H:%M:%S%.f"),
                "customer {key}"
            ),
            (None, None) => nulls += 1,
            other => panic!("customer {key}: {other:?}"),
        }
        assert_eq!(
            expected["email_reachable"].as_bool(),
            row.get::<_, Option<bool>>(3)
        );
    }
    assert!(
        negative > 0 && nulls > 0,
        "negative decimals ({negative}) and nulls ({nulls}) are covered"
    );
}

#[test]
fn sigterm_during_the_exports_removes_their_staged_files_and_changes_nothing() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_term", "exp_term_history"]);
    let exports = format!(
        "{}{}",
        file_exports(),
        postgres_export("exp_term", "exp_term_history")
    );
    let example = Example::new(&url, &exports);
    example.run_ok("first");
    let before = db.content("exp_term");
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(example.path().join("exports"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let committed = files();
    let csv = std::fs::read(example.path().join("exports/segments.csv")).unwrap();

    // --replace: the file exports are staged beside the committed ones.
    let mut command = example.command("second");
    command
        .arg("--replace")
        .env("SEGFLOW_TEST_PAUSE_BEFORE_EXPORT_COMMIT", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    wait_until("the staged files", || files().len() > committed.len());
    wait_until("the history insert", || {
        db.running("INSERT INTO \"exp_term_history\"")
    });
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(files(), committed, "staged files and locks removed");
    assert_eq!(
        std::fs::read(example.path().join("exports/segments.csv")).unwrap(),
        csv
    );
    wait_until("the rollback", || {
        !db.running("INSERT INTO \"exp_term_history\"")
    });
    assert_eq!(db.content("exp_term"), before);
    assert!(!example.path().join("second").exists());
}

#[test]
fn csv_exports_neutralise_text_a_spreadsheet_would_run_as_a_formula() {
    let features = "  - name: crm_note\n    kind: needs\n    description: Text that starts like a formula.\n    expr: concat('=HYPERLINK(', CAST(customer_id AS VARCHAR), ')')\n";
    let export = "  - name: notes\n    file: notes.csv\n    features: [crm_note, tickets_90]\n";
    let example = Example::with_features("postgres://unused", export, features);
    example.run_ok("out");
    let csv = std::fs::read_to_string(example.path().join("notes.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("customer_id,segment,crm_note,tickets_90")
    );
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[0], "1", "numbers keep their form");
    assert_eq!(first[2], "'=HYPERLINK(1)");
}

#[test]
fn two_exports_writing_one_table_spelled_apart_are_refused_not_left_waiting() {
    let Some(url) = postgres_url() else { return };
    let db = Db::connect(&url);
    fresh(&db, &["exp_twice"]);
    let exports = "  - name: first\n    postgres: { url: \"${CRM_DATABASE_URL}\", table: exp_twice }\n    features: [tickets_90]\n  - name: second\n    postgres: { url: \"${CRM_DATABASE_URL}\", table: public.exp_twice }\n    features: [tickets_90]\n";
    let example = Example::new(&url, exports);
    let start = Instant::now();
    let output = example.run("out");
    assert!(start.elapsed() < Duration::from_secs(50), "it did not wait");
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    assert!(
        crate::support::stderr_unwrapped(&output).contains("which export `first` writes too"),
        "{}",
        stderr(&output)
    );
    assert!(
        db.rows("SELECT to_regclass('exp_twice')::text")[0]
            .get::<_, Option<String>>(0)
            .is_none(),
        "nothing was written"
    );
    assert!(!example.path().join("out").exists());
}

//! Postgres sources against a real PostgreSQL (`eval "$(scripts/postgres-start)"`; CI runs one):
//! the example read from tables gives the file-based run's assignments, every mapped type reads
//! exactly, and failures exit 4 naming the source and server, never the password. Each test
//! works in its own schema, so they run in parallel.

use std::path::Path;
use std::process::Output;

use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use tempfile::TempDir;

use crate::support::{
    ExampleRun, files_below, postgres_url, read_assignments, read_json, repo_path, segflow, stderr,
    stderr_unwrapped, stdout,
};

/// The environment variable the test pipelines read the URL from.
const URL_VARIABLE: &str = "SEGFLOW_TEST_PG_URL";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// Run `sql` (several statements) on the test database.
fn execute(url: &str, sql: &str) {
    runtime().block_on(async {
        let (client, _) = segflow::postgres::connect(url).await.expect("connect");
        client.batch_execute(sql).await.expect("execute");
    });
}

/// A fresh, empty schema named `name`.
pub(crate) fn fresh_schema(url: &str, name: &str) {
    execute(
        url,
        &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};"),
    );
}

/// Load `file` (CSV, Parquet or NDJSON) into a new table `table` (`schema.name`), each column
/// typed as `types` says, else by its Arrow type.
pub(crate) fn load(url: &str, table: &str, file: &Path, types: &[(&str, &str)]) {
    runtime().block_on(async {
        let ctx = SessionContext::new();
        let path = file.to_str().expect("path");
        let frame = match file.extension().and_then(|e| e.to_str()) {
            Some("csv") => ctx.read_csv(path, CsvReadOptions::new()).await,
            Some("parquet") => ctx.read_parquet(path, ParquetReadOptions::default()).await,
            _ => {
                let options = JsonReadOptions::default().file_extension(".ndjson");
                ctx.read_json(path, options).await
            }
        }
        .expect("read");
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|field| {
                let declared = types.iter().find(|(name, _)| name == field.name());
                let sql_type = match (declared, field.data_type()) {
                    (Some((_, sql_type)), _) => sql_type,
                    (None, DataType::Int64) => "bigint",
                    (None, DataType::Int32) => "integer",
                    (None, DataType::Float64) => "double precision",
                    (None, DataType::Boolean) => "boolean",
                    (None, DataType::Date32) => "date",
                    (None, DataType::Timestamp(..)) => "timestamp",
                    (None, _) => "text",
                };
                format!("\"{}\" {sql_type}", field.name())
            })
            .collect();
        let folder = TempDir::new().expect("temp dir");
        let csv = folder.path().join("rows.csv");
        frame
            .write_csv(
                csv.to_str().expect("path"),
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await
            .expect("write csv");
        let (client, _) = segflow::postgres::connect(url).await.expect("connect");
        client
            .batch_execute(&format!("CREATE TABLE {table} ({})", columns.join(", ")))
            .await
            .expect("create table");
        let sink = client
            .copy_in(&format!(
                "COPY {table} FROM STDIN (FORMAT csv, HEADER true)"
            ))
            .await
            .expect("copy in");
        let bytes = std::io::Cursor::new(std::fs::read(&csv).expect("read csv"));
        use futures::SinkExt;
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes).await.expect("send rows");
        sink.close().await.expect("finish copy");
    });
}

/// Run segflow in `dir` with the test URL in [`URL_VARIABLE`].
fn run_in(dir: &Path, url: &str, args: &[&str]) -> Output {
    segflow()
        .current_dir(dir)
        .env(URL_VARIABLE, url)
        .args(args)
        .output()
        .expect("run segflow")
}

/// `url`'s password, which must appear nowhere.
fn password(url: &str) -> String {
    let password = segflow::secrets::password_of(url).expect("the test URL has a password");
    assert!(password.len() >= 4, "a password too short to search for");
    password
}

/// Neither `output` nor any file below `folder` holds `secret`.
fn assert_hidden(secret: &str, output: &Output, folder: Option<&Path>) {
    assert!(
        !stdout(output).contains(secret),
        "stdout holds the password"
    );
    assert!(
        !stderr(output).contains(secret),
        "stderr holds the password"
    );
    if let Some(folder) = folder {
        for (name, bytes) in files_below(folder) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{name} holds the password"
            );
        }
    }
}

/// The example's sources as Postgres tables: its pipeline with every `path:` replaced by a table
/// of schema `schema`.
fn example_on_postgres(schema: &str) -> String {
    let mut text =
        std::fs::read_to_string(repo_path("pipelines/saas_quarterly.yaml")).expect("read example");
    for (table, file) in [
        ("customers", "customers.csv"),
        ("events", "events.parquet"),
        ("invoices", "invoices.csv"),
        ("tickets", "tickets.ndjson"),
    ] {
        let from = format!("path: data/saas/{file}");
        assert!(text.contains(&from), "the example has no `{from}`");
        text = text.replacen(
            &from,
            &format!("postgres: {{ url: \"${{{URL_VARIABLE}}}\", table: {schema}.{table} }}"),
            1,
        );
    }
    text
}

/// The example's four tables in a fresh schema `schema`, typed as a production database
/// would keep them.
fn load_example(url: &str, schema: &str) {
    fresh_schema(url, schema);
    let data = repo_path("pipelines/data/saas");
    load(
        url,
        &format!("{schema}.customers"),
        &data.join("customers.csv"),
        &[("company_size", "integer"), ("signup_date", "date")],
    );
    load(
        url,
        &format!("{schema}.events"),
        &data.join("events.parquet"),
        &[("ts", "timestamp")],
    );
    // Money as numeric, as a billing database keeps it; declared float64 in the pipeline.
    load(
        url,
        &format!("{schema}.invoices"),
        &data.join("invoices.csv"),
        &[("invoice_date", "date"), ("amount", "numeric(12,2)")],
    );
    // Time zones as most databases keep them: the instant is the same.
    load(
        url,
        &format!("{schema}.tickets"),
        &data.join("tickets.ndjson"),
        &[("created_at", "timestamptz")],
    );
}

#[test]
fn the_example_read_from_postgres_assigns_every_customer_as_from_files() {
    let Some(url) = postgres_url() else { return };
    let schema = "sf_example";
    load_example(&url, schema);

    let files = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let folder = TempDir::new().expect("temp dir");
    std::fs::write(
        folder.path().join("pipeline.yaml"),
        example_on_postgres(schema),
    )
    .expect("write pipeline");
    let output = run_in(
        folder.path(),
        &url,
        &["run", "pipeline.yaml", "--out", "run"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let run = folder.path().join("run");

    let (expected, expected_types) =
        read_assignments(&files.path("assignments.parquet"), "customer_id");
    let (found, found_types) = read_assignments(&run.join("assignments.parquet"), "customer_id");
    assert_eq!(found_types, expected_types);
    assert_eq!(found.len(), expected.len());
    for (customer, row) in &expected {
        assert_eq!(found.get(customer), Some(row), "customer {customer}");
    }

    // The manifest names the server and the snapshot, never the password.
    let manifest = read_json(&run.join("manifest.json"));
    let sources = manifest["sources"].as_array().expect("sources");
    let events = sources
        .iter()
        .find(|s| s["name"] == "events")
        .expect("events");
    assert_eq!(events["format"], "postgres");
    assert_eq!(events["database"]["table"], "sf_example.events");
    assert_eq!(events["database"]["database"], "postgres");
    assert!(
        events["database"]["snapshot"]
            .as_str()
            .is_some_and(|s| s.contains(':'))
    );
    assert_eq!(events["sha256"].as_str().map(str::len), Some(64));
    assert_hidden(&password(&url), &output, Some(&run));

    // Nor does the plan show it.
    let plan = run_in(folder.path(), &url, &["plan", "pipeline.yaml"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert_hidden(&password(&url), &plan, None);
}

/// A pipeline whose customers are the rows of `table`, with one feature per column.
fn typed_pipeline(table: &str, extra_sources: &str, features: &[&str]) -> String {
    let features: String = features
        .iter()
        .map(|column| {
            format!(
                "  - {{ name: f_{column}, kind: behavioral, description: {column}, expr: \"{column}\" }}\n"
            )
        })
        .collect();
    format!(
        "version: 1\nname: typed\nas_of: 2026-10-01\nsources:\n  things:\n    postgres: {{ url: \"${{{URL_VARIABLE}}}\", table: {table} }}\n{extra_sources}entity: {{ source: things, key: id }}\nfeatures:\n{features}segments:\n  - id: all\n    name: All\n    description: Everyone.\n"
    )
}

#[test]
fn every_mapped_type_reads_exactly_with_nulls_and_a_query_source_reads_its_rows() {
    let Some(url) = postgres_url() else { return };
    let schema = "sf_types";
    fresh_schema(&url, schema);
    execute(
        &url,
        &format!(
            "CREATE TABLE {schema}.things (id bigint, s smallint, i integer, b bigint, n numeric(12,2),
                nu numeric, r real, d double precision, t text, v varchar(10), c char(3),
                ok boolean, day date, ts timestamp, tz timestamptz, u uuid);
             INSERT INTO {schema}.things VALUES
               (1, -32768, 2147483647, -9223372036854775808, 12345.67, -0.000000001, 1.5, 2.25,
                'héllo', 'v', 'ab', true, '2026-01-02', '2026-01-02 03:04:05.123456',
                '2026-01-02 03:04:05+02', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL);"
        ),
    );
    let columns = [
        "s", "i", "b", "n", "nu", "r", "d", "t", "v", "c", "ok", "day", "ts", "tz", "u",
    ];
    // Only the columns the run uses are read: the json column (a type segflow does not read)
    // is left in the database.
    let query = format!(
        "  doubled:\n    postgres: {{ url: \"${{{URL_VARIABLE}}}\", query: \"SELECT id, n * 2 AS n2, '{{}}'::json AS unused FROM {schema}.things\" }}\n"
    );
    let mut text = typed_pipeline(&format!("{schema}.things"), &query, &columns);
    text = text.replace(
        "segments:",
        "  - { name: n2_sum, kind: value, description: from a query, aggregate: { source: doubled, expr: sum(n2) } }\nsegments:",
    );
    let folder = TempDir::new().expect("temp dir");
    std::fs::write(folder.path().join("pipeline.yaml"), text).expect("write pipeline");
    let output = run_in(
        folder.path(),
        &url,
        &["run", "pipeline.yaml", "--out", "run"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let (rows, types) = read_assignments(&folder.path().join("run/assignments.parquet"), "id");

    let expected_types = [
        ("f_s", "Int16"),
        ("f_i", "Int32"),
        ("f_b", "Int64"),
        ("f_n", "Decimal128(12, 2)"),
        ("f_nu", "Decimal128(38, 10)"),
        ("f_r", "Float32"),
        ("f_d", "Float64"),
        ("f_t", "Utf8"),
        ("f_v", "Utf8"),
        ("f_c", "Utf8"),
        ("f_ok", "Boolean"),
        ("f_day", "Date32"),
        ("f_ts", "Timestamp(µs)"),
        ("f_tz", "Timestamp(µs)"),
        ("f_u", "Utf8"),
    ];
    for (feature, data_type) in expected_types {
        assert_eq!(types[feature], data_type, "{feature}");
    }
    let one = &rows[&1];
    let expected = serde_json::json!({
        "f_s": -32768, "f_i": 2147483647, "f_b": -9223372036854775808i64,
        "f_n": "12345.67", "f_nu": "-0.0000000010", "f_r": 1.5, "f_d": 2.25,
        "f_t": "héllo", "f_v": "v", "f_c": "ab ", "f_ok": true, "f_day": "2026-01-02",
        "f_ts": "2026-01-02T03:04:05.123456", "f_tz": "2026-01-02T01:04:05",
        "f_u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "n2_sum": "24691.3400000000",
    });
    for (feature, value) in expected.as_object().expect("object") {
        assert_eq!(&one[feature], value, "{feature}");
    }
    for column in columns {
        assert!(
            rows[&2][&format!("f_{column}")].is_null(),
            "f_{column} of the NULL row"
        );
    }
}

/// A pipeline reading `table` as customers, declaring `columns`.
fn failing_pipeline(folder: &Path, table: &str, columns: &str) {
    let text = typed_pipeline(table, "", &["id"]).replace(
        &format!("table: {table} }}\n"),
        &format!("table: {table} }}\n    columns: {{ {columns} }}\n"),
    );
    std::fs::write(folder.join("pipeline.yaml"), text).expect("write pipeline");
}

/// Run the pipeline in `folder`; it must fail with exit 4 and a message naming the source and
/// the server and holding `words`, and leave nothing but the pipeline behind.
fn assert_database_error(folder: &Path, url: &str, secret: &str, words: &[&str]) {
    let output = run_in(folder, url, &["run", "pipeline.yaml", "--out", "run"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    for word in [
        "segflow::database",
        "source `things`",
        "127.0.0.1",
        "/postgres",
    ]
    .iter()
    .chain(words)
    {
        assert!(message.contains(word), "no `{word}` in: {message}");
    }
    assert_hidden(secret, &output, Some(folder));
    let entries: Vec<String> = std::fs::read_dir(folder)
        .expect("read folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["pipeline.yaml"], "something was written");
}

#[test]
fn a_missing_table_a_missing_column_and_a_wrong_password_exit_4_without_the_password() {
    let Some(url) = postgres_url() else { return };
    let schema = "sf_errors";
    fresh_schema(&url, schema);
    execute(
        &url,
        &format!(
            "CREATE TABLE {schema}.things (id bigint); INSERT INTO {schema}.things VALUES (1);"
        ),
    );
    let secret = password(&url);
    let folder = TempDir::new().expect("temp dir");

    failing_pipeline(folder.path(), &format!("{schema}.nothing"), "id: int64");
    assert_database_error(
        folder.path(),
        &url,
        &secret,
        &["sf_errors.nothing", "does not exist"],
    );

    failing_pipeline(
        folder.path(),
        &format!("{schema}.things"),
        "id: int64, plan: string",
    );
    assert_database_error(
        folder.path(),
        &url,
        &secret,
        &["declared column `plan`", "table sf_errors.things"],
    );

    failing_pipeline(folder.path(), &format!("{schema}.things"), "id: int64");
    let wrong = url.replacen(&format!(":{secret}@"), ":not-the-password@", 1);
    assert_ne!(wrong, url);
    assert_database_error(
        folder.path(),
        &wrong,
        &secret,
        &["password authentication failed"],
    );
    assert_database_error(folder.path(), &wrong, "not-the-password", &[]);

    failing_pipeline(folder.path(), &format!("{schema}.things"), "id: date");
    assert_database_error(
        folder.path(),
        &url,
        &secret,
        &["column `id`: is int8, which cannot be read as the declared `date`"],
    );

    execute(
        &url,
        &format!("CREATE TABLE {schema}.documents (id bigint, body json);"),
    );
    failing_pipeline(folder.path(), &format!("{schema}.documents"), "id: int64");
    assert_database_error(
        folder.path(),
        &url,
        &secret,
        &["table sf_errors.documents, column `body`: type json is not supported"],
    );

    // `validate` checks the columns against the database too.
    failing_pipeline(
        folder.path(),
        &format!("{schema}.things"),
        "id: int64, plan: string",
    );
    let output = run_in(folder.path(), &url, &["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr_unwrapped(&output).contains("declared column `plan`"));
}

#[test]
fn a_connection_dropped_mid_read_exits_4_and_writes_nothing() {
    let Some(url) = postgres_url() else { return };
    let folder = TempDir::new().expect("temp dir");
    // The query sends rows, then waits: long enough for the test to end its connection.
    let query = "SELECT g AS id FROM generate_series(1, 200000) AS g WHERE g < 100000 OR (SELECT true FROM pg_sleep(60)) -- segflow_drop_test";
    let text = typed_pipeline("unused", "", &["id"])
        .replace("table: unused }", &format!("query: \"{query}\" }}"));
    std::fs::write(folder.path().join("pipeline.yaml"), text).expect("write pipeline");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
        .env("NO_COLOR", "1")
        .current_dir(folder.path())
        .env(URL_VARIABLE, &url)
        .args(["run", "pipeline.yaml", "--out", "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start segflow");
    let terminated = runtime().block_on(async {
        let (client, _) = segflow::postgres::connect(&url).await.expect("connect");
        for _ in 0..600 {
            let rows = client
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE query LIKE 'COPY%segflow_drop_test%' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .expect("terminate");
            if !rows.is_empty() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    });
    let output = child.wait_with_output().expect("wait for segflow");
    assert!(terminated, "the read never started: {}", stderr(&output));
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(message.contains("source `things`"), "{message}");
    // The server's notice ("terminating connection due to administrator command") or the
    // closed socket, whichever the client sees first.
    assert!(
        message.contains("terminating connection") || message.contains("connection closed"),
        "{message}"
    );
    assert_hidden(&password(&url), &output, Some(folder.path()));
    assert!(
        !folder.path().join("run").exists(),
        "a run folder was written"
    );
}

#[test]
fn a_value_that_does_not_fit_its_decimal_exits_4() {
    let Some(url) = postgres_url() else { return };
    let schema = "sf_overflow";
    fresh_schema(&url, schema);
    execute(
        &url,
        &format!(
            "CREATE TABLE {schema}.things (id bigint, nu numeric);
             INSERT INTO {schema}.things VALUES (1, 1.5), (2, 0.12345678901);"
        ),
    );
    let folder = TempDir::new().expect("temp dir");
    failing_pipeline(folder.path(), &format!("{schema}.things"), "id: int64");
    assert_database_error(
        folder.path(),
        &url,
        &password(&url),
        &["row 2, column `nu`", "more than 10 decimals"],
    );
}

/// Nothing listens on port 1 of the loopback: no database server is needed.
const UNREACHABLE: &str = "postgres://crm:unreachable-secret@127.0.0.1:1/sales";

#[test]
fn validate_warns_when_the_server_is_unreachable_and_run_fails() {
    let folder = TempDir::new().expect("temp dir");
    failing_pipeline(folder.path(), "crm.things", "id: int64");
    let output = run_in(folder.path(), UNREACHABLE, &["validate", "pipeline.yaml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains("segflow::database-unreachable")
            && message.contains("cannot reach crm@127.0.0.1:1/sales")
            && message.contains("source `things`"),
        "{message}"
    );
    assert_hidden("unreachable-secret", &output, None);
    let denied = run_in(
        folder.path(),
        UNREACHABLE,
        &["validate", "pipeline.yaml", "--deny-warnings"],
    );
    assert_eq!(denied.status.code(), Some(7), "{}", stderr(&denied));

    let output = run_in(
        folder.path(),
        UNREACHABLE,
        &["run", "pipeline.yaml", "--out", "run"],
    );
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains("segflow::database") && message.contains("crm@127.0.0.1:1/sales"),
        "{message}"
    );
    assert_hidden("unreachable-secret", &output, Some(folder.path()));

    // A plan needs the columns too: the same error, not a bug report.
    let plan = run_in(folder.path(), UNREACHABLE, &["plan", "pipeline.yaml"]);
    assert_eq!(plan.status.code(), Some(4), "{}", stderr(&plan));
    assert_hidden("unreachable-secret", &plan, None);

    // `--source` replaces the table with a file for one run.
    std::fs::write(folder.path().join("things.csv"), "id\n1\n2\n").expect("write csv");
    let output = run_in(
        folder.path(),
        UNREACHABLE,
        &[
            "run",
            "pipeline.yaml",
            "--out",
            "run",
            "--source",
            "things=things.csv",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest = read_json(&folder.path().join("run/manifest.json"));
    assert_eq!(manifest["sources"][0]["format"], "csv");
}

#[test]
fn a_password_written_in_the_file_is_refused_and_masked_in_the_quoted_line() {
    let folder = TempDir::new().expect("temp dir");
    failing_pipeline(folder.path(), "crm.things", "id: int64");
    let path = folder.path().join("pipeline.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let variable = format!("\"${{{URL_VARIABLE}}}\"");
    assert!(text.contains(&variable), "{text}");
    std::fs::write(
        &path,
        text.replace(
            &variable,
            "\"postgres://crm:pw1234hunter@127.0.0.1:1/sales\"",
        ),
    )
    .expect("write");
    let output = run_in(folder.path(), UNREACHABLE, &["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("holds a password"),
        "{}",
        stderr(&output)
    );
    assert_hidden("pw1234hunter", &output, None);
}

#[test]
fn a_password_with_a_raw_at_sign_never_shows_its_tail() {
    let folder = TempDir::new().expect("temp dir");
    failing_pipeline(folder.path(), "crm.things", "id: int64");
    let url = "postgres://crm:Hunt@erSecretTail@127.0.0.1:1/sales";
    for command in [
        &["validate", "pipeline.yaml"][..],
        &["run", "pipeline.yaml", "--out", "r"],
    ] {
        let output = run_in(folder.path(), url, command);
        assert!(stderr(&output).contains("%40"), "{}", stderr(&output));
        assert_hidden("SecretTail", &output, Some(folder.path()));
    }
}

#[test]
fn the_example_run_inside_postgres_gives_the_embedded_runs_assignments_and_statistics() {
    let Some(url) = postgres_url() else { return };
    let schema = "sf_engine";
    load_example(&url, schema);
    let files = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let folder = TempDir::new().expect("temp dir");
    std::fs::write(
        folder.path().join("pipeline.yaml"),
        example_on_postgres(schema),
    )
    .expect("write pipeline");
    let output = run_in(
        folder.path(),
        &url,
        &[
            "run",
            "pipeline.yaml",
            "--engine",
            "postgres",
            "--out",
            "run",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let run = folder.path().join("run");

    let (expected, expected_types) =
        read_assignments(&files.path("assignments.parquet"), "customer_id");
    let (found, found_types) = read_assignments(&run.join("assignments.parquet"), "customer_id");
    assert_eq!(found_types, expected_types);
    assert_eq!(found.len(), expected.len());
    let mut differences = Vec::new();
    for (customer, row) in &expected {
        let other = &found[customer];
        for (column, value) in row {
            let same = match (value.as_f64(), other[column].as_f64()) {
                // Money is numeric in the database: its sums are exact there, then rounded once.
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                _ => *value == other[column],
            };
            if !same {
                differences.push(format!("{customer} {column}: {value} vs {}", other[column]));
            }
        }
    }
    assert!(differences.is_empty(), "{differences:?}");

    // Same segments, sizes and criteria as the embedded run.
    let sizes = |folder: &Path| {
        let segments = read_json(&folder.join("segments.json"));
        segments["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| (s["id"].to_string(), s["customers"].as_u64()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&run), sizes(&files.dir()));
    let verdicts = |folder: &Path| {
        read_json(&folder.join("criteria.json"))["criteria"]
            .as_array()
            .expect("criteria")
            .iter()
            .flat_map(|c| {
                c["checks"].as_array().expect("checks").iter().map(|check| {
                    (
                        c["criterion"].to_string(),
                        check["subject"].to_string(),
                        check["status"].to_string(),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&run), verdicts(&files.dir()));
    // Cohorts are measured embedded from the rows copied out of Postgres: the same tables.
    let cohorts = |folder: &Path| read_json(&folder.join("cohorts.json"))["tables"].clone();
    assert_eq!(cohorts(&run), cohorts(&files.dir()));
    let manifest = read_json(&run.join("manifest.json"));
    assert_eq!(manifest["engine"], "postgres");
    assert_eq!(
        read_json(&files.path("manifest.json"))["engine"],
        "embedded"
    );
    let events = manifest["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == "events")
        .expect("events");
    assert_eq!(
        events["rows"],
        read_json(&files.path("manifest.json"))["sources"][1]["rows"]
    );
    assert_hidden(&password(&url), &output, Some(&run));
}

#[test]
fn the_postgres_engine_refuses_file_sources_before_any_work() {
    let folder = TempDir::new().expect("temp dir");
    let output = segflow()
        .current_dir(repo_path(""))
        .args([
            "run",
            "pipelines/saas_quarterly.yaml",
            "--engine",
            "postgres",
            "--out",
        ])
        .arg(folder.path().join("run"))
        .output()
        .expect("run segflow");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr_unwrapped(&output).contains("source `customers` is files"));
    assert!(!folder.path().join("run").exists());
}

#[test]
fn a_query_source_runs_inside_postgres_as_it_reads_into_the_embedded_engine() {
    let Some(url) = postgres_url() else { return };
    let schema = "sf_engine_query";
    load_example(&url, schema);
    let from = format!("table: {schema}.tickets }}");
    let pipeline = example_on_postgres(schema);
    assert!(pipeline.contains(&from), "no tickets table in the pipeline");
    // The tickets source becomes a query over a view keeping only some tickets; inside Postgres
    // it is a common table expression of its own.
    execute(
        &url,
        &format!(
            "CREATE OR REPLACE VIEW {schema}.severe AS SELECT * FROM {schema}.tickets WHERE severity <> 'low'"
        ),
    );
    let pipeline = pipeline.replacen(
        &from,
        &format!("query: \"SELECT customer_id, created_at, severity FROM {schema}.severe\" }}"),
        1,
    );
    let folder = TempDir::new().expect("temp dir");
    std::fs::write(folder.path().join("pipeline.yaml"), pipeline).expect("write pipeline");
    let embedded = run_in(
        folder.path(),
        &url,
        &["run", "pipeline.yaml", "--out", "embedded"],
    );
    assert!(embedded.status.success(), "{}", stderr(&embedded));
    let inside = run_in(
        folder.path(),
        &url,
        &[
            "run",
            "pipeline.yaml",
            "--engine",
            "postgres",
            "--out",
            "inside",
        ],
    );
    assert!(inside.status.success(), "{}", stderr(&inside));
    let (expected, _) = read_assignments(
        &folder.path().join("embedded/assignments.parquet"),
        "customer_id",
    );
    let (found, _) = read_assignments(
        &folder.path().join("inside/assignments.parquet"),
        "customer_id",
    );
    assert_eq!(found.len(), expected.len());
    for (customer, row) in &expected {
        assert_eq!(
            found[customer]["tickets_90"], row["tickets_90"],
            "customer {customer}"
        );
        assert_eq!(
            found[customer]["segment"], row["segment"],
            "customer {customer}"
        );
    }
    // Fewer tickets than the whole table: the query's filter held in both engines.
    let all = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let (unfiltered, _) = read_assignments(&all.path("assignments.parquet"), "customer_id");
    let total = |rows: &std::collections::BTreeMap<i64, crate::support::Row>| -> i64 {
        rows.values()
            .map(|r| r["tickets_90"].as_i64().unwrap_or(0))
            .sum()
    };
    assert!(total(&found) < total(&unfiltered));
}

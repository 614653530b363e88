//! Quarterly review: reproducible runs, provenance in the manifest, run comparison, lints and
//! the pipeline's own segment tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{
    ExampleRun, Workspace, files_below as files, read_json, repo_path, segflow, stderr,
};

#[test]
fn the_same_run_twice_gives_byte_identical_outputs() {
    let (first, second) = (
        ExampleRun::new("pipelines/saas_quarterly.yaml", &[]),
        ExampleRun::new("pipelines/saas_quarterly.yaml", &[]),
    );
    let (a, b) = (files(&first.dir()), files(&second.dir()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a.len() >= 10, "{:?}", a.keys());
    for (name, bytes) in &a {
        if name == "manifest.json" {
            continue;
        }
        assert!(bytes == &b[name], "{name} differs between identical runs");
    }
    // The manifest differs only in run metadata: start time and stage timings.
    let strip = |bytes: &[u8]| {
        let mut manifest: Value = serde_json::from_slice(bytes).unwrap();
        let object = manifest.as_object_mut().unwrap();
        assert!(object.remove("started_at").is_some());
        assert!(object.remove("timings").is_some());
        manifest
    };
    assert_eq!(strip(&a["manifest.json"]), strip(&b["manifest.json"]));
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn manifest_records_the_git_commit_and_uncommitted_changes() {
    let workspace = Workspace::from_fixture("windows");
    let dir = workspace.path();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "fixture"]);
    let head = String::from_utf8(
        Command::new("git")
            .current_dir(dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "clean"]);
    let manifest = read_json(&dir.join("clean/manifest.json"));
    assert_eq!(manifest["git"]["commit"], json!(head.trim()));
    assert_eq!(manifest["git"]["dirty"], json!(false));
    assert_eq!(manifest["git"]["pipeline_modified"], json!(false));

    workspace.edit_pipeline("name: windows", "name: windows\ntitle: Edited");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "edited"]);
    let manifest = read_json(&dir.join("edited/manifest.json"));
    assert_eq!(manifest["git"]["dirty"], json!(true));
    assert_eq!(manifest["git"]["pipeline_modified"], json!(true));
    assert_eq!(manifest["sources"][0]["name"], json!("customers"));
    assert_eq!(manifest["sources"][0]["rows"], json!(5));
}

#[test]
fn outside_git_the_manifest_says_so() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let manifest = read_json(&workspace.path().join("out/manifest.json"));
    assert_eq!(manifest["git"], Value::Null);
}

#[test]
fn default_as_of_honours_source_date_epoch() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline("as_of: 2026-10-01\n", "");
    // 1790812800 is 2026-10-01T00:00:00Z.
    let output = segflow()
        .current_dir(workspace.path())
        .env("SOURCE_DATE_EPOCH", "1790812800")
        .args(["run", "pipeline.yaml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(workspace.path().join("runs/windows-2026-10-01").is_dir());
}

fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    segflow().current_dir(dir).args(args).output().unwrap()
}

/// Customers per (old segment, new segment), recomputed from the two assignments files.
fn migration_by_hand(old: &Path, new: &Path) -> BTreeMap<(String, String), u64> {
    let (old_rows, _) =
        crate::support::read_assignments(&old.join("assignments.parquet"), "customer_id");
    let (new_rows, _) =
        crate::support::read_assignments(&new.join("assignments.parquet"), "customer_id");
    let label = |rows: &BTreeMap<i64, BTreeMap<String, Value>>, id: &i64, absent: &str| match rows
        .get(id)
    {
        None => absent.to_string(),
        Some(row) => row["segment"]
            .as_str()
            .unwrap_or("(unassigned)")
            .to_string(),
    };
    let ids: std::collections::BTreeSet<&i64> = old_rows.keys().chain(new_rows.keys()).collect();
    let mut counts = BTreeMap::new();
    for id in ids {
        let key = (
            label(&old_rows, id, "(not in old run)"),
            label(&new_rows, id, "(not in new run)"),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

fn migration_reported(comparison: &Value) -> BTreeMap<(String, String), u64> {
    let migration = &comparison["migration"];
    let mut counts = BTreeMap::new();
    for (r, row) in migration["rows"].as_array().unwrap().iter().enumerate() {
        for (c, column) in migration["columns"].as_array().unwrap().iter().enumerate() {
            let n = migration["counts"][r][c].as_u64().unwrap();
            if n > 0 {
                counts.insert(
                    (
                        row.as_str().unwrap().to_string(),
                        column.as_str().unwrap().to_string(),
                    ),
                    n,
                );
            }
        }
    }
    counts
}

#[test]
fn two_quarters_migration_matches_an_independent_count() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = repo_path("");
    let q3 = dir.path().join("q3");
    let output = run_in(
        &root,
        &[
            "run",
            "pipelines/saas_quarterly.yaml",
            "--out",
            q3.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // Next quarter: the same customers (same seed and signup reference), 20% of them changing
    // behaviour, 100 new customers, and every 50th customer gone.
    let data = dir.path().join("q4data");
    let generated = Command::new(env!("CARGO_BIN_EXE_segflow-datagen"))
        .args([
            "--as-of",
            "2027-01-01",
            "--reference-date",
            "2026-10-01",
            "--behaviour-change",
            "0.2",
        ])
        .args([
            "--customers",
            "3100",
            "--drop-every",
            "50",
            "--out",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let q4 = dir.path().join("q4");
    let source = |name: &str, file: &str| format!("{name}={}", data.join(file).display());
    let sources = [
        source("customers", "customers.csv"),
        source("events", "events.parquet"),
        source("invoices", "invoices.csv"),
        source("tickets", "tickets.ndjson"),
    ];
    // The second quarter's run into `out`, compared with the first, with `extra` arguments.
    let second_quarter = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            "pipelines/saas_quarterly.yaml",
            "--as-of",
            "2027-01-01",
        ];
        for source in &sources {
            args.extend(["--source", source.as_str()]);
        }
        args.extend([
            "--out",
            out.to_str().unwrap(),
            "--compare-to",
            q3.to_str().unwrap(),
        ]);
        args.extend(extra);
        run_in(&root, &args)
    };
    let output = second_quarter(&q4, &["--criteria-as-warnings"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // As the README's walkthrough runs it (no --criteria-as-warnings), and says what happens:
    // exit 6 after writing everything, for a failed `substantial` check and a stale review.
    let as_written = dir.path().join("q4-as-written");
    let output = second_quarter(&as_written, &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(6), "{message}");
    assert!(message.contains("stale-review"), "{message}");
    assert!(message.contains("substantial · struggling"), "{message}");
    assert!(as_written.join("report.html").is_file());
    let comparison = read_json(&q4.join("comparison.json"));
    let by_hand = migration_by_hand(&q3, &q4);
    assert_eq!(migration_reported(&comparison), by_hand);
    let departed: u64 = by_hand
        .iter()
        .filter(|((_, new), _)| new == "(not in new run)")
        .map(|(_, n)| n)
        .sum();
    let arrived: u64 = by_hand
        .iter()
        .filter(|((old, _), _)| old == "(not in old run)")
        .map(|(_, n)| n)
        .sum();
    let moved: u64 = by_hand
        .iter()
        .filter(|((o, n), _)| o != n && !o.starts_with("(not") && !n.starts_with("(not"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        (departed, arrived),
        (60, 98),
        "60 of the first 3,000 ids are multiples of 50; of the 100 new ids, 3050 and 3100 are dropped"
    );
    assert_eq!(comparison["migration"]["disappeared"], json!(departed));
    assert_eq!(comparison["migration"]["appeared"], json!(arrived));
    assert_eq!(comparison["migration"]["moved"], json!(moved));
    assert!(
        moved > 300,
        "a fifth of the customers changed behaviour: {moved}"
    );
    assert_eq!(comparison["new"]["folder"], json!(q4.display().to_string()));

    // Size changes agree with the two runs' own counts.
    let (old, new) = (
        read_json(&q3.join("segments.json")),
        read_json(&q4.join("segments.json")),
    );
    for (i, change) in comparison["sizes"].as_array().unwrap().iter().enumerate() {
        let (before, after) = (&old["segments"][i], &new["segments"][i]);
        assert_eq!(change["old_customers"], before["customers"]);
        assert_eq!(change["new_customers"], after["customers"]);
        let points = (after["share"].as_f64().unwrap() - before["share"].as_f64().unwrap()) * 100.0;
        assert!((change["share_change_points"].as_f64().unwrap() - points).abs() < 1e-9);
    }
    assert!(workspace_report_has_comparison(&q4));

    // `segflow diff` gives the same comparison.
    let diff = run_in(
        &root,
        &["diff", q3.to_str().unwrap(), q4.to_str().unwrap(), "--json"],
    );
    assert!(diff.status.success(), "{}", stderr(&diff));
    let printed: Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(migration_reported(&printed), by_hand);
    let markdown = run_in(&root, &["diff", q3.to_str().unwrap(), q4.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&markdown.stdout).contains("### Migration"));
}

fn workspace_report_has_comparison(run: &Path) -> bool {
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    report.contains("## Compared with the run as of 2026-10-01")
        && report.contains("| Then \\ now |")
}

#[test]
fn runs_of_different_pipeline_versions_match_by_segment_id() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "v1"]);
    // Version 2 renames `lapsed` to `churned` and adds a catch-all.
    workspace.edit_pipeline("- id: lapsed", "- id: churned");
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}  - id: rest\n    name: Rest\n"),
    );
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "v2", "--compare-to", "v1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let comparison = read_json(&workspace.path().join("v2/comparison.json"));
    assert_eq!(comparison["appeared_segments"], json!(["churned", "rest"]));
    assert_eq!(comparison["vanished_segments"], json!(["lapsed"]));
    let unmatched: Vec<&str> = comparison["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(
        unmatched
            .iter()
            .any(|u| u.starts_with("segment `lapsed` is only in the old run")),
        "{unmatched:?}"
    );
    let migration = migration_reported(&comparison);
    assert_eq!(migration[&("lapsed".to_string(), "churned".to_string())], 1);
    assert_eq!(
        migration[&("(unassigned)".to_string(), "rest".to_string())],
        1
    );
    assert_eq!(comparison["migration"]["stayed"], json!(3));
    let lapsed = comparison["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == "lapsed")
        .unwrap();
    assert_eq!(
        (
            lapsed["old_customers"].clone(),
            lapsed["new_customers"].clone()
        ),
        (json!(1), Value::Null)
    );
}

#[test]
fn segment_tests_of_the_example_pass_without_reading_the_sources() {
    let dir = tempfile::TempDir::new().unwrap();
    // Copy the pipeline and its fixture file only: the real data is not there.
    std::fs::create_dir(dir.path().join("fixtures")).unwrap();
    std::fs::copy(
        repo_path("pipelines/saas_quarterly.yaml"),
        dir.path().join("pipeline.yaml"),
    )
    .unwrap();
    std::fs::copy(
        repo_path("pipelines/fixtures/power_user_events.csv"),
        dir.path().join("fixtures/power_user_events.csv"),
    )
    .unwrap();
    let output = run_in(dir.path(), &["test", "pipeline.yaml"]);
    assert!(
        output.status.success(),
        "{}{}",
        crate::support::stdout(&output),
        stderr(&output)
    );
    assert!(crate::support::stdout(&output).ends_with("segment tests: 3 ok, 0 failed\n"));
}

#[test]
fn a_failing_segment_test_names_customer_expectation_and_matching_rule() {
    let workspace = Workspace::from_fixture("windows");
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!(
            "{pipeline}tests:\n  - name: busy customers\n    sources:\n      customers:\n        - {{ customer_id: 7, signup_date: 2026-01-01, plan: pro, score: 3 }}\n      events:\n        - {{ customer_id: 7, ts: \"2026-09-20T10:00:00\", feature: a }}\n    expect:\n      - {{ customer: 7, segment: busy, features: {{ events_30: 3, tenure_days: 273 }} }}\n"
        ),
    );
    let output = workspace.segflow(&["test", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(8), "{}", stderr(&output));
    let printed = crate::support::stdout(&output);
    assert!(printed.contains("FAILED busy customers"), "{printed}");
    assert!(
        printed.contains(
            "customer 7: expected `busy`, got `active` (matched rule `active_days_30 >= 1`)"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("customer 7: feature `events_30` expected 3, got 1"),
        "{printed}"
    );
    assert!(
        !printed.contains("tenure_days"),
        "tenure 2026-01-01 → 2026-10-01 is 273 days: {printed}"
    );
    assert!(
        printed.ends_with("segment tests: 0 ok, 1 failed\n"),
        "{printed}"
    );

    // A test naming a segment that does not exist is a pipeline error.
    workspace.edit_pipeline("segment: busy, features", "segment: bussy, features");
    let output = workspace.segflow(&["test", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("test `busy customers` expects unknown segment `bussy`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_or_broken_run_folder_is_an_error_never_silence() {
    let workspace = Workspace::lint_clean();
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q3"]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4"]);

    // A folder that does not exist: exit 10, said once.
    let output = workspace.segflow(&["diff", "nowhere", "q4"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    insta::assert_snapshot!("diff_missing_run_folder", stderr(&output));

    // A corrupt criteria.json in the old run is an error, not "no criteria changed".
    workspace.write("q3/criteria.json", "{ not json");
    let output = workspace.segflow(&["diff", "q3", "q4"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder q3: criteria.json is not a segflow document"),
        "{}",
        stderr(&output)
    );

    // A missing one stops `run --compare-to` before it writes anything.
    std::fs::remove_file(workspace.path().join("q3/criteria.json")).unwrap();
    let before = workspace.entries();
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "q5", "--compare-to", "q3"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder q3: cannot read criteria.json"),
        "{}",
        stderr(&output)
    );
    assert_eq!(workspace.entries(), before);
}

#[test]
fn a_damaged_assignments_file_is_the_run_folders_fault() {
    let workspace = Workspace::lint_clean();
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q3"]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4"]);
    let intact = std::fs::read(workspace.path().join("q4/assignments.parquet")).unwrap();

    // Cut short: no footer.
    workspace.write_bytes("q3/assignments.parquet", &intact[..100]);
    for args in [
        &["diff", "q3", "q4"][..],
        &["history", "q3", "q4", "--out", "h"][..],
        &["run", "pipeline.yaml", "--out", "q5", "--compare-to", "q3"][..],
    ] {
        let output = workspace.segflow(args);
        assert_eq!(
            output.status.code(),
            Some(10),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output)
                .contains("run folder q3: assignments.parquet is not a Parquet file segflow wrote"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(!workspace.path().join("h").exists());
    assert!(!workspace.path().join("q5").exists());

    // A Parquet file of another shape put in its place: exit 10, naming the missing column.
    let events = std::fs::read(repo_path("pipelines/data/saas/events.parquet")).unwrap();
    workspace.write_bytes("q3/assignments.parquet", &events);
    let output = workspace.segflow(&["diff", "q3", "q4"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder q3: assignments.parquet has no column `segment`"),
        "{}",
        stderr(&output)
    );

    // The intact file back: the comparison runs.
    workspace.write_bytes("q3/assignments.parquet", &intact);
    workspace.segflow_ok(&["diff", "q3", "q4"]);
}

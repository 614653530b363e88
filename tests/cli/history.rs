//! `segflow history`: many runs in as-of order, with flows between consecutive runs checked
//! against a count made here from the assignments files with the `parquet` and `arrow` crates
//! alone, sizes and means against each run's own `segments.json`, and the refusals.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use crate::support::{Workspace, read_json, repo_path, segflow, stderr, stdout};

const QUARTERS: [&str; 4] = ["2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01"];

/// Customer key → segment (`None`: unassigned), read with `parquet` and `arrow` directly.
fn segments_by_customer(folder: &Path, key: &str) -> BTreeMap<i64, Option<String>> {
    let file = File::open(folder.join("assignments.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut segments = BTreeMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        let keys =
            arrow::compute::cast(batch.column_by_name(key).unwrap(), &DataType::Int64).unwrap();
        let keys = keys.as_primitive::<Int64Type>();
        let names = arrow::compute::cast(batch.column_by_name("segment").unwrap(), &DataType::Utf8)
            .unwrap();
        let names = names.as_string::<i32>();
        for row in 0..batch.num_rows() {
            let segment = (!names.is_null(row)).then(|| names.value(row).to_string());
            assert!(segments.insert(keys.value(row), segment).is_none());
        }
    }
    segments
}

/// Customers per (segment in `earlier`, segment in `later`), counted by hand.
fn flows_by_hand(earlier: &Path, later: &Path, key: &str) -> BTreeMap<(String, String), u64> {
    let (before, after) = (
        segments_by_customer(earlier, key),
        segments_by_customer(later, key),
    );
    let label = |side: &BTreeMap<i64, Option<String>>, id: &i64, absent: &str| match side.get(id) {
        None => absent.to_string(),
        Some(None) => "(unassigned)".to_string(),
        Some(Some(segment)) => segment.clone(),
    };
    let mut counts = BTreeMap::new();
    for id in before.keys().chain(after.keys()).collect::<BTreeSet<_>>() {
        let pair = (
            label(&before, id, "(not in earlier run)"),
            label(&after, id, "(not in later run)"),
        );
        *counts.entry(pair).or_insert(0) += 1;
    }
    counts
}

/// The flows history.json reports for one step.
fn flows_reported(step: &Value) -> BTreeMap<(String, String), u64> {
    step["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|flow| {
            (
                (
                    flow["from"].as_str().unwrap().to_string(),
                    flow["to"].as_str().unwrap().to_string(),
                ),
                flow["customers"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Run the shipped example as of `as_of` into `dir/runs/saas_quarterly-<as_of>`, from the
/// repository (the example's data paths are relative to it).
fn run_example(dir: &Path, pipeline: &Path, as_of: &str) {
    let output = segflow()
        .current_dir(repo_path(""))
        .arg("run")
        .arg(pipeline)
        .args([
            "--as-of",
            as_of,
            "--criteria-as-warnings",
            "--quiet",
            "--out",
        ])
        .arg(dir.join(format!("runs/saas_quarterly-{as_of}")))
        .output()
        .unwrap();
    assert!(output.status.success(), "{as_of}: {}", stderr(&output));
}

fn history_in(dir: &Path, args: &[&str]) -> std::process::Output {
    segflow()
        .current_dir(dir)
        .arg("history")
        .args(args)
        .output()
        .unwrap()
}

/// Check every number of `history` against the run folders below `dir` it names.
fn check_against_the_runs(dir: &Path, history: &Value) {
    let runs = history["runs"].as_array().unwrap();
    for (j, run) in runs.iter().enumerate() {
        let folder = dir.join(run["folder"].as_str().unwrap());
        let segments = read_json(&folder.join("segments.json"));
        assert_eq!(run["as_of"], segments["as_of"]);
        assert_eq!(run["customers"], segments["customers"]);
        assert_eq!(run["unassigned"], segments["unassigned"]);
        assert_eq!(run["unassigned_share"], segments["unassigned_share"]);
        let declared = segments["segments"].as_array().unwrap();
        for segment in history["segments"].as_array().unwrap() {
            let size = &segment["sizes"][j];
            match declared.iter().find(|s| s["id"] == segment["id"]) {
                Some(s) => {
                    assert_eq!(size["customers"], s["customers"], "{}", segment["id"]);
                    assert_eq!(size["share"], s["share"], "{}", segment["id"]);
                }
                None => assert_eq!(*size, Value::Null, "absent, not 0: {}", segment["id"]),
            }
        }
        for feature in history["means"].as_array().unwrap() {
            for row in feature["segments"].as_array().unwrap() {
                let expected = declared
                    .iter()
                    .find(|s| s["id"] == row["segment"])
                    .and_then(|s| {
                        s["features"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|f| f["feature"] == feature["feature"])
                    })
                    .map_or(Value::Null, |f| f["mean"].clone());
                assert_eq!(row["means"][j], expected, "{}", feature["feature"]);
            }
        }
        let criteria = read_json(&folder.join("criteria.json"));
        for check in history["criteria"].as_array().unwrap() {
            let status = criteria["criteria"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["criterion"] == check["criterion"])
                .flat_map(|c| c["checks"].as_array().unwrap())
                .find(|k| k["subject"] == check["subject"] && k["measure"] == check["measure"])
                .map_or(Value::Null, |k| k["status"].clone());
            assert_eq!(check["statuses"][j], status, "{check}");
        }
    }
    for (i, step) in history["steps"].as_array().unwrap().iter().enumerate() {
        let (earlier, later) = (
            dir.join(runs[i]["folder"].as_str().unwrap()),
            dir.join(runs[i + 1]["folder"].as_str().unwrap()),
        );
        let by_hand = flows_by_hand(&earlier, &later, "customer_id");
        assert_eq!(flows_reported(step), by_hand, "step {i}");
        let sum = |keep: &dyn Fn(&str, &str) -> bool| -> u64 {
            by_hand
                .iter()
                .filter(|((from, to), _)| keep(from, to))
                .map(|(_, n)| n)
                .sum()
        };
        let present = |label: &str| !label.starts_with("(not in");
        assert_eq!(step["stayed"], json!(sum(&|f, t| f == t && present(f))));
        assert_eq!(
            step["moved"],
            json!(sum(&|f, t| f != t && present(f) && present(t)))
        );
        assert_eq!(step["appeared"], json!(sum(&|f, _| !present(f))));
        assert_eq!(step["disappeared"], json!(sum(&|_, t| !present(t))));
    }
}

#[test]
fn four_quarters_flows_equal_an_independent_count() {
    let dir = tempfile::TempDir::new().unwrap();
    let pipeline = repo_path("pipelines/saas_quarterly.yaml");
    for as_of in QUARTERS {
        run_example(dir.path(), &pipeline, as_of);
    }
    // Out of order on purpose: the history puts them in as-of order.
    let folders: Vec<String> = [2, 0, 3, 1]
        .iter()
        .map(|&q| format!("runs/saas_quarterly-{}", QUARTERS[q]))
        .collect();
    let args: Vec<&str> = folders.iter().map(String::as_str).collect();
    let output = history_in(dir.path(), &args);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = dir
        .path()
        .join("runs/saas_quarterly-history-2026-01-01-2026-10-01");
    assert!(
        stdout(&output).starts_with("history of 4 runs as of 2026-01-01 to 2026-10-01\n"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output)
            .ends_with("report: runs/saas_quarterly-history-2026-01-01-2026-10-01/history.html\n")
    );
    let history = read_json(&out.join("history.json"));
    let as_ofs: Vec<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["as_of"].as_str().unwrap())
        .collect();
    assert_eq!(as_ofs, QUARTERS);
    assert_eq!(history["steps"].as_array().unwrap().len(), 3);
    check_against_the_runs(dir.path(), &history);
    let moved: u64 = history["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["moved"].as_u64().unwrap())
        .sum();
    assert!(moved > 100, "customers move between quarters: {moved}");

    // By default: the numeric features of the latest run, in its order.
    let latest = read_json(
        &dir.path()
            .join("runs/saas_quarterly-2026-10-01/segments.json"),
    );
    let numeric: Vec<Value> = latest["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let t = f["data_type"].as_str().unwrap();
            ["Int", "UInt", "Float", "Decimal"]
                .iter()
                .any(|p| t.starts_with(p))
        })
        .map(|f| f["name"].clone())
        .collect();
    assert!(numeric.contains(&json!("revenue_12m")));
    assert_eq!(history["features"], Value::Array(numeric));

    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["kind"], json!("history"));
    assert_eq!(manifest["runs"][0], json!("runs/saas_quarterly-2026-01-01"));
    let markdown = std::fs::read_to_string(out.join("history.md")).unwrap();
    insta::assert_snapshot!("history_four_quarters_md", markdown);
    let html = std::fs::read_to_string(out.join("history.html")).unwrap();
    assert!(html.contains("<path class=\"flow\""));
    assert!(!html.contains("<script"));

    // A glob pattern the shell did not expand gives the same history; the history folder it
    // also matches is skipped. Chosen features replace the default.
    let output = history_in(
        dir.path(),
        &[
            "runs/saas_quarterly-*",
            "--feature",
            "tickets_90",
            "--out",
            "globbed",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let globbed = read_json(&dir.path().join("globbed/history.json"));
    assert_eq!(globbed["steps"], history["steps"]);
    assert_eq!(globbed["segments"], history["segments"]);
    assert_eq!(globbed["features"], json!(["tickets_90"]));
    check_against_the_runs(dir.path(), &globbed);

    // Existing output: refused without --replace, replaced with it.
    let output = history_in(dir.path(), &["runs/saas_quarterly-*", "--out", "globbed"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("globbed already exists"),
        "{}",
        stderr(&output)
    );
    let output = history_in(
        dir.path(),
        &["runs/saas_quarterly-*", "--out", "globbed", "--replace"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        read_json(&dir.path().join("globbed/history.json"))["features"],
        history["features"]
    );
}

#[test]
fn segments_of_another_pipeline_version_are_matched_by_id_and_absent_elsewhere() {
    let dir = tempfile::TempDir::new().unwrap();
    let v1 = repo_path("pipelines/saas_quarterly.yaml");
    // Version 2 renames `occasional` to `casual`; its data paths point at the example's data.
    let text = std::fs::read_to_string(&v1).unwrap();
    assert!(text.contains("- id: occasional"));
    let data = repo_path("pipelines/data/saas");
    let v2_text = text
        .replace("- id: occasional", "- id: casual")
        .replace("path: data/saas/", &format!("path: {}/", data.display()))
        .replace(
            "path: fixtures/",
            &format!("path: {}/", repo_path("pipelines/fixtures").display()),
        );
    let v2 = dir.path().join("saas_quarterly_v2.yaml");
    std::fs::write(&v2, v2_text).unwrap();
    run_example(dir.path(), &v1, "2026-04-01");
    run_example(dir.path(), &v1, "2026-07-01");
    run_example(dir.path(), &v2, "2026-10-01");

    let output = history_in(dir.path(), &["runs/saas_quarterly-*", "--out", "h"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let history = read_json(&dir.path().join("h/history.json"));
    check_against_the_runs(dir.path(), &history);
    let segment = |id: &str| {
        history["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no segment {id}"))
            .clone()
    };
    let (casual, occasional) = (segment("casual"), segment("occasional"));
    assert_eq!(casual["sizes"][0], Value::Null);
    assert_eq!(casual["sizes"][1], Value::Null);
    assert!(casual["sizes"][2]["customers"].as_u64().unwrap() > 0);
    assert!(occasional["sizes"][1]["customers"].as_u64().unwrap() > 0);
    assert_eq!(occasional["sizes"][2], Value::Null);
    // The renamed segment's customers flow from `occasional` to `casual`.
    let last_step = flows_reported(&history["steps"][1]);
    assert!(last_step[&("occasional".to_string(), "casual".to_string())] > 0);
    let notes: Vec<&str> = history["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.contains(
            &"segment `casual` is absent from the runs as of 2026-04-01, 2026-07-01: their pipeline does not declare it"
        ),
        "{notes:?}"
    );
    let markdown = std::fs::read_to_string(dir.path().join("h/history.md")).unwrap();
    assert!(
        markdown.contains("| Occasional users (`occasional`) |")
            && markdown.contains(" | absent |\n"),
        "{markdown}"
    );
}

#[test]
fn history_refuses_what_it_cannot_show() {
    let workspace = two_quarters_of_windows();

    // One run is not a history.
    let output = workspace.segflow(&["history", "q4"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("a history needs at least two run folders, got 1: q4"),
        "{}",
        stderr(&output)
    );
    let output = workspace.segflow(&["history", "q4", "q4"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a folder named twice counts once"
    );

    // A missing folder, a folder that is not a run, a pattern matching nothing: exit 10.
    let output = workspace.segflow(&["history", "q3", "nowhere"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder nowhere: does not exist"),
        "{}",
        stderr(&output)
    );
    std::fs::create_dir(workspace.path().join("notes")).unwrap();
    workspace.write("notes/todo.txt", "not a run");
    let output = workspace.segflow(&["history", "q3", "notes"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder notes: cannot read segments.json"),
        "{}",
        stderr(&output)
    );
    let output = workspace.segflow(&["history", "q3", "q9*"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder q9*: no run folder matches this pattern"),
        "{}",
        stderr(&output)
    );

    // Two runs of one pipeline as of the same date.
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4-again"]);
    let output = workspace.segflow(&["history", "q3", "q4", "q4-again"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("q4 and q4-again are both runs of pipeline `windows` as of 2026-10-01"),
        "{}",
        stderr(&output)
    );

    // A feature none of the runs has.
    let output = workspace.segflow(&["history", "q3", "q4", "--feature", "event_30"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--feature `event_30` is in none of the runs")
            && stderr(&output).contains("did you mean `events_30`?"),
        "{}",
        stderr(&output)
    );

    // A text feature has no mean.
    let output = workspace.segflow(&["history", "q3", "q4", "--feature", "plan"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--feature `plan` is not a number in any of the runs"),
        "{}",
        stderr(&output)
    );

    // A feature named twice is shown once.
    workspace.segflow_ok(&[
        "history",
        "q3",
        "q4",
        "--feature",
        "events_30",
        "--feature",
        "events_30",
        "--out",
        "twice",
    ]);
    let twice = read_json(&workspace.path().join("twice/history.json"));
    assert_eq!(twice["features"], json!(["events_30"]));
    assert_eq!(twice["means"].as_array().unwrap().len(), 1);

    // The output folder: never overwritten without --replace, and --replace only replaces a
    // folder segflow wrote.
    workspace.segflow_ok(&["history", "q3", "q4", "--out", "h"]);
    assert!(workspace.path().join("h/history.html").is_file());
    let before = workspace.read("h/history.json");
    let output = workspace.segflow(&["history", "q3", "q4", "--out", "h"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert_eq!(workspace.read("h/history.json"), before);
    workspace.segflow_ok(&["history", "q4", "q3", "--out", "h", "--replace"]);
    assert_eq!(workspace.read("h/history.json"), before);
    let output = workspace.segflow(&["history", "q3", "q4", "--out", "notes", "--replace"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("it is not a segflow run folder"),
        "{}",
        stderr(&output)
    );
    assert!(workspace.path().join("notes/todo.txt").is_file());
    // Nor one holding a run folder it reads.
    let output = workspace.segflow(&["history", "q3", "h/../q4", "--out", ".", "--replace"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let entries = workspace.entries();
    assert!(
        !entries.iter().any(|e| e.contains("segflow-staging")),
        "{entries:?}"
    );
}

#[test]
fn templates_in_a_folder_replace_the_built_in_history_reports() {
    let workspace = two_quarters_of_windows();
    std::fs::create_dir(workspace.path().join("mine")).unwrap();
    workspace.write(
        "mine/history.md.j2",
        "{% for s in history.steps %}{{ s.from }}→{{ s.to }}: {{ s.moved }} moved\n{% endfor %}",
    );
    workspace.segflow_ok(&["history", "q3", "q4", "--templates", "mine", "--out", "h"]);
    let history = read_json(&workspace.path().join("h/history.json"));
    assert_eq!(
        workspace.read("h/history.md"),
        format!(
            "2026-09-01→2026-10-01: {} moved\n",
            history["steps"][0]["moved"]
        )
    );
    assert!(
        workspace.read("h/history.html").contains("<svg"),
        "the built-in HTML template where the folder has none"
    );
    let output = workspace.segflow(&["history", "q3", "q4", "--templates", "theirs"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--templates theirs: no such folder"));
}

#[test]
fn customers_who_appear_or_disappear_flow_from_and_to_outside_the_runs() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--as-of",
        "2026-09-01",
        "--out",
        "q3",
    ]);
    // Next quarter customer 2 is gone and customer 6 has joined.
    let customers = workspace.read("customers.csv");
    assert!(customers.contains("2,2025-01-01,free,\n"));
    workspace.write(
        "customers.csv",
        &format!(
            "{}6,2026-09-15,pro,3\n",
            customers.replace("2,2025-01-01,free,\n", "")
        ),
    );
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4"]);
    workspace.segflow_ok(&["history", "q4", "q3", "--out", "h"]);
    let history = read_json(&workspace.path().join("h/history.json"));
    check_against_the_runs(workspace.path(), &history);
    let step = &history["steps"][0];
    assert_eq!(
        (&step["appeared"], &step["disappeared"]),
        (&json!(1), &json!(1))
    );
    let flows = flows_reported(step);
    assert_eq!(
        flows
            .iter()
            .filter(|((from, to), _)| from == "(not in earlier run)" || to == "(not in later run)")
            .count(),
        2,
        "{flows:?}"
    );
    // The chart draws them from and to outlined bars beside the runs' own.
    let html = workspace.read("h/history.html");
    assert!(html.contains("new in the next run, as of 2026-09-01: 1 customers"));
    assert!(html.contains("gone since the previous run, as of 2026-10-01: 1 customers"));
    assert_eq!(
        html.matches("<path class=\"flow\"").count(),
        step["flows"].as_array().unwrap().len()
    );
}

/// The `windows` fixture run as of 2026-09-01 into `q3` and as of its own date into `q4`.
fn two_quarters_of_windows() -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--as-of",
        "2026-09-01",
        "--out",
        "q3",
    ]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4"]);
    workspace
}

/// The lint-clean windows fixture run as of 2026-09-01 into `r1` and as of 2026-10-01 into `r2`.
fn two_runs_of_windows() -> crate::support::Workspace {
    let workspace = crate::support::Workspace::lint_clean();
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--out",
        "r1",
        "--as-of",
        "2026-09-01",
    ]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "r2"]);
    workspace
}

/// Run folders may come from elsewhere: the pipeline name they hold must not steer where the
/// default history folder is written.
#[test]
fn a_pipeline_name_from_a_run_folder_never_becomes_a_path() {
    let workspace = two_runs_of_windows();
    for run in ["r1", "r2"] {
        let path = format!("{run}/segments.json");
        let text = workspace.read(&path);
        assert!(text.contains("\"name\": \"windows\""));
        workspace.write(
            &path,
            &text.replace("\"name\": \"windows\"", "\"name\": \"../../escaped\""),
        );
    }
    let before = workspace.entries();
    let output = workspace.segflow(&["history", "r1", "r2"]);
    let message = crate::support::stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(10), "{message}");
    assert!(
        message.contains("not a pipeline name") && message.contains("--out"),
        "{message}"
    );
    assert_eq!(workspace.entries(), before);
    assert!(!workspace.path().join("../escaped").exists());
    workspace.segflow_ok(&["history", "r1", "r2", "--out", "h"]);
}

/// Counts that do not add up (an edited `segments.json`) make the run folder corrupt, exit 10,
/// instead of an overflow in history's sums.
#[test]
fn a_run_folder_whose_counts_do_not_add_up_is_corrupt() {
    let workspace = two_runs_of_windows();
    let text = workspace.read("r1/segments.json");
    let key = "\"unassigned\": ";
    let start = text.find(key).unwrap() + key.len();
    let end = start + text[start..].find(',').unwrap();
    workspace.write(
        "r1/segments.json",
        &format!("{}18446744073709551615{}", &text[..start], &text[end..]),
    );
    for args in [
        &["history", "r1", "r2", "--out", "h"][..],
        &["diff", "r1", "r2"],
    ] {
        let output = workspace.segflow(args);
        let message = crate::support::stderr_unwrapped(&output);
        assert_eq!(output.status.code(), Some(10), "{args:?}: {message}");
        assert!(message.contains("does not add up"), "{message}");
    }
}

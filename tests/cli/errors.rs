//! Every error path of `validate` and `run`: the exact message (snapshot), its location, the
//! exit code, and that a failed run leaves no output behind.

use crate::support::{Workspace, files_below, stderr};

/// Exit codes documented in the README.
const USAGE: i32 = 2;
const PIPELINE: i32 = 3;
const DATA: i32 = 4;
const OUTPUT: i32 = 5;

/// Run `args` in a fresh copy of the `windows` fixture after replacing `from` with `to` in its
/// pipeline, expect exit `code`, and return stderr.
fn failure(from: &str, to: &str, args: &[&str], code: i32) -> String {
    let workspace = Workspace::from_fixture("windows");
    if !from.is_empty() {
        workspace.edit_pipeline(from, to);
    }
    let before = workspace.entries();
    let output = workspace.segflow(args);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{message}");
    assert_eq!(
        workspace.entries(),
        before,
        "a failed command left files behind"
    );
    assert!(!message.contains("panicked"), "{message}");
    message
}

fn validate_fails(from: &str, to: &str) -> String {
    failure(from, to, &["validate", "pipeline.yaml"], PIPELINE)
}

fn run_fails(from: &str, to: &str, code: i32) -> String {
    failure(from, to, &["run", "pipeline.yaml", "--out", "out"], code)
}

#[test]
fn yaml_syntax_error_points_at_line_and_column() {
    let message = validate_fails(
        "entity: { source: customers, key: customer_id }",
        "entity: { source: customers, key: customer_id",
    );
    insta::assert_snapshot!(message);
}

#[test]
fn misspelt_key_suggests_the_right_one() {
    let message = validate_fails(
        "    description: Days since signup.",
        "    descripton: Days since signup.",
    );
    assert!(message.contains("pipeline.yaml:41:5"), "{message}");
    insta::assert_snapshot!(message);
}

#[test]
fn wrong_type_names_the_expected_one() {
    let message = validate_fails("version: 1", "version: one");
    insta::assert_snapshot!(message);
}

#[test]
fn unknown_kind_suggests_the_vocabulary() {
    let message = validate_fails("kind: needs", "kind: need");
    assert!(message.contains("did you mean `needs`?"), "{message}");
}

#[test]
fn unsupported_version_is_rejected() {
    let message = validate_fails("version: 1", "version: 2");
    assert!(
        message.contains("unsupported pipeline version 2"),
        "{message}"
    );
}

#[test]
fn unknown_source_lists_the_sources() {
    let message = validate_fails(
        "aggregate: { source: events, expr: count(*)",
        "aggregate: { source: event, expr: count(*)",
    );
    insta::assert_snapshot!(message);
}

#[test]
fn unknown_feature_in_rule_is_named_at_its_column() {
    let message = validate_fails("when: events_30 >= 3", "when: event_30 >= 3");
    insta::assert_snapshot!(message);
}

#[test]
fn unknown_entity_column_lists_the_columns() {
    let message = validate_fails("expr: score * 2", "expr: scor * 2");
    insta::assert_snapshot!(message);
}

#[test]
fn unknown_source_column_lists_the_columns() {
    let message = validate_fails(
        "expr: count(DISTINCT feature)",
        "expr: count(DISTINCT featur)",
    );
    insta::assert_snapshot!(message);
}

#[test]
fn sql_that_does_not_parse_is_reported_with_the_feature() {
    let message = validate_fails("expr: score * 2", "expr: score * * 2");
    insta::assert_snapshot!(message);
}

#[test]
fn sql_that_does_not_plan_carries_datafusion_message() {
    let message = validate_fails("expr: upper(plan)", "expr: no_such_function(plan)");
    assert!(
        message.contains("feature `plan` does not plan"),
        "{message}"
    );
    assert!(message.contains("no_such_function"), "{message}");
    assert!(message.contains("pipeline.yaml:54:11"), "{message}");
}

#[test]
fn non_boolean_rule_is_rejected() {
    let message = validate_fails("when: events_30 >= 3", "when: events_30 + 3");
    assert!(
        message.contains("the condition of segment `busy` is Int64, not true/false"),
        "{message}"
    );
}

#[test]
fn duplicate_ids_are_reported() {
    let message = validate_fails("  - id: active\n", "  - id: busy\n");
    insta::assert_snapshot!(message);
}

#[test]
fn feature_cycle_is_shown_as_a_path() {
    let message = validate_fails("expr: as_of() - signup_date", "expr: tenure_rank");
    insta::assert_snapshot!(message);
}

#[test]
fn catch_all_must_be_last() {
    let message = validate_fails("    when: events_30 >= 3\n", "\n");
    assert!(
        message.contains("catch-all segment `busy` (no `when`) is not the last segment"),
        "{message}"
    );
}

#[test]
fn window_needs_a_time_column() {
    let message = validate_fails("    time_column: ts\n", "\n");
    assert!(
        message.contains(
            "feature `active_days_30` has a 30-day window, but source `events` has no `time_column`"
        ),
        "{message}"
    );
}

#[test]
fn invalid_segment_id_is_rejected() {
    let message = validate_fails("- id: lapsed", "- id: ../lapsed");
    assert!(
        message.contains("invalid segment id `../lapsed`"),
        "{message}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline("when: events_30 >= 3", "when: event_30 >= 3");
    workspace.edit_pipeline(
        "source: events, expr: count(*)",
        "source: event, expr: count(*)",
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    let message = stderr(&output);
    assert!(message.contains("pipeline.yaml: 2 problems"), "{message}");
    assert!(
        message.contains("unknown source `event`") && message.contains("`event_30`"),
        "{message}"
    );
}

#[test]
fn missing_source_file_names_the_source_and_path() {
    let message = run_fails("path: events.csv", "path: no_such_events.csv", DATA);
    assert!(
        message.contains("source `events`: cannot read no_such_events.csv"),
        "{message}"
    );
    assert!(message.contains("--source events=PATH"), "{message}");
}

#[test]
fn glob_matching_nothing_is_an_error() {
    let message = run_fails("path: events.csv", "path: \"exports/*.csv\"", DATA);
    assert!(
        message.contains("no files match `exports/*.csv`"),
        "{message}"
    );
}

#[test]
fn bad_value_in_typed_csv_column_is_a_data_error() {
    let workspace = Workspace::from_fixture("windows");
    let customers = workspace.read("customers.csv");
    workspace.write(
        "customers.csv",
        &customers.replace("3,2026-07-01", "3,July 1st"),
    );
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(DATA), "{message}");
    assert!(message.contains("July 1st"), "{message}");
    assert!(!workspace.path().join("out").exists());
}

#[test]
fn duplicate_and_null_entity_keys_are_data_errors() {
    let workspace = Workspace::from_fixture("windows");
    let customers = workspace.read("customers.csv");
    workspace.write(
        "customers.csv",
        &format!("{customers}3,2026-01-01,pro,1\n3,2026-01-02,pro,1\n"),
    );
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(DATA), "{message}");
    assert!(
        message.contains("source `customers`: 2 rows repeat a `customer_id` already seen (e.g. 3)"),
        "{message}"
    );

    workspace.write("customers.csv", &format!("{customers},2026-01-01,pro,1\n"));
    let message = stderr(&workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]));
    assert!(
        message.contains("1 customers have no `customer_id` (null key)"),
        "{message}"
    );
    assert!(!workspace.path().join("out").exists());
}

#[test]
fn empty_entity_source_is_a_data_error() {
    let workspace = Workspace::from_fixture("windows");
    workspace.write("customers.csv", "customer_id,signup_date,plan,score\n");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(DATA), "{message}");
    assert!(message.contains("no rows"), "{message}");
}

#[test]
fn unknown_source_override_is_a_usage_error() {
    let message = failure(
        "",
        "",
        &["run", "pipeline.yaml", "--source", "event=x.csv"],
        USAGE,
    );
    assert!(
        message.contains("--source names unknown source `event`"),
        "{message}"
    );
    assert!(message.contains("did you mean `events`?"), "{message}");
}

#[test]
fn existing_run_folder_is_never_overwritten() {
    let workspace = Workspace::from_fixture("windows");
    let first = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(first.status.success());
    std::fs::write(workspace.path().join("out/note.txt"), "reviewed").unwrap();
    let before = workspace.entries();
    let second = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&second);
    assert_eq!(second.status.code(), Some(OUTPUT), "{message}");
    assert!(message.contains("out already exists"), "{message}");
    assert_eq!(workspace.entries(), before);
    assert_eq!(workspace.read("out/note.txt"), "reviewed");

    // --replace never deletes a file segflow did not write: it refuses, and touches nothing.
    let files = files_below(workspace.path());
    let refused = workspace.segflow(&["run", "pipeline.yaml", "--out", "out", "--replace"]);
    let message = stderr(&refused);
    assert_eq!(refused.status.code(), Some(OUTPUT), "{message}");
    assert!(message.contains("note.txt"), "{message}");
    assert_eq!(workspace.read("out/note.txt"), "reviewed");
    assert_eq!(files_below(workspace.path()), files);
    assert_eq!(workspace.entries(), before, "no staging folder left behind");
}

#[test]
fn failed_replace_keeps_the_previous_run() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let previous = workspace.read("out/segments.json");
    workspace.edit_pipeline("path: events.csv", "path: gone.csv");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out", "--replace"]);
    assert_eq!(output.status.code(), Some(DATA));
    assert_eq!(workspace.read("out/segments.json"), previous);
}

#[test]
fn default_run_folder_is_named_after_pipeline_and_as_of() {
    let workspace = Workspace::from_fixture("windows");
    let output = workspace.segflow(&["run", "pipeline.yaml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        workspace
            .path()
            .join("runs/windows-2026-10-01/report.html")
            .is_file()
    );
}

#[test]
fn replace_only_ever_replaces_a_segflow_run_folder() {
    let workspace = Workspace::from_fixture("windows");
    // The sources live in data/, beside a folder of the user's own.
    std::fs::create_dir(workspace.path().join("data")).unwrap();
    for file in ["customers.csv", "events.csv"] {
        std::fs::rename(
            workspace.path().join(file),
            workspace.path().join("data").join(file),
        )
        .unwrap();
    }
    workspace.edit_pipeline("path: customers.csv", "path: data/customers.csv");
    workspace.edit_pipeline("path: events.csv", "path: data/events.csv");
    std::fs::create_dir_all(workspace.path().join("notes")).unwrap();
    workspace.write("notes/plan.txt", "my own file");
    let before = files_below(workspace.path());

    for (out, why) in [
        ("data", "it holds"),
        (".", "it holds"),
        (
            "notes",
            "it is not a segflow run folder (no segflow manifest.json)",
        ),
        ("pipeline.yaml", "it is not a folder"),
        ("/dev/null", "it is not a folder"),
    ] {
        let output = workspace.segflow(&["run", "pipeline.yaml", "--out", out, "--replace"]);
        assert_eq!(
            output.status.code(),
            Some(OUTPUT),
            "--out {out}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.contains(&format!("--replace refuses to replace {out}: {why}")),
            "--out {out}: {message}"
        );
        assert_eq!(
            files_below(workspace.path()),
            before,
            "--out {out} changed files"
        );
    }

    // A folder an earlier run wrote is replaced.
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "runs/q3"]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "runs/q3", "--replace"]);
    assert!(workspace.path().join("runs/q3/manifest.json").is_file());
}

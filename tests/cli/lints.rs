//! Every lint code: a pipeline that triggers it and one that does not, the location it points
//! at, and `--deny-warnings`.

use crate::support::{Workspace, read_json, segflow, stderr, stdout};

const LINT_DENIED: i32 = 7;

fn clean() -> Workspace {
    Workspace::lint_clean()
}

fn lint(workspace: &Workspace) -> String {
    let output = workspace.segflow(&["lint", "pipeline.yaml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    stderr(&output)
}

fn codes(message: &str) -> Vec<&str> {
    message
        .lines()
        .filter_map(|line| line.trim().strip_prefix("segflow::"))
        .collect()
}

#[test]
fn a_clean_pipeline_has_no_warnings() {
    let workspace = clean();
    let output = workspace.segflow(&["lint", "pipeline.yaml", "--deny-warnings"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "pipeline.yaml: 0 lint warning(s)\n");
}

#[test]
fn missing_owner_and_action() {
    let message = lint(&Workspace::from_fixture("windows"));
    assert_eq!(
        codes(&message)
            .iter()
            .filter(|c| **c == "missing-owner")
            .count(),
        4,
        "{message}"
    );
    assert_eq!(
        codes(&message)
            .iter()
            .filter(|c| **c == "missing-action")
            .count(),
        4,
        "{message}"
    );
    assert!(message.contains("segment `busy` has no owner"), "{message}");
    assert!(message.contains("[pipeline.yaml:56:9]"), "{message}");
    // A negative segment needs no action.
    let workspace = clean();
    workspace.edit_pipeline(
        "    actions: [Act]\n    name: Lapsed",
        "    negative: true\n    name: Lapsed",
    );
    assert!(codes(&lint(&workspace)).is_empty());
}

#[test]
fn too_many_segments() {
    let workspace = clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}review:\n  max_segments: 3\n"),
    );
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["too-many-segments"], "{message}");
    assert!(
        message.contains("4 segments, more than the 3 `review.max_segments` allows"),
        "{message}"
    );
}

#[test]
fn demographic_only_rules() {
    let workspace = clean();
    let pipeline = workspace.read("pipeline.yaml");
    let all_demographic = pipeline
        .replace("kind: behavioral", "kind: demographic")
        .replace("kind: firmographic", "kind: geographic");
    workspace.write("pipeline.yaml", &all_demographic);
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["demographic-only"], "{message}");
}

#[test]
fn unreachable_rule_statically_and_empty_segment_at_run_time() {
    let workspace = clean();
    workspace.edit_pipeline(
        "  - id: active\n",
        "  - id: very_busy\n    name: Very busy\n    owner: team\n    actions: [Act]\n    when: events_30 >= 5 AND active_days_30 >= 1\n  - id: active\n",
    );
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["unreachable-rule"], "{message}");
    assert!(
        message.contains(
            "segment `very_busy` can never match: every customer it would take matches `busy` first"
        ),
        "{message}"
    );

    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert_eq!(
        codes(&message),
        ["unreachable-rule", "empty-segment"],
        "{message}"
    );
    let lints = read_json(&workspace.path().join("out/lint.json"));
    let line = workspace
        .read("pipeline.yaml")
        .lines()
        .position(|l| l == "  - id: very_busy")
        .unwrap()
        + 1;
    assert_eq!(lints[1]["code"], "empty-segment");
    assert_eq!(lints[1]["line"], line);
    assert!(
        workspace
            .read("out/report.md")
            .contains(&format!("| `empty-segment` | line {line} |"))
    );
}

#[test]
fn empty_segment_without_a_static_cause() {
    let workspace = clean();
    workspace.edit_pipeline(
        "when: days_since_last_event > 90",
        "when: days_since_last_event > 9000",
    );
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(codes(&stderr(&output)), ["empty-segment"]);
    // With customers in every segment, nothing is reported.
    let workspace = clean();
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(codes(&stderr(&output)).is_empty(), "{}", stderr(&output));
}

#[test]
fn persona_without_data() {
    let workspace = clean();
    workspace.edit_pipeline(
        "when: days_since_last_event > 90",
        "when: days_since_last_event > 9000",
    );
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write("pipeline.yaml", &format!("{pipeline}personas:\n  - segment: lapsed\n    name: Lou\n  - segment: busy\n    name: Bea\n"));
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&output);
    assert_eq!(
        codes(&message),
        ["empty-segment", "persona-without-data"],
        "{message}"
    );
    assert!(
        message.contains("persona `Lou` describes segment `lapsed`, which has no customers"),
        "{message}"
    );
}

#[test]
fn stale_review() {
    let workspace = clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}review:\n  last_reviewed: 2026-05-01\n"),
    );
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["stale-review"], "{message}");
    assert!(
        message.contains(
            "last reviewed 153 days before the as-of date 2026-10-01, more than the 92-day"
        ),
        "{message}"
    );
    assert!(message.contains("[pipeline.yaml:77:18]"), "{message}");
    workspace.edit_pipeline("last_reviewed: 2026-05-01", "last_reviewed: 2026-09-01");
    assert!(codes(&lint(&workspace)).is_empty());
    // The review date is checked against the as-of date in force.
    let output = workspace.segflow(&["lint", "pipeline.yaml", "--as-of", "2027-01-01"]);
    assert_eq!(codes(&stderr(&output)), ["stale-review"]);
}

#[test]
fn deny_warnings_fails_lint_validate_and_run() {
    let workspace = Workspace::from_fixture("windows");
    for args in [
        vec!["lint", "pipeline.yaml", "--deny-warnings"],
        vec!["validate", "pipeline.yaml", "--deny-warnings"],
        vec!["run", "pipeline.yaml", "--out", "out", "--deny-warnings"],
    ] {
        let output = workspace.segflow(&args);
        assert_eq!(
            output.status.code(),
            Some(LINT_DENIED),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("8 lint warning(s) and --deny-warnings"),
            "{}",
            stderr(&output)
        );
    }
    assert!(
        !workspace.path().join("out").exists(),
        "static lints fail before anything is written"
    );
}

#[test]
fn explain_documents_every_code() {
    for code in [
        "too-many-segments",
        "demographic-only",
        "unreachable-rule",
        "empty-segment",
        "persona-without-data",
        "stale-review",
        "missing-owner",
        "missing-action",
    ] {
        let output = segflow().args(["explain", code]).output().unwrap();
        assert!(output.status.success());
        assert!(stdout(&output).starts_with(&format!("{code}: ")));
    }
    let output = segflow()
        .args(["explain", "unreachable-rules"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("did you mean `unreachable-rule`?"));
}

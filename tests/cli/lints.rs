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
    workspace.edit_pipeline("    actions: [Act on lapsed]\n", "");
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

/// A fifth segment for the clean pipeline: a catch-all, so no rule and no customer changes.
const FIFTH_SEGMENT: &str = "  - id: everyone_else\n    name: Everyone else\n    owner: team\n    actions: [Act on the rest]\n";

#[test]
fn too_many_segments_by_default_above_four() {
    let workspace = clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write("pipeline.yaml", &format!("{pipeline}{FIFTH_SEGMENT}"));
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["too-many-segments"], "{message}");
    assert!(
        message.contains("5 segments, more than the 4 `review.max_segments` allows"),
        "{message}"
    );
    // Four, the clean pipeline's count, is within the default.
    assert!(codes(&lint(&clean())).is_empty());
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
    assert!(
        message.contains(
            "every segment rule uses only demographic, firmographic or geographic features"
        ),
        "{message}"
    );
}

#[test]
fn firmographic_only_rules_are_demographic_only_too() {
    // The seed's "small businesses": segments by company traits alone.
    let workspace = clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &pipeline.replace("kind: behavioral", "kind: firmographic"),
    );
    assert_eq!(codes(&lint(&workspace)), ["demographic-only"]);
    // One rule on a behavioral feature is enough: `busy` uses `events_30`.
    let workspace = clean();
    let pipeline = workspace
        .read("pipeline.yaml")
        .replace("kind: behavioral", "kind: firmographic")
        .replacen(
            "kind: firmographic\n    description: Events in",
            "kind: behavioral\n    description: Events in",
            1,
        );
    workspace.write("pipeline.yaml", &pipeline);
    assert!(codes(&lint(&workspace)).is_empty(), "{pipeline}");
}

#[test]
fn no_negative_segment() {
    let workspace = clean();
    workspace.edit_pipeline("    negative: true\n    negative_reason: Gone quiet.\n", "");
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["no-negative-segment"], "{message}");
    assert!(
        message.contains("no segment is marked `negative: true`"),
        "{message}"
    );
    // The clean pipeline marks `lapsed` negative.
    assert!(codes(&lint(&clean())).is_empty());
}

#[test]
fn one_size_fits_all() {
    let workspace = clean();
    // The same set as `busy`'s, spelt differently and with a blank action.
    workspace.edit_pipeline(
        "actions: [Act on active]",
        "actions: [\"  act ON busy \", \" \"]",
    );
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["one-size-fits-all"], "{message}");
    assert!(
        message.contains(
            "segments `busy` and `active` declare the same actions, so they are served the same way"
        ),
        "{message}"
    );
    // Sharing one action of several is serving them differently.
    let workspace = clean();
    workspace.edit_pipeline(
        "actions: [Act on active]",
        "actions: [Act on busy, Call them]",
    );
    assert!(codes(&lint(&workspace)).is_empty());
}

#[test]
fn unreachable_rule_statically_and_empty_segment_at_run_time() {
    let workspace = clean();
    workspace.edit_pipeline(
        "  - id: active\n",
        "  - id: very_busy\n    name: Very busy\n    owner: team\n    actions: [Act]\n    when: events_30 >= 5 AND active_days_30 >= 1\n  - id: active\n",
    );
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}review:\n  max_segments: 5\n"),
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
    assert!(message.contains("[pipeline.yaml:79:18]"), "{message}");
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
            stderr(&output).contains("9 lint warning(s) and --deny-warnings"),
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
        "no-negative-segment",
        "one-size-fits-all",
        "segment-proliferation",
        "unknown-lint",
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

#[test]
fn segment_proliferation_against_the_last_reviewed_run() {
    let workspace = clean();
    let run = |as_of: &str| {
        let output = workspace.segflow(&["run", "pipeline.yaml", "--as-of", as_of]);
        assert!(output.status.success(), "{}", stderr(&output));
    };
    // Two earlier runs in the default runs folder: four segments on 2026-08-01, five on
    // 2026-09-01 (with a note, so that run itself was quiet).
    run("2026-08-01");
    let four = workspace.read("pipeline.yaml");
    let five =
        format!("{four}{FIFTH_SEGMENT}review:\n  max_segments: 5\n  last_reviewed: REVIEWED\n");
    workspace.write(
        "pipeline.yaml",
        &five.replace("REVIEWED\n", "2026-08-15\n  note: Split off the rest.\n"),
    );
    run("2026-09-01");

    // Reviewed on 2026-08-15: the last reviewed run is the four-segment one of 2026-08-01.
    workspace.write("pipeline.yaml", &five.replace("REVIEWED", "2026-08-15"));
    let message = lint(&workspace);
    assert_eq!(codes(&message), ["segment-proliferation"], "{message}");
    let output = workspace.segflow(&["lint", "pipeline.yaml", "--format", "json"]);
    let json: serde_json::Value =
        serde_json::from_str(stdout(&output).lines().next().unwrap()).expect("one JSON diagnostic");
    assert_eq!(
        json["message"],
        "5 segments, 1 more than the 4 of the last reviewed run runs/windows-2026-08-01 (as of 2026-08-01); new: `everyone_else`"
    );
    // `run` warns too, and records it in lint.json.
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(codes(&stderr(&output)), ["segment-proliferation"]);
    assert_eq!(
        read_json(&workspace.path().join("out/lint.json"))[0]["code"],
        "segment-proliferation"
    );

    // A note saying why quiets it.
    workspace.write(
        "pipeline.yaml",
        &five.replace("REVIEWED\n", "2026-08-15\n  note: Split off the rest.\n"),
    );
    assert!(codes(&lint(&workspace)).is_empty());
    // Reviewed on 2026-09-01: the five-segment run is the last reviewed one.
    workspace.write("pipeline.yaml", &five.replace("REVIEWED", "2026-09-01"));
    assert!(codes(&lint(&workspace)).is_empty());
    // Reviewed before every run: the newest earlier run (five segments) is the one compared.
    workspace.write("pipeline.yaml", &five.replace("REVIEWED", "2026-07-20"));
    assert!(codes(&lint(&workspace)).is_empty());
    // Earlier runs are looked for in --runs-dir only, and only before the as-of date.
    workspace.write("pipeline.yaml", &five.replace("REVIEWED", "2026-08-15"));
    let output = workspace.segflow(&["lint", "pipeline.yaml", "--runs-dir", "elsewhere"]);
    assert!(codes(&stderr(&output)).is_empty(), "{}", stderr(&output));
    let output = workspace.segflow(&["lint", "pipeline.yaml", "--as-of", "2026-08-01"]);
    assert!(codes(&stderr(&output)).is_empty(), "{}", stderr(&output));
}

#[test]
fn allowed_lints_are_not_reported_and_need_a_reason() {
    let without_negative = || {
        let workspace = clean();
        workspace.edit_pipeline("    negative: true\n    negative_reason: Gone quiet.\n", "");
        workspace
    };
    let allow = |workspace: &Workspace, code: &str, reason: &str| {
        let pipeline = workspace.read("pipeline.yaml");
        workspace.write(
            "pipeline.yaml",
            &format!("{pipeline}review:\n  allow:\n    {code}: \"{reason}\"\n"),
        );
    };
    let workspace = without_negative();
    allow(
        &workspace,
        "no-negative-segment",
        "Every customer is worth serving here.",
    );
    assert!(codes(&lint(&workspace)).is_empty());
    // Allowing one lint leaves the others.
    let workspace = without_negative();
    allow(&workspace, "stale-review", "Reviewed elsewhere.");
    assert_eq!(codes(&lint(&workspace)), ["no-negative-segment"]);

    let workspace = without_negative();
    allow(
        &workspace,
        "no-negative-segments",
        "Every customer is worth serving here.",
    );
    let output = workspace.segflow(&["lint", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("segflow::unknown-lint"), "{message}");
    assert!(
        message.contains("`no-negative-segments` is not a lint code"),
        "{message}"
    );
    assert!(
        message.contains("did you mean `no-negative-segment`?"),
        "{message}"
    );
    let workspace = without_negative();
    allow(&workspace, "no-negative-segment", " ");
    let output = workspace.segflow(&["lint", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`no-negative-segment` is allowed without a reason"),
        "{}",
        stderr(&output)
    );
}

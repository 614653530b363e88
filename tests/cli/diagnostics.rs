//! The diagnostic code registry and the JSON diagnostics: every registered code is explained and
//! triggered by some test, and `--format json` prints one object per problem.

use std::path::Path;

use segflow::diagnostic::codes;

use crate::support::{Workspace, repo_path, segflow, stdout};

/// Every file under `dir`, recursively: test sources and snapshots.
fn test_texts(dir: &Path, texts: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            test_texts(&path, texts);
        } else {
            texts.push(std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn every_registered_code_is_explained_and_triggered_by_a_test() {
    let mut texts = Vec::new();
    test_texts(&repo_path("tests/cli"), &mut texts);
    let mut untriggered = Vec::new();
    for code in codes::ALL {
        let output = segflow().args(["explain", code.name]).output().unwrap();
        assert!(output.status.success(), "explain {}", code.name);
        assert_eq!(
            stdout(&output),
            format!("{}: {}\n", code.name, code.explanation)
        );
        // Human output names codes `segflow::code`, JSON output `{"code":"code"`; the lint
        // tests assert on lint codes by name (distinctive enough to search for quoted).
        let human = format!("segflow::{}", code.name);
        let json = format!("{{\"code\":\"{}\"", code.name);
        let quoted = format!("\"{}\"", code.name);
        let lint = code.severity == codes::Severity::Warning;
        if !texts
            .iter()
            .any(|t| t.contains(&human) || t.contains(&json) || (lint && t.contains(&quoted)))
        {
            untriggered.push(code.name);
        }
    }
    assert!(
        untriggered.is_empty(),
        "no test output shows these codes: {untriggered:?}"
    );
}

#[test]
fn explain_names_the_codes_that_exist_when_asked_for_another() {
    let output = segflow()
        .args(["explain", "unknown-colum"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = crate::support::stderr(&output);
    assert!(
        message.contains("did you mean `unknown-column`?"),
        "{message}"
    );
}

fn json_lines(workspace: &Workspace, args: &[&str], code: i32) -> String {
    let output = workspace.segflow(args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{}",
        crate::support::stderr(&output)
    );
    let text = stdout(&output);
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        for key in [
            "code", "severity", "message", "file", "line", "column", "help",
        ] {
            assert!(value.get(key).is_some(), "{key} missing in {line}");
        }
    }
    text
}

#[test]
fn json_diagnostics_for_pipeline_errors_lints_and_run_failures() {
    // Two problems in the pipeline file: one line each, with file, line and column.
    let workspace = Workspace::lint_clean();
    workspace.edit_pipeline("when: events_30 >= 3", "when: event_30 >= 3");
    workspace.edit_pipeline("expr: upper(plan)", "expr: upper(plan");
    insta::assert_snapshot!(
        "json_pipeline_errors",
        json_lines(
            &workspace,
            &["validate", "pipeline.yaml", "--format", "json"],
            3
        )
    );

    // Lint warnings of `lint` and `run`; with --deny-warnings the last line is the failure.
    let workspace = Workspace::from_fixture("windows");
    insta::assert_snapshot!(
        "json_lints",
        json_lines(
            &workspace,
            &[
                "lint",
                "pipeline.yaml",
                "--format",
                "json",
                "--deny-warnings"
            ],
            7
        )
    );

    // A value that breaks a feature at run time, and failed criteria.
    let workspace = Workspace::lint_clean();
    workspace.edit_pipeline("expr: score * 2", "expr: score / (score - score)");
    insta::assert_snapshot!(
        "json_data_error",
        json_lines(
            &workspace,
            &["run", "pipeline.yaml", "--out", "out", "--format", "json"],
            4
        )
    );
    let workspace = Workspace::lint_clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}criteria:\n  substantial:\n    share: {{ error_if_below: 0.3 }}\n"),
    );
    insta::assert_snapshot!(
        "json_criteria",
        json_lines(
            &workspace,
            &["run", "pipeline.yaml", "--out", "out", "--format", "json"],
            6
        )
    );
}

#[test]
fn json_segment_test_failures() {
    let workspace = Workspace::lint_clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!(
            "{pipeline}tests:\n  - name: busy customers\n    sources:\n      customers:\n        - {{ customer_id: 7, signup_date: 2026-01-01, plan: pro, score: 3 }}\n      events:\n        - {{ customer_id: 7, ts: \"2026-09-20T10:00:00\", feature: a }}\n    expect:\n      - {{ customer: 7, segment: busy }}\n"
        ),
    );
    insta::assert_snapshot!(
        "json_segment_tests",
        json_lines(
            &workspace,
            &["test", "pipeline.yaml", "--format", "json"],
            8
        )
    );
}

#[test]
fn a_panic_is_reported_as_a_bug_with_exit_70() {
    // Debug builds only: SEGFLOW_TEST_PANIC makes segflow panic on purpose, to test the promise
    // that a bug is reported as one, with its own exit code.
    let output = segflow()
        .env("SEGFLOW_TEST_PANIC", "1")
        .args(["schema"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(70));
    let message = crate::support::stderr(&output);
    assert!(message.contains("segflow::internal"), "{message}");
    assert!(message.contains("this is a bug in segflow"), "{message}");
}

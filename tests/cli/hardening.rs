//! Hardening: secrets never leak, interrupted runs lose nothing, reports never run injected
//! scripts.

use std::path::Path;

use crate::support::{Workspace, segflow, stderr, stdout};

const SECRET: &str = "s3cr3t-token-4f9a";

fn all_text_below(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text.push_str(&all_text_below(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

/// The windows fixture with its events under a folder named after the secret, reached through
/// `${SEGFLOW_EVENTS_DIR}`.
fn secret_workspace() -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    std::fs::create_dir(workspace.path().join(SECRET)).unwrap();
    std::fs::rename(
        workspace.path().join("events.csv"),
        workspace.path().join(SECRET).join("events.csv"),
    )
    .unwrap();
    workspace.edit_pipeline("path: events.csv", "path: ${SEGFLOW_EVENTS_DIR}/events.csv");
    workspace
}

fn run_with_secret(workspace: &Workspace, value: &str, args: &[&str]) -> std::process::Output {
    segflow()
        .current_dir(workspace.path())
        .env("SEGFLOW_EVENTS_DIR", value)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn interpolated_values_never_reach_outputs_or_messages() {
    let workspace = secret_workspace();
    let output = run_with_secret(
        &workspace,
        SECRET,
        &["run", "pipeline.yaml", "--out", "out"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let everything = format!(
        "{}{}{}",
        stdout(&output),
        stderr(&output),
        all_text_below(&workspace.path().join("out"))
    );
    assert!(!everything.contains(SECRET), "the secret leaked");
    assert!(
        everything.contains("${SEGFLOW_EVENTS_DIR}/events.csv"),
        "locations show the path as written"
    );

    // A bad value in a file under the secret folder: DataFusion's message names the file.
    let events = workspace.path().join(SECRET).join("events.csv");
    let text = std::fs::read_to_string(&events).unwrap();
    std::fs::write(&events, text.replace("2026-09-16T09:30:00", "yesterday")).unwrap();
    let output = run_with_secret(
        &workspace,
        SECRET,
        &["run", "pipeline.yaml", "--out", "out2"],
    );
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(!stderr(&output).contains(SECRET), "{}", stderr(&output));

    // A missing file under a secret path.
    let output = run_with_secret(
        &workspace,
        "s3cr3t-elsewhere",
        &["run", "pipeline.yaml", "--out", "out3"],
    );
    assert_eq!(output.status.code(), Some(4));
    assert!(
        stderr(&output).contains("cannot read ${SEGFLOW_EVENTS_DIR}/events.csv"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("s3cr3t-elsewhere"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unset_variable_is_a_pipeline_error_at_its_place() {
    let workspace = secret_workspace();
    let output = segflow()
        .current_dir(workspace.path())
        .env_remove("SEGFLOW_EVENTS_DIR")
        .args(["validate", "pipeline.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    insta::assert_snapshot!(stderr(&output));
}

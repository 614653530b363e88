//! Quarterly review: reproducible runs, provenance in the manifest, run comparison, lints and
//! the pipeline's own segment tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Workspace, read_json, repo_path, segflow, stderr};

/// Every file below `dir`, relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
fn the_same_run_twice_gives_byte_identical_outputs() {
    let out = tempfile::TempDir::new().unwrap();
    for name in ["a", "b"] {
        let output = segflow()
            .current_dir(repo_path(""))
            .args(["run", "pipelines/saas_quarterly.yaml", "--out"])
            .arg(out.path().join(name))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let (a, b) = (files(&out.path().join("a")), files(&out.path().join("b")));
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
    assert!(
        workspace
            .segflow(&["run", "pipeline.yaml", "--out", "clean"])
            .status
            .success()
    );
    let manifest = read_json(&dir.join("clean/manifest.json"));
    assert_eq!(manifest["git"]["commit"], json!(head.trim()));
    assert_eq!(manifest["git"]["dirty"], json!(false));
    assert_eq!(manifest["git"]["pipeline_modified"], json!(false));

    workspace.edit_pipeline("name: windows", "name: windows\ntitle: Edited");
    assert!(
        workspace
            .segflow(&["run", "pipeline.yaml", "--out", "edited"])
            .status
            .success()
    );
    let manifest = read_json(&dir.join("edited/manifest.json"));
    assert_eq!(manifest["git"]["dirty"], json!(true));
    assert_eq!(manifest["git"]["pipeline_modified"], json!(true));
    assert_eq!(manifest["sources"][0]["name"], json!("customers"));
    assert_eq!(manifest["sources"][0]["rows"], json!(5));
}

#[test]
fn outside_git_the_manifest_says_so() {
    let workspace = Workspace::from_fixture("windows");
    assert!(
        workspace
            .segflow(&["run", "pipeline.yaml", "--out", "out"])
            .status
            .success()
    );
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

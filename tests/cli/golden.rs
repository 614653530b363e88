//! Golden files: the example's whole run folder and its compiled plan, byte for byte. A change
//! to what segflow computes or writes shows up here as a reviewable diff. After an intended
//! change, rewrite them with `SEGFLOW_BLESS=1 cargo test golden` and review the diff.

use crate::support::{ExampleRun, files_below, repo_path, segflow, stdout};

/// The manifest without what differs between identical runs: start time, timings, git state.
fn reproducible_manifest(bytes: &[u8]) -> Vec<u8> {
    let mut manifest: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let object = manifest.as_object_mut().unwrap();
    for key in ["started_at", "timings", "git"] {
        assert!(object.remove(key).is_some(), "manifest has no `{key}`");
    }
    let mut text = serde_json::to_string_pretty(&manifest).unwrap();
    text.push('\n');
    text.into_bytes()
}

/// A report without what differs between commits of this repository: each line naming the git
/// commit the run was made at (read from its manifest) is replaced as a whole, as it also says
/// whether the work tree had uncommitted changes.
fn reproducible_report(bytes: &[u8], manifest: &[u8]) -> Vec<u8> {
    let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let commit = manifest["git"]["commit"]
        .as_str()
        .map(|c| c[..12].to_string());
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        match &commit {
            Some(commit) if line.contains(commit.as_str()) => {
                out.push_str("<the git commit and state: differ between runs>\n");
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

fn bless() -> bool {
    std::env::var_os("SEGFLOW_BLESS").is_some()
}

#[test]
fn the_example_run_folder_matches_its_golden_copy() {
    let run = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let mut produced = files_below(&run.dir());
    let manifest = produced
        .get("manifest.json")
        .expect("manifest.json")
        .clone();
    for (name, bytes) in produced.iter_mut() {
        if name.ends_with(".md") || name.ends_with(".html") {
            *bytes = reproducible_report(bytes, &manifest);
        }
    }
    let manifest = produced.get_mut("manifest.json").expect("manifest.json");
    *manifest = reproducible_manifest(manifest);
    let golden_dir = repo_path("tests/golden/saas_quarterly");
    if bless() {
        let _ = std::fs::remove_dir_all(&golden_dir);
        for (name, bytes) in &produced {
            let path = golden_dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
    let golden = files_below(&golden_dir);
    assert_eq!(
        produced.keys().collect::<Vec<_>>(),
        golden.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &produced {
        assert!(
            *bytes == golden[name],
            "{name} differs from tests/golden/saas_quarterly/{name}"
        );
    }
}

#[test]
fn the_example_plan_matches_its_golden_copy() {
    let output = segflow()
        .current_dir(repo_path(""))
        .args(["plan", "pipelines/saas_quarterly.yaml"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let golden = repo_path("tests/golden/saas_quarterly.plan.sql");
    if bless() {
        std::fs::write(&golden, &output.stdout).unwrap();
    }
    assert_eq!(stdout(&output), std::fs::read_to_string(golden).unwrap());
}

#[test]
fn plan_shows_datafusion_plans_without_reading_rows() {
    for (format, expected) in [("logical", "Projection:"), ("physical", "SortExec")] {
        let output = segflow()
            .current_dir(repo_path(""))
            .args(["plan", "pipelines/saas_quarterly.yaml", "--format", format])
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}");
        assert!(stdout(&output).contains(expected), "{}", stdout(&output));
    }
}

//! `--replace` and the commit of a run folder: it replaces only what segflow wrote, one run at a
//! time, recoverably, and reads run folders under any name (`runs/q4 [draft]`).

use std::path::Path;

use crate::support::{Workspace, files_below, stderr};

const OUTPUT: i32 = 5;

/// A workspace with a finished run in `out`.
fn with_run(out: &str) -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", out]);
    workspace
}

/// Every file below the workspace, and the names of its hidden entries at the top and in `runs`.
fn snapshot(workspace: &Workspace) -> (std::collections::BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut hidden = Vec::new();
    for folder in [
        workspace.path().to_path_buf(),
        workspace.path().join("runs"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                hidden.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    hidden.sort();
    (files_below(workspace.path()), hidden)
}

/// `--replace` into `out` is refused with exit 5, naming `named`, and changes nothing.
fn assert_refused(workspace: &Workspace, args: &[&str], named: &str) {
    let before = snapshot(workspace);
    let output = workspace.segflow(args);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(OUTPUT), "{args:?}: {message}");
    assert!(
        message.contains(named),
        "{args:?} should name {named}: {message}"
    );
    assert!(snapshot(workspace) == before, "{args:?} changed files");
}

/// Adds something of the user's to a run folder.
type Addition = fn(&Path);

#[test]
fn replace_refuses_a_run_folder_holding_anything_segflow_did_not_write() {
    let run = ["run", "pipeline.yaml", "--out", "runs/q3", "--replace"];
    // One entry of each kind a user adds: a note, a folder, a hidden file, a symlink, and a
    // symlink under the name of one of segflow's own files.
    let additions: [(&str, Addition); 5] = [
        ("NOTES.md", |dir| {
            std::fs::write(dir.join("NOTES.md"), "mine").unwrap()
        }),
        ("mine/", |dir| {
            std::fs::create_dir(dir.join("mine")).unwrap();
            std::fs::write(dir.join("mine/keep.txt"), "keep").unwrap();
        }),
        (".hidden", |dir| {
            std::fs::write(dir.join(".hidden"), "x").unwrap()
        }),
        ("link", |dir| {
            std::os::unix::fs::symlink("../../pipeline.yaml", dir.join("link")).unwrap()
        }),
        ("report.md", |dir| {
            std::fs::remove_file(dir.join("report.md")).unwrap();
            std::os::unix::fs::symlink("../../pipeline.yaml", dir.join("report.md")).unwrap();
        }),
    ];
    for (named, add) in additions {
        let workspace = with_run("runs/q3");
        add(&workspace.path().join("runs/q3"));
        assert_refused(&workspace, &run, named);
    }
}

#[test]
fn replace_refuses_a_history_folder_holding_a_file_of_the_users() {
    let workspace = Workspace::from_fixture("windows");
    for (out, as_of) in [("runs/q3", "2026-07-01"), ("runs/q4", "2026-10-01")] {
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", out, "--as-of", as_of]);
    }
    let history = ["history", "runs/q3", "runs/q4", "--out", "hist"];
    workspace.segflow_ok(&history);
    workspace.write("hist/NOTES.md", "mine");
    let mut replace = history.to_vec();
    replace.push("--replace");
    assert_refused(&workspace, &replace, "NOTES.md");
    std::fs::remove_file(workspace.path().join("hist/NOTES.md")).unwrap();
    workspace.segflow_ok(&replace);
}

#[test]
fn a_run_folder_from_before_manifests_listed_outputs_is_judged_by_segflows_file_names() {
    let workspace = with_run("out");
    let manifest_path = workspace.path().join("out/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&workspace.read("out/manifest.json")).unwrap();
    manifest.as_object_mut().unwrap().remove("outputs");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    workspace.write("out/NOTES.md", "mine");
    let run = ["run", "pipeline.yaml", "--out", "out", "--replace"];
    assert_refused(&workspace, &run, "NOTES.md");
    std::fs::remove_file(workspace.path().join("out/NOTES.md")).unwrap();
    workspace.segflow_ok(&run);
    assert!(workspace.path().join("out/report.html").is_file());
}

#[test]
fn replace_refuses_a_read_only_run_folder_before_computing() {
    let workspace = with_run("out");
    let folder = workspace.path().join("out");
    let mode = |mode| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    mode(0o555);
    let run = ["run", "pipeline.yaml", "--out", "out", "--replace"];
    assert_refused(&workspace, &run, "read-only");
    mode(0o755);
    workspace.segflow_ok(&run);
}

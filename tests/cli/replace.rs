//! `--replace` and the commit of a run folder: it replaces only what segflow wrote, one run at a
//! time, recoverably, and reads run folders under any name (`runs/q4 [draft]`).

use std::path::Path;

use crate::support::{Workspace, files_below, stderr, stderr_unwrapped};

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
        message.contains(named) || stderr_unwrapped(&output).contains(named),
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

/// `segflow run pipeline.yaml --out out --replace`, started with `env` set, not awaited.
fn spawn_replace(workspace: &Workspace, env: (&str, &str)) -> std::process::Child {
    spawn_run(workspace, &["--replace"], env)
}

/// Start `run pipeline.yaml --out out` with `extra` arguments and `env` set, not awaited.
fn spawn_run(workspace: &Workspace, extra: &[&str], env: (&str, &str)) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"));
    command
        .current_dir(workspace.path())
        .args(["run", "pipeline.yaml", "--out", "out"])
        .args(extra)
        .env(env.0, env.1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // segflow leaves SIGHUP alone when it starts ignored (under `nohup`, on purpose); a test
    // started under nohup would inherit that, so the run starts with the default disposition.
    // SAFETY: between fork and exec, only an async-signal-safe call that touches no memory.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// Whether a run into `out` has made its staging folder.
fn staging_started(workspace: &Workspace) -> bool {
    leftovers(workspace)
        .iter()
        .any(|name| name.starts_with(".out.segflow-staging-"))
}

/// Wait until `ready` holds (the child is then paused where the test wants it).
fn wait_until(child: &mut std::process::Child, ready: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(started.elapsed().as_secs() < 60, "the run never got there");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended too early"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn finish(child: std::process::Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Hidden entries segflow keeps beside a run folder while it works.
fn leftovers(workspace: &Workspace) -> Vec<String> {
    workspace
        .entries()
        .into_iter()
        .filter(|name| name.starts_with(".out."))
        .collect()
}

#[test]
fn a_signal_between_the_two_renames_of_replace_waits_for_the_commit() {
    for name in ["-TERM", "-INT", "-HUP"] {
        let workspace = with_run("out");
        workspace.edit_pipeline("2026-10-01", "2026-09-01");
        let mut child = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_IN_COMMIT", "3000"));
        let replaced = workspace.path().join(".out.replaced");
        wait_until(&mut child, || replaced.exists());
        signal(&child, name);
        let (code, message) = finish(child);
        assert_eq!(code, Some(0), "{name}: the run was committed: {message}");
        assert!(!message.contains("interrupted"), "{name}: {message}");
        assert!(workspace.read("out/segments.json").contains("2026-09-01"));
        assert_eq!(leftovers(&workspace), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn a_run_killed_between_the_renames_is_rolled_back_by_the_next_run() {
    let workspace = with_run("out");
    let previous = files_below(&workspace.path().join("out"));
    let mut child = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_IN_COMMIT", "20000"));
    let replaced = workspace.path().join(".out.replaced");
    wait_until(&mut child, || replaced.exists());
    signal(&child, "-KILL");
    let _ = finish(child);
    assert!(!workspace.path().join("out").exists());

    // Without --replace: the old run is put back, and then it exists.
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(OUTPUT), "{message}");
    assert!(message.contains("was put back"), "{message}");
    assert!(message.contains("out already exists"), "{message}");
    assert!(files_below(&workspace.path().join("out")) == previous);
    // The killed run's staging folder goes with the next run.
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out", "--replace"]);
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
}

#[test]
fn an_old_run_left_beside_a_complete_one_is_removed_only_if_segflow_wrote_all_of_it() {
    let workspace = with_run("out");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", ".out.replaced"]);
    let finished = workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out", "--replace"]);
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
    // Never silently: the removal of what an earlier run left is said.
    assert!(
        stderr(&finished).contains(".out.replaced: the previous run"),
        "{}",
        stderr(&finished)
    );

    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", ".out.replaced"]);
    workspace.write(".out.replaced/NOTES.md", "mine");
    let run = ["run", "pipeline.yaml", "--out", "out", "--replace"];
    assert_refused(&workspace, &run, ".out.replaced");
    assert_eq!(workspace.read(".out.replaced/NOTES.md"), "mine");

    // A folder of that name that segflow did not write is never moved into place.
    std::fs::remove_dir_all(workspace.path().join(".out.replaced")).unwrap();
    std::fs::remove_dir_all(workspace.path().join("out")).unwrap();
    std::fs::create_dir(workspace.path().join(".out.replaced")).unwrap();
    workspace.write(".out.replaced/mine.txt", "mine");
    assert_refused(
        &workspace,
        &["run", "pipeline.yaml", "--out", "out"],
        ".out.replaced",
    );
}

#[test]
fn concurrent_runs_into_one_folder_have_one_winner_and_a_clear_loser() {
    let workspace = with_run("out");
    // Long enough for both losers to start and stop on a busy machine.
    let mut winner = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_IN_COMMIT", "8000"));
    let replaced = workspace.path().join(".out.replaced");
    wait_until(&mut winner, || replaced.exists());
    let pid = winner.id();
    for args in [
        &["run", "pipeline.yaml", "--out", "out", "--replace"][..],
        &["run", "pipeline.yaml", "--out", "out"][..],
    ] {
        let loser = workspace.segflow(args);
        let message = stderr(&loser);
        assert_eq!(loser.status.code(), Some(OUTPUT), "{message}");
        assert!(
            message.contains(&format!("another segflow run is writing out (pid {pid})")),
            "{message}"
        );
    }
    let (code, message) = finish(winner);
    assert_eq!(code, Some(0), "{message}");
    assert!(workspace.path().join("out/manifest.json").is_file());
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
}

#[test]
fn a_destination_ending_in_a_dot_is_refused_before_any_work() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "runs/ok"]);
    for out in [
        "runs/new/.",
        "runs/new/..",
        "runs/ok/.",
        "runs/ok/..",
        "runs/new/./",
    ] {
        for extra in [&[][..], &["--replace"][..]] {
            let mut args = vec!["run", "pipeline.yaml", "--out", out];
            args.extend_from_slice(extra);
            let before = snapshot(&workspace);
            let output = workspace.segflow(&args);
            let message = stderr(&output);
            assert_eq!(output.status.code(), Some(OUTPUT), "{args:?}: {message}");
            assert!(snapshot(&workspace) == before, "{args:?} changed files");
        }
    }
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "runs/new/."]);
    assert!(
        stderr(&output).contains("--out runs/new/. does not name a run folder"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn sighup_before_the_commit_removes_the_staging_folder() {
    let workspace = with_run("out");
    let mut child = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_BEFORE_COMMIT", "20000"));
    wait_until(&mut child, || staging_started(&workspace));
    signal(&child, "-HUP");
    let (code, message) = finish(child);
    assert_eq!(code, Some(130), "{message}");
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
    assert!(workspace.path().join("out/manifest.json").is_file());
}

#[test]
fn the_cleanup_removes_only_segflows_own_abandoned_staging_folders() {
    let workspace = Workspace::from_fixture("windows");
    let dead = ".out.segflow-staging-99999999-aB3xYz";
    let keep = [
        ".out.segflow-staging-mine",
        ".out.segflow-staging-99999999-unmarked",
        ".out.segflow-staging-99999998-aB3xYz",
    ];
    for folder in [dead].iter().chain(&keep) {
        std::fs::create_dir(workspace.path().join(folder)).unwrap();
    }
    for folder in [dead, ".out.segflow-staging-mine"] {
        workspace.write(&format!("{folder}/.segflow-staging"), "");
    }
    // Unmarked but not empty: somebody's files.
    workspace.write(".out.segflow-staging-99999998-aB3xYz/mine.txt", "mine");
    // Unmarked and empty: a run killed before it wrote the marker; removing it loses nothing.
    std::fs::create_dir(
        workspace
            .path()
            .join(".out.segflow-staging-99999996-aB3xYz"),
    )
    .unwrap();
    // Not a folder: a file of that name is the user's.
    workspace.write(".out.segflow-staging-99999997-aB3xYz", "mine");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let mut expected: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    expected.push(".out.segflow-staging-99999997-aB3xYz".into());
    expected.sort();
    assert_eq!(leftovers(&workspace), expected);
}

#[test]
fn run_folders_with_glob_characters_in_their_names_are_read_literally() {
    let workspace = Workspace::from_fixture("windows");
    // Two runs, one of them in a folder whose name is a valid glob pattern.
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--out",
        "runs/q3 [draft]",
        "--as-of",
        "2026-07-01",
    ]);
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--out",
        "runs/q4 [draft]",
        "--compare-to",
        "runs/q3 [draft]",
    ]);
    assert!(
        workspace
            .path()
            .join("runs/q4 [draft]/comparison.json")
            .is_file()
    );
    workspace.segflow_ok(&["diff", "runs/q3 [draft]", "runs/q4 [draft]"]);
    workspace.segflow_ok(&[
        "history",
        "runs/q3 [draft]",
        "runs/q4 [draft]",
        "--out",
        "runs/h [1]",
    ]);
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--out",
        "runs/q4 [draft]",
        "--replace",
    ]);
}

#[test]
fn a_project_folder_with_glob_characters_runs_with_the_default_out() {
    let workspace = Workspace::from_fixture("windows");
    let project = workspace.path().join("Projects [2026]");
    std::fs::create_dir(&project).unwrap();
    for file in ["pipeline.yaml", "customers.csv", "events.csv"] {
        std::fs::copy(workspace.path().join(file), project.join(file)).unwrap();
    }
    let output = crate::support::segflow()
        .current_dir(&project)
        .args(["run", "pipeline.yaml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let runs: Vec<_> = std::fs::read_dir(project.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].join("assignments.parquet").is_file());
    // diff and history on folders named by absolute paths under it.
    let run = runs[0].to_string_lossy().into_owned();
    let output = crate::support::segflow()
        .current_dir(&project)
        .args(["diff", &run, &run])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn history_takes_an_existing_folder_literally_even_when_its_name_is_a_pattern() {
    let workspace = Workspace::from_fixture("windows");
    for (out, as_of) in [
        ("runs/q3", "2026-07-01"),
        ("runs/q4", "2026-10-01"),
        ("runs/q[34]", "2026-04-01"),
    ] {
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", out, "--as-of", as_of]);
    }
    // `runs/q[34]` names the folder of that name, not q3 and q4.
    let output = workspace.segflow(&["history", "runs/q[34]", "runs/q4", "--out", "h"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest = workspace.read("h/manifest.json");
    assert!(manifest.contains("runs/q[34]"), "{manifest}");
    assert!(!manifest.contains("\"runs/q3\""), "{manifest}");
}

#[test]
fn a_commit_that_cannot_move_the_new_run_in_keeps_the_old_one_and_leaks_nothing() {
    let workspace = with_run("out");
    let previous = files_below(&workspace.path().join("out"));
    let mut child = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_IN_COMMIT", "3000"));
    let replaced = workspace.path().join(".out.replaced");
    wait_until(&mut child, || replaced.exists());
    // Something takes the destination's name while the old run is moved aside.
    workspace.write("out", "someone else's file");
    let (code, message) = finish(child);
    assert_eq!(code, Some(OUTPUT), "{message}");
    assert!(message.contains(".out.replaced"), "{message}");
    assert_eq!(workspace.read("out"), "someone else's file");
    assert!(
        !leftovers(&workspace)
            .iter()
            .any(|name| name.contains("segflow-staging") || name.contains("segflow-lock")),
        "{:?}",
        leftovers(&workspace)
    );
    // Once the name is free again, the next run puts the old run back.
    std::fs::remove_file(workspace.path().join("out")).unwrap();
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(output.status.code(), Some(OUTPUT), "{}", stderr(&output));
    assert!(files_below(&workspace.path().join("out")) == previous);
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
}

#[test]
fn under_nohup_sighup_does_not_stop_the_run() {
    let workspace = with_run("out");
    // `nohup` sets SIGHUP to ignored before it runs the command.
    let mut child = std::process::Command::new("nohup")
        .arg(env!("CARGO_BIN_EXE_segflow"))
        .args(["run", "pipeline.yaml", "--out", "out", "--replace"])
        .current_dir(workspace.path())
        .env("SEGFLOW_TEST_PAUSE_BEFORE_COMMIT", "2000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(&mut child, || staging_started(&workspace));
    signal(&child, "-HUP");
    let (code, message) = finish(child);
    assert_eq!(code, Some(0), "{message}");
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
}

/// Start `args` in the workspace with `env` set, not awaited.
fn spawn(workspace: &Workspace, args: &[&str], env: (&str, &str)) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
        .current_dir(workspace.path())
        .args(args)
        .env(env.0, env.1)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn is_staging(workspace: &Workspace, name: &str) -> bool {
    workspace
        .entries()
        .iter()
        .any(|entry| entry.starts_with(&format!(".{name}.segflow-staging-")))
}

/// What a user does to the old run folder `out` while a `--replace` of it works.
type Change = fn(&Path);

#[test]
fn replace_keeps_what_the_user_adds_to_the_old_run_while_the_new_one_is_computed() {
    let changes: [(&str, Change); 4] = [
        ("NOTES.md", |out| {
            std::fs::write(out.join("NOTES.md"), "mine").unwrap()
        }),
        (".hidden", |out| {
            std::fs::write(out.join(".hidden"), "x").unwrap()
        }),
        ("mine/", |out| {
            std::fs::create_dir(out.join("mine")).unwrap();
            std::fs::write(out.join("mine/keep.txt"), "keep").unwrap();
        }),
        // The old run moved away and a folder of the user's put in its place.
        ("no segflow manifest.json", |out| {
            std::fs::rename(out, out.with_file_name("moved")).unwrap();
            std::fs::create_dir(out).unwrap();
            std::fs::write(out.join("NOTES.md"), "mine").unwrap();
        }),
    ];
    for (named, change) in changes {
        let workspace = with_run("out");
        let mut child = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_BEFORE_COMMIT", "1500"));
        wait_until(&mut child, || is_staging(&workspace, "out"));
        change(&workspace.path().join("out"));
        let before = files_below(&workspace.path().join("out"));
        let (code, message) = finish(child);
        assert_eq!(code, Some(OUTPUT), "{named}: {message}");
        assert!(message.contains(named), "{named}: {message}");
        assert!(message.contains("the new run was discarded"), "{message}");
        assert!(
            files_below(&workspace.path().join("out")) == before,
            "{named}"
        );
        assert_eq!(leftovers(&workspace), Vec::<String>::new(), "{named}");
    }
}

#[test]
fn history_replace_keeps_what_the_user_adds_while_it_works() {
    let workspace = Workspace::from_fixture("windows");
    for (out, as_of) in [("runs/q3", "2026-07-01"), ("runs/q4", "2026-10-01")] {
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", out, "--as-of", as_of]);
    }
    let history = ["history", "runs/q3", "runs/q4", "--out", "hist"];
    workspace.segflow_ok(&history);
    let mut replace = history.to_vec();
    replace.push("--replace");
    let mut child = spawn(
        &workspace,
        &replace,
        ("SEGFLOW_TEST_PAUSE_BEFORE_COMMIT", "1500"),
    );
    wait_until(&mut child, || is_staging(&workspace, "hist"));
    workspace.write("hist/NOTES.md", "mine");
    let (code, message) = finish(child);
    assert_eq!(code, Some(OUTPUT), "{message}");
    assert!(message.contains("NOTES.md"), "{message}");
    assert_eq!(workspace.read("hist/NOTES.md"), "mine");
    assert!(workspace.path().join("hist/history.html").is_file());
}

#[test]
fn an_old_run_that_gains_a_file_as_it_is_moved_aside_is_kept_not_deleted() {
    let workspace = with_run("out");
    workspace.edit_pipeline("2026-10-01", "2026-09-01");
    let mut child = spawn_replace(&workspace, ("SEGFLOW_TEST_PAUSE_IN_COMMIT", "3000"));
    let replaced = workspace.path().join(".out.replaced");
    wait_until(&mut child, || replaced.exists());
    // E.g. an editor or a shell whose working folder is the old run writes into it.
    workspace.write(".out.replaced/NOTES.md", "mine");
    let (code, message) = finish(child);
    assert_eq!(code, Some(OUTPUT), "{message}");
    assert!(
        message.contains("the new run is in out") && message.contains(".out.replaced"),
        "{message}"
    );
    assert!(message.contains("NOTES.md"), "{message}");
    assert_eq!(workspace.read(".out.replaced/NOTES.md"), "mine");
    assert!(
        workspace
            .path()
            .join(".out.replaced/manifest.json")
            .is_file()
    );
    assert!(workspace.read("out/segments.json").contains("2026-09-01"));
    // The next run into `out` does not delete it either.
    let run = ["run", "pipeline.yaml", "--out", "out", "--replace"];
    assert_refused(&workspace, &run, ".out.replaced");
}

#[test]
fn a_file_of_the_lock_files_name_that_is_not_segflows_is_refused_untouched() {
    // A note, a hard link to a file elsewhere (writing the pid would change it), a symlink, a
    // folder: each is the user's, and neither truncated, written nor deleted.
    let cases: [(&str, Change); 4] = [
        ("something other than", |lock| {
            std::fs::write(lock, "user data, not a lock\n").unwrap()
        }),
        ("hard link", |lock| {
            std::fs::hard_link(lock.with_file_name("important.txt"), lock).unwrap()
        }),
        ("not a regular file", |lock| {
            std::os::unix::fs::symlink("important.txt", lock).unwrap()
        }),
        ("not a regular file", |lock| {
            std::fs::create_dir(lock).unwrap()
        }),
    ];
    for (named, make) in cases {
        // Into a new folder, and replacing a run.
        for (out, extra) in [("new", &[][..]), ("out", &["--replace"][..])] {
            let workspace = with_run("out");
            workspace.write("important.txt", "important\n");
            make(&workspace.path().join(format!(".{out}.segflow-lock")));
            let mut args = vec!["run", "pipeline.yaml", "--out", out];
            args.extend_from_slice(extra);
            assert_refused(&workspace, &args, named);
            assert_eq!(workspace.read("important.txt"), "important\n");
        }
    }
    let workspace = Workspace::from_fixture("windows");
    workspace.write(".new.segflow-lock", "12\n34\n");
    assert_refused(
        &workspace,
        &["run", "pipeline.yaml", "--out", "new"],
        ".new.segflow-lock is not segflow's lock file",
    );
}

#[test]
fn a_lock_file_a_killed_run_left_is_reused_and_removed() {
    for left in ["", "99999999\n"] {
        let workspace = Workspace::from_fixture("windows");
        workspace.write(".out.segflow-lock", left);
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
        assert_eq!(leftovers(&workspace), Vec::<String>::new(), "{left:?}");
    }
}

#[test]
fn recovery_touches_a_leftover_replaced_folder_only_if_segflow_wrote_all_of_it() {
    // What the user may have at `.out.replaced`: a folder of their own, one with a manifest
    // that is not segflow's, a segflow run holding a note of theirs, a file, a symlink to a run.
    let cases: [(&str, Change); 5] = [
        ("not a segflow run folder", |old| {
            std::fs::create_dir(old).unwrap();
            std::fs::write(old.join("NOTES.md"), "mine").unwrap();
        }),
        ("not a segflow run folder", |old| {
            std::fs::create_dir(old).unwrap();
            std::fs::write(old.join("manifest.json"), "{}").unwrap();
        }),
        ("NOTES.md", |old| {
            copy_folder(&old.with_file_name("runs/ok"), old);
            std::fs::write(old.join("NOTES.md"), "mine").unwrap();
        }),
        ("is not a folder", |old| {
            std::fs::write(old, "mine").unwrap()
        }),
        ("is not a folder", |old| {
            std::os::unix::fs::symlink("runs/ok", old).unwrap()
        }),
    ];
    for (named, make) in cases {
        let workspace = with_run("runs/ok");
        make(&workspace.path().join(".out.replaced"));
        // With no run at `out` (recovery would put it back), without and with --replace.
        for extra in [&[][..], &["--replace"][..]] {
            let mut args = vec!["run", "pipeline.yaml", "--out", "out"];
            args.extend_from_slice(extra);
            assert_refused(&workspace, &args, named);
            assert_refused(&workspace, &args, ".out.replaced");
        }
        // With a complete run at `out` (recovery would delete it).
        copy_folder(
            &workspace.path().join("runs/ok"),
            &workspace.path().join("out"),
        );
        let args = ["run", "pipeline.yaml", "--out", "out", "--replace"];
        assert_refused(&workspace, &args, ".out.replaced");
    }
}

/// Copy the files of the folder `from` (and of its subfolders) to `to`.
fn copy_folder(from: &Path, to: &Path) {
    for (name, bytes) in files_below(from) {
        let target = to.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
}

#[test]
fn the_cleanup_keeps_a_folder_whose_marker_is_not_exactly_segflows() {
    let workspace = Workspace::from_fixture("windows");
    // Segflow's marker is empty: one with content was made by somebody else.
    let folder = ".out.segflow-staging-99999999-aB3xYz";
    std::fs::create_dir(workspace.path().join(folder)).unwrap();
    workspace.write(&format!("{folder}/.segflow-staging"), "x");
    workspace.write(&format!("{folder}/DATA.txt"), "mine");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(workspace.read(&format!("{folder}/DATA.txt")), "mine");
    assert_eq!(leftovers(&workspace), vec![folder.to_string()]);
}

/// Run segflow with `args`, failing the test if it does not end within a minute (a read that
/// blocks forever).
fn segflow_within_a_minute(workspace: &Workspace, args: &[&str]) -> (Option<i32>, String) {
    let mut child = spawn(workspace, args, ("SEGFLOW_UNUSED", ""));
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() > 60 {
            let _ = child.kill();
            panic!("segflow {args:?} hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    finish(child)
}

/// Replace the file `name` of a run folder with a FIFO, or with a symlink to an endless device.
fn not_a_regular_file(workspace: &Workspace, name: &str, fifo: bool) {
    let path = workspace.path().join(name);
    std::fs::remove_file(&path).unwrap();
    if fifo {
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
    } else {
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    }
}

#[test]
fn a_run_folder_file_that_is_not_a_regular_file_is_refused_not_read_forever() {
    for fifo in [true, false] {
        let workspace = with_run("runs/q3");
        not_a_regular_file(&workspace, "runs/q3/manifest.json", fifo);
        let replace = ["run", "pipeline.yaml", "--out", "runs/q3", "--replace"];
        let (code, message) = segflow_within_a_minute(&workspace, &replace);
        assert_eq!(code, Some(OUTPUT), "{message}");
        assert!(message.contains("runs/q3"), "{message}");
        // A glob pattern reads the manifests of the folders it matches.
        let history = ["history", "runs/q*", "--out", "h"];
        let (code, message) = segflow_within_a_minute(&workspace, &history);
        assert_eq!(code, Some(2), "{message}");
    }
    for name in ["segments.json", "criteria.json", "assignments.parquet"] {
        for fifo in [true, false] {
            let workspace = with_run("runs/q3");
            workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "runs/q4"]);
            not_a_regular_file(&workspace, &format!("runs/q3/{name}"), fifo);
            for args in [
                &["diff", "runs/q3", "runs/q4"][..],
                &["history", "runs/q3", "runs/q4", "--out", "h"][..],
                &["history", "runs/q*", "--out", "h"][..],
                &[
                    "run",
                    "pipeline.yaml",
                    "--out",
                    "new",
                    "--compare-to",
                    "runs/q3",
                ][..],
            ] {
                let (code, message) = segflow_within_a_minute(&workspace, args);
                assert_eq!(code, Some(10), "{args:?} {name}: {message}");
                assert!(message.contains(name), "{args:?}: {message}");
            }
        }
    }
}

#[test]
fn a_symlink_named_with_a_trailing_slash_is_refused_before_any_work() {
    let workspace = with_run("elsewhere/run");
    std::fs::create_dir(workspace.path().join("runs")).unwrap();
    std::os::unix::fs::symlink("../elsewhere/run", workspace.path().join("runs/link")).unwrap();
    // Data the run would fail on (exit 4): a refusal up front comes first.
    workspace.write(
        "customers.csv",
        "customer_id,signup_date,plan,score\nx,y,z,w\n",
    );
    for out in ["runs/link/", "runs/link//"] {
        for extra in [&[][..], &["--replace"][..]] {
            let mut args = vec!["run", "pipeline.yaml", "--out", out];
            args.extend_from_slice(extra);
            assert_refused(&workspace, &args, "runs/link");
        }
    }
}

/// A failed run leaves nothing, not even the folders it created above `--out`; folders that
/// existed before stay.
#[test]
fn a_failed_run_removes_the_folders_it_created_for_its_out() {
    let workspace = Workspace::from_fixture("windows");
    std::fs::create_dir(workspace.path().join("runs")).unwrap();
    workspace.write("events.csv", "customer_id,ts,feature\n1,notatime,a\n");
    let before = workspace.entries();
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "runs/new/deep/tree/q4"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert_eq!(workspace.entries(), before);
    assert!(workspace.path().join("runs").is_dir());
    assert!(!workspace.path().join("runs/new").exists());
}

/// Without `--replace`, a folder that appears at `--out` while the run works is the user's,
/// even an empty one: the run stops (exit 5) and the folder stays as it was.
#[test]
fn an_empty_folder_made_at_out_during_the_run_is_never_replaced() {
    use std::os::unix::fs::MetadataExt;
    let workspace = Workspace::from_fixture("windows");
    let mut child = spawn_run(
        &workspace,
        &[],
        ("SEGFLOW_TEST_PAUSE_BEFORE_COMMIT", "3000"),
    );
    wait_until(&mut child, || staging_started(&workspace));
    std::fs::create_dir(workspace.path().join("out")).unwrap();
    let inode = workspace.path().join("out").metadata().unwrap().ino();
    let (code, message) = finish(child);
    assert_eq!(code, Some(5), "{message}");
    let out = workspace.path().join("out");
    assert_eq!(
        out.metadata().unwrap().ino(),
        inode,
        "the user's folder was replaced"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    assert_eq!(leftovers(&workspace), Vec::<String>::new());
}

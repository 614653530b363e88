//! Bounded memory: under a tiny `--memory-limit` (6 MiB) the example still gives the same outputs by
//! spilling, the spill files are gone afterwards, and a limit too small even for spilling stops
//! with exit 9, naming the stage and the limit.

use std::path::Path;

use crate::support::{files_below as files, repo_path, segflow, stderr};

fn run(out: &Path, tmp: &Path, args: &[&str]) -> std::process::Output {
    segflow()
        .current_dir(repo_path(""))
        .env("TMPDIR", tmp)
        .args(["run", "pipelines/saas_quarterly.yaml", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_tiny_memory_limit_spills_and_gives_the_same_outputs() {
    let dir = tempfile::TempDir::new().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let free = run(&dir.path().join("free"), &tmp, &[]);
    assert!(free.status.success(), "{}", stderr(&free));
    // One thread makes the memory accounting, and so the spilling, deterministic. 6 MiB: the
    // final sort must hold one batch of the example's rows, which its text features (plan,
    // industry) made too wide for 4 MiB; it still spills three times.
    let tight = run(
        &dir.path().join("tight"),
        &tmp,
        &["--memory-limit", "6MiB", "--threads", "1", "--profile"],
    );
    assert!(tight.status.success(), "{}", stderr(&tight));

    let profile = std::fs::read_to_string(dir.path().join("tight/profile.txt")).unwrap();
    let spills: u64 = profile
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    assert!(spills > 0, "nothing spilled under 6 MiB:\n{profile}");

    let (mut free, mut tight) = (
        files(&dir.path().join("free")),
        files(&dir.path().join("tight")),
    );
    for run in [&mut free, &mut tight] {
        run.remove("manifest.json");
    }
    assert!(tight.remove("profile.txt").is_some());
    assert_eq!(free, tight, "spilling changed an output");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "spill files were left in TMPDIR"
    );
}

#[test]
fn a_limit_too_small_even_for_spilling_names_the_stage_and_the_limit() {
    let dir = tempfile::TempDir::new().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let output = run(
        &dir.path().join("run"),
        &tmp,
        &["--memory-limit", "1MiB", "--threads", "1"],
    );
    assert_eq!(output.status.code(), Some(9), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("segflow::memory"), "{message}");
    assert!(
        message
            .contains("out of memory in stage `features and segments` under --memory-limit 1 MiB"),
        "{message}"
    );
    assert!(message.contains("raise --memory-limit"), "{message}");
    assert!(!dir.path().join("run").exists());
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a staging folder was left behind"
    );
}

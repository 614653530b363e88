//! `segflow impact`: the example pipeline in a temporary git repository, a change committed or
//! not, and the impact checked against two separate runs of the two versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{read_assignments, read_json, repo_path, segflow, stderr, stdout};

const PIPELINE: &str = "pipelines/saas_quarterly.yaml";

/// A git repository holding a copy of the example pipeline and its data, committed once.
struct Repo {
    dir: TempDir,
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=test@example.com", "-c", "user.name=test"])
        .args(args)
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

impl Repo {
    fn new() -> Self {
        let dir = TempDir::new().expect("temp dir");
        copy_dir(&repo_path("pipelines"), &dir.path().join("pipelines"));
        git(dir.path(), &["init", "-q"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "base"]);
        Repo { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replace `from` by `to` in the working copy of the pipeline (not committed).
    fn edit(&self, from: &str, to: &str) {
        let file = self.path().join(PIPELINE);
        let text = std::fs::read_to_string(&file).expect("read pipeline");
        assert!(text.contains(from), "the pipeline has `{from}`");
        std::fs::write(&file, text.replacen(from, to, 1)).expect("write pipeline");
    }

    fn segflow(&self, args: &[&str]) -> Output {
        segflow()
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("run segflow")
    }

    fn impact(&self, out: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "impact", PIPELINE, "--base", "HEAD", "--out", out, "--quiet",
        ];
        args.extend(extra);
        self.segflow(&args)
    }

    /// Each customer's segment in a plain run of the pipeline as the working copy has it, or as
    /// `revision` had it.
    fn segments(&self, revision: Option<&str>) -> BTreeMap<i64, Value> {
        self.version(revision).0
    }

    /// A separate run of the version at `revision` (the working copy when `None`): each
    /// customer's segment, and each segment's priority score.
    fn version(&self, revision: Option<&str>) -> (BTreeMap<i64, Value>, BTreeMap<String, f64>) {
        let file = match revision {
            Some(revision) => {
                let output = Command::new("git")
                    .current_dir(self.path())
                    .args(["show", &format!("{revision}:{PIPELINE}")])
                    .output()
                    .expect("git show");
                let path = self.path().join("pipelines/.base.yaml");
                std::fs::write(&path, &output.stdout).expect("write base");
                path
            }
            None => self.path().join(PIPELINE),
        };
        let out = TempDir::new().expect("temp dir");
        let output = segflow()
            .current_dir(self.path())
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(out.path().join("run"))
            .args(["--criteria-as-warnings", "--quiet"])
            .output()
            .expect("run segflow");
        assert!(output.status.success(), "{}", stderr(&output));
        let segments = read_assignments(&out.path().join("run/assignments.parquet"), "customer_id")
            .0
            .into_iter()
            .map(|(id, row)| (id, row["segment"].clone()))
            .collect();
        let scoring = read_json(&out.path().join("run/scoring.json"));
        let scores = scoring["ranking"]
            .as_array()
            .expect("ranking")
            .iter()
            .map(|r| {
                let segment = r["segment"].as_str().expect("segment").to_string();
                (segment, r["total"].as_f64().expect("total"))
            })
            .collect();
        (segments, scores)
    }
}

/// Customers whose segment differs, by (old, new) cell.
fn moved(
    old: &BTreeMap<i64, Value>,
    new: &BTreeMap<i64, Value>,
) -> BTreeMap<(String, String), Vec<i64>> {
    let mut cells: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for (id, segment) in old {
        let other = &new[id];
        if segment != other {
            let label = |v: &Value| v.as_str().unwrap_or("(unassigned)").to_string();
            cells
                .entry((label(segment), label(other)))
                .or_default()
                .push(*id);
        }
    }
    cells
}

fn impact_json(repo: &Repo, out: &str) -> Value {
    read_json(&repo.path().join(out).join("impact.json"))
}

/// Every changed cell of `impact` has the independent count, and its sample is made of customers
/// of that cell.
fn assert_moves_match(impact: &Value, expected: &BTreeMap<(String, String), Vec<i64>>) {
    let moves = impact["moves"].as_array().expect("moves");
    assert_eq!(moves.len(), expected.len(), "changed cells: {moves:?}");
    for m in moves {
        let cell = (
            m["from"].as_str().expect("from").to_string(),
            m["to"].as_str().expect("to").to_string(),
        );
        let customers = &expected[&cell];
        assert_eq!(
            m["customers"].as_u64(),
            Some(customers.len() as u64),
            "{cell:?}"
        );
        let sample = m["sample"].as_array().expect("sample");
        assert_eq!(sample.len(), customers.len().min(5), "{cell:?}");
        for key in sample {
            let id: i64 = key.as_str().expect("key").parse().expect("integer key");
            assert!(customers.contains(&id), "{id} is not in {cell:?}");
        }
    }
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(impact["moved"].as_u64(), Some(total as u64));
}

#[test]
fn a_rule_change_moves_the_customers_two_separate_runs_move_computing_features_once() {
    let repo = Repo::new();
    repo.edit("active_days_90 >= 10\n", "active_days_90 >= 15\n");
    let output = repo.impact("out", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let impact = impact_json(&repo, "out");
    assert_eq!(impact["features_computed_once"], true);
    let (base, base_scores) = repo.version(Some("HEAD"));
    let (current, current_scores) = repo.version(None);
    let expected = moved(&base, &current);
    assert!(!expected.is_empty(), "the change moves someone");
    assert_moves_match(&impact, &expected);
    // The base's statistics (measured over the current features, reusing those of segments
    // nobody left or joined) give the priority scores of the base's own run.
    let priorities = impact["priorities"].as_array().expect("priorities");
    assert!(!priorities.is_empty());
    for p in priorities {
        let segment = p["segment"].as_str().expect("segment");
        for (key, scores) in [("old_score", &base_scores), ("new_score", &current_scores)] {
            let reported = p[key].as_f64().expect("score");
            assert!(
                (reported - scores[segment]).abs() < 1e-9,
                "{segment} {key}: {reported} vs {}",
                scores[segment]
            );
        }
    }
    assert_eq!(impact["rules"][0]["segment"], "task_completers");
    assert_eq!(impact["rules"][0]["change"], "edited");
    assert!(
        stdout(&output).contains("change segment (only rules changed"),
        "{}",
        stdout(&output)
    );

    // The same change gives the same sample; --no-sample gives none.
    let again = repo.impact("again", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(impact_json(&repo, "again")["moves"], impact["moves"]);
    let hidden = repo.impact("hidden", &["--no-sample"]);
    assert!(hidden.status.success(), "{}", stderr(&hidden));
    let hidden = impact_json(&repo, "hidden");
    assert!(
        hidden["moves"]
            .as_array()
            .expect("moves")
            .iter()
            .all(|m| m["sample"].as_array().is_some_and(Vec::is_empty))
    );
    let markdown = std::fs::read_to_string(repo.path().join("hidden/impact.md")).expect("md");
    for m in impact["moves"].as_array().expect("moves") {
        for key in m["sample"].as_array().expect("sample") {
            assert!(
                !markdown.contains(&format!("`{}`", key.as_str().expect("key"))),
                "--no-sample shows no key"
            );
        }
    }
}

#[test]
fn a_feature_change_is_recomputed_and_its_distribution_shown() {
    let repo = Repo::new();
    let text = std::fs::read_to_string(repo.path().join(PIPELINE)).expect("read");
    let window = text
        .lines()
        .find(|l| l.contains("window_days: 90"))
        .expect("a 90-day feature")
        .to_string();
    repo.edit(
        &window,
        &window.replace("window_days: 90", "window_days: 60"),
    );
    let output = repo.impact("out", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let impact = impact_json(&repo, "out");
    assert_eq!(impact["features_computed_once"], false);
    // Only the changed feature is computed again for the base; the others come from the
    // current run, and the moves still match two separate runs.
    assert_eq!(
        impact["recomputed_features"],
        serde_json::json!(["active_days_90"])
    );
    let expected = moved(&repo.segments(Some("HEAD")), &repo.segments(None));
    assert_moves_match(&impact, &expected);
    let features = impact["features"].as_array().expect("features");
    assert_eq!(features.len(), 1, "{features:?}");
    assert_eq!(features[0]["change"], "changed");
    let (old, new) = (&features[0]["old"], &features[0]["new"]);
    assert!(old["mean"].as_f64().is_some() && new["mean"].as_f64().is_some());
    assert_ne!(
        old["mean"], new["mean"],
        "a shorter window changes the values"
    );
}

#[test]
fn a_changed_feature_recomputes_the_features_using_it_and_the_moves_match_two_runs() {
    let repo = Repo::new();
    // Both versions' rules use the feature, so base segments computed from the current values
    // would not match the base's own run.
    repo.edit(
        "when: active_days_90 >= 1\n",
        "when: active_days_90 >= 1 AND days_since_last_event < 15\n",
    );
    git(
        repo.path(),
        &["commit", "-q", "-am", "occasional users were active lately"],
    );
    repo.edit(
        "expr: max(CAST(ts AS DATE))",
        "expr: max(CAST(ts AS DATE)) - INTERVAL '20' DAY",
    );
    let output = repo.impact("out", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let impact = impact_json(&repo, "out");
    assert_eq!(
        impact["recomputed_features"],
        serde_json::json!(["last_event_date", "days_since_last_event"])
    );
    let expected = moved(&repo.segments(Some("HEAD")), &repo.segments(None));
    assert!(!expected.is_empty(), "the change moves someone");
    assert_moves_match(&impact, &expected);
}

#[test]
fn a_renamed_segment_is_matched_by_id_and_moves_nobody() {
    let repo = Repo::new();
    repo.edit("name: Task completers", "name: Finishers");
    let output = repo.impact("out", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let impact = impact_json(&repo, "out");
    assert_eq!(impact["moved"], 0);
    assert_eq!(impact["rules"].as_array().map(Vec::len), Some(1));
    assert_eq!(impact["rules"][0]["change"], "renamed");
    assert_eq!(impact["rules"][0]["before"]["name"], "Task completers");
    assert_eq!(impact["rules"][0]["after"]["name"], "Finishers");
}

#[test]
fn a_base_that_does_not_parse_or_exist_is_named_and_nothing_is_written() {
    let repo = Repo::new();
    let file = repo.path().join(PIPELINE);
    let good = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, "version: 1\nname: [broken\n").expect("write");
    git(repo.path(), &["commit", "-q", "-am", "broken"]);
    std::fs::write(&file, good).expect("restore");
    let output = repo.impact("out", &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("HEAD:pipelines/saas_quarterly.yaml"),
        "{}",
        stderr(&output)
    );
    assert!(!repo.path().join("out").exists(), "no output");

    let missing = repo.segflow(&[
        "impact",
        PIPELINE,
        "--base",
        "no-such-branch",
        "--out",
        "out",
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("no-such-branch"),
        "{}",
        stderr(&missing)
    );
    let option = repo.segflow(&["impact", PIPELINE, "--base=--output=x", "--out", "out"]);
    assert_eq!(option.status.code(), Some(2), "{}", stderr(&option));
    assert!(!repo.path().join("out").exists(), "no output");
}

#[test]
fn the_gate_fails_with_code_14_after_writing_everything() {
    let repo = Repo::new();
    repo.edit("active_days_90 >= 10\n", "active_days_90 >= 15\n");
    let output = repo.impact("out", &["--fail-if-moved-above", "1%"]);
    assert_eq!(output.status.code(), Some(14), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("segflow::moved"),
        "{}",
        stderr(&output)
    );
    let impact = impact_json(&repo, "out");
    assert_eq!(impact["gate"]["failed"], true);
    let share = impact["moved_share"].as_f64().expect("share");
    let passed = repo.impact(
        "passed",
        &["--fail-if-moved-above", &format!("{}", share + 0.001)],
    );
    assert!(passed.status.success(), "{}", stderr(&passed));
    // An existing folder is never overwritten.
    let again = repo.impact("out", &[]);
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
}

#[test]
fn the_pull_request_comment_matches_its_golden_file() {
    let repo = Repo::new();
    repo.edit("active_days_90 >= 10\n", "active_days_90 >= 15\n");
    let output = repo.impact("out", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let found = std::fs::read_to_string(repo.path().join("out/impact.md")).expect("impact.md");
    let golden: PathBuf = repo_path("tests/golden/impact/rule_change.md");
    if std::env::var_os("SEGFLOW_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("mkdir");
        std::fs::write(&golden, &found).expect("bless");
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("{} is missing: SEGFLOW_BLESS=1", golden.display()));
    assert_eq!(
        found,
        expected,
        "impact.md differs from {}",
        golden.display()
    );
}

#[test]
fn the_workflow_script_comments_on_a_two_commit_repository() {
    let repo = Repo::new();
    repo.edit("active_days_90 >= 10\n", "active_days_90 >= 15\n");
    git(
        repo.path(),
        &["commit", "-q", "-am", "stricter task completers"],
    );
    let script = repo_path("examples/ci/segflow-impact.sh");
    let run = |gate: Option<&str>, base: &str| {
        let mut command = Command::new("bash");
        command
            .current_dir(repo.path())
            .arg(&script)
            .arg(base)
            .arg(PIPELINE)
            .env("SEGFLOW", env!("CARGO_BIN_EXE_segflow"));
        if let Some(gate) = gate {
            command.env("SEGFLOW_IMPACT_GATE", gate);
        }
        command.output().expect("run the workflow script")
    };
    let expected: usize = moved(&repo.segments(Some("HEAD~1")), &repo.segments(None))
        .values()
        .map(Vec::len)
        .sum();

    let passed = run(None, "HEAD~1");
    assert!(passed.status.success(), "{}", stderr(&passed));
    let comment = stdout(&passed);
    assert!(
        comment.starts_with("## segflow impact: `saas_quarterly`")
            && comment.contains(&format!("**{expected} of 3,000 customers")),
        "{comment}"
    );
    let gated = run(Some("1%"), "HEAD~1");
    assert_eq!(gated.status.code(), Some(14), "{}", stderr(&gated));
    assert!(
        stdout(&gated).contains("**Gate failed:**"),
        "{}",
        stdout(&gated)
    );
    let broken = run(None, "no-such-revision");
    assert_eq!(broken.status.code(), Some(2), "{}", stderr(&broken));
    assert!(
        stdout(&broken).contains("could not compare")
            && stdout(&broken).contains("no-such-revision"),
        "{}",
        stdout(&broken)
    );
    // The script leaves nothing in the repository.
    let status = Command::new("git")
        .current_dir(repo.path())
        .args(["status", "--porcelain", "--ignored"])
        .output()
        .expect("git status");
    let left: Vec<String> = stdout(&status)
        .lines()
        .filter(|l| !l.contains(".base.yaml"))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

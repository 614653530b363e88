//! Hardening: secrets never leak, interrupted runs lose nothing, reports never run injected
//! scripts.

use std::path::Path;

use crate::support::{Workspace, segflow, stderr, stderr_unwrapped, stdout};

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
    events_under(SECRET)
}

/// The windows fixture with its events in `folder`, reached through `${SEGFLOW_EVENTS_DIR}`.
fn events_under(folder: &str) -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    std::fs::create_dir(workspace.path().join(folder)).unwrap();
    std::fs::rename(
        workspace.path().join("events.csv"),
        workspace.path().join(folder).join("events.csv"),
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

/// Every command that prints or writes plan text, profiles or data locations: DataFusion's own
/// plan text names the resolved file paths, so these are where a secret path would surface.
#[test]
fn interpolated_values_never_reach_plans_or_profiles() {
    let workspace = secret_workspace();
    let mut everything = String::new();
    for args in [
        &["plan", "pipeline.yaml", "--format", "physical"][..],
        &["plan", "pipeline.yaml", "--format", "logical"],
        &["plan", "pipeline.yaml", "--format", "sql"],
        &["validate", "pipeline.yaml", "--format", "json"],
        &["lint", "pipeline.yaml", "--format", "json"],
        &["run", "pipeline.yaml", "--out", "out", "--profile"],
    ] {
        let output = run_with_secret(&workspace, SECRET, args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        everything.push_str(&stdout(&output));
        everything.push_str(&stderr(&output));
    }
    let profile = std::fs::read_to_string(workspace.path().join("out/profile.txt")).unwrap();
    assert!(
        profile.contains("[redacted]"),
        "the profile names the file, masked"
    );
    everything.push_str(&all_text_below(&workspace.path().join("out")));
    assert!(!everything.contains(SECRET), "the secret leaked");
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

/// Staging folders beside `out` in `dir`.
fn staging_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out.segflow-staging-"))
        .collect()
}

/// Start a long run replacing `out`, wait until it is writing, and send it `signal`.
fn interrupt_a_long_run(
    workspace: &Workspace,
    data: &Path,
    signal: &str,
) -> std::process::ExitStatus {
    let source = |name: &str| format!("{name}={}", data.join(format!("{name}.parquet")).display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
        .current_dir(workspace.path())
        .args([
            "run",
            &crate::support::repo_path("pipelines/saas_quarterly.yaml")
                .display()
                .to_string(),
        ])
        .args([
            "--source",
            &source("customers"),
            "--source",
            &source("events"),
        ])
        .args([
            "--source",
            &source("invoices"),
            "--source",
            &source("tickets"),
        ])
        .args(["--out", "out", "--replace", "--criteria-as-warnings"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while staging_folders(workspace.path()).is_empty() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the run never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap()
}

#[test]
fn an_interrupted_run_leaves_the_previous_run_intact_and_nothing_half_written() {
    let workspace = Workspace::from_fixture("windows");
    let first = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let previous = workspace.read("out/segments.json");
    let data = workspace.path().join("big");
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_segflow-datagen"))
        .args([
            "--customers",
            "60000",
            "--format",
            "parquet",
            "--out",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());

    let status = interrupt_a_long_run(&workspace, &data, "-TERM");
    assert_eq!(status.code(), Some(130), "interrupted runs exit with 130");
    assert!(
        staging_folders(workspace.path()).is_empty(),
        "the staging folder was removed"
    );
    assert_eq!(workspace.read("out/segments.json"), previous);

    // SIGKILL cannot be caught: the staging folder stays, the previous run is intact, and the
    // next run removes the abandoned folder.
    let status = interrupt_a_long_run(&workspace, &data, "-KILL");
    assert_eq!(status.code(), None);
    assert_eq!(staging_folders(workspace.path()).len(), 1);
    assert_eq!(workspace.read("out/segments.json"), previous);
    let again = workspace.segflow(&["run", "pipeline.yaml", "--out", "out", "--replace"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        staging_folders(workspace.path()).is_empty(),
        "abandoned staging folders are cleaned up"
    );
}

/// A small tmpfs mounted for one test, unmounted when dropped.
pub(crate) struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// Mount a tmpfs of `size` (e.g. `300k`); needs root, as CI has.
    pub(crate) fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::TempDir::new().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to mount a tmpfs"
            );
            crate::support::skipping(
                "cannot mount a tmpfs here (not root) for the full-disk check",
            );
            return None;
        }
        Some(TinyDisk { dir })
    }
}

impl TinyDisk {
    /// Where it is mounted.
    pub(crate) fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_is_an_output_error_and_leaves_nothing_behind() {
    let Some(disk) = TinyDisk::mount("100k") else {
        return;
    };
    let out = disk.dir.path().join("run");
    let output = segflow()
        .current_dir(crate::support::repo_path(""))
        .args(["run", "pipelines/saas_quarterly.yaml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(5), "{message}");
    assert!(
        message.contains("(os error 28)"),
        "no space left on device: {message}"
    );
    let left: Vec<_> = std::fs::read_dir(disk.dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the full disk still holds {left:?}");
}

/// Run segflow with stdout into a pipe whose reader goes away after `keep` bytes, like
/// `segflow ... | head -c KEEP`.
fn with_closed_pipe(args: &[&str], dir: &std::path::Path, keep: usize) -> std::process::Output {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0; keep];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly_and_the_run_folder_stays_complete() {
    let root = crate::support::repo_path("");
    let output = with_closed_pipe(&["schema"], &root, 1);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "");

    let workspace = Workspace::lint_clean();
    let output = with_closed_pipe(
        &["run", "pipeline.yaml", "--out", "out"],
        workspace.path(),
        1,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    for file in ["manifest.json", "report.html", "assignments.parquet"] {
        assert!(workspace.path().join("out").join(file).is_file(), "{file}");
    }
}

#[test]
fn a_full_stdout_is_an_output_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
        .arg("schema")
        .env("NO_COLOR", "1")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
    let message = stderr(&output);
    assert!(
        message.contains("cannot write to standard output: No space left on device"),
        "{message}"
    );
    assert!(!message.contains("internal error"), "{message}");
}

/// Write the `windows` fixture's events as Parquet, so that its bytes can be damaged.
fn events_as_parquet(workspace: &Workspace) -> Vec<u8> {
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;
    let text = workspace.read("events.csv");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    let ts: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    let feature: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    let batch = arrow::record_batch::RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(arrow::array::Int64Array::from(ids)) as arrow::array::ArrayRef,
        ),
        ("ts", Arc::new(arrow::array::StringArray::from(ts)) as _),
        (
            "feature",
            Arc::new(arrow::array::StringArray::from(feature)) as _,
        ),
    ])
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

#[test]
fn damaged_parquet_files_are_data_errors_naming_source_and_file() {
    let workspace = Workspace::lint_clean();
    let clean = events_as_parquet(&workspace);
    workspace.edit_pipeline("path: events.csv", "path: events.parquet");
    // Damage a few bytes at a time, at positions from a fixed generator; keep the magic numbers.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut failures = 0;
    for _ in 0..40 {
        let mut bytes = clean.clone();
        for _ in 0..4 {
            let at = 4 + (next() as usize) % (bytes.len() - 8);
            bytes[at] = next() as u8;
        }
        workspace.write_bytes("events.parquet", &bytes);
        let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
        let message = stderr(&output);
        assert!(
            !message.contains("internal error") && !message.contains("panicked"),
            "{message}"
        );
        match output.status.code() {
            Some(0) => {
                std::fs::remove_dir_all(workspace.path().join("out")).unwrap();
            }
            Some(code) => {
                failures += 1;
                assert!(code == 3 || code == 4, "exit {code}: {message}");
                assert!(message.contains("source `events`"), "{message}");
                assert!(!workspace.path().join("out").exists());
            }
            None => panic!("killed: {message}"),
        }
    }
    assert!(failures > 0, "no damage was noticed");
}

#[test]
fn a_bad_value_names_source_file_column_and_line() {
    let workspace = Workspace::lint_clean();
    let events = workspace.read("events.csv");
    let broken = events.replacen("2026-09-01T00:00:00", "x", 1);
    assert_ne!(broken, events);
    workspace.write("events.csv", &broken);
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(output.status.code(), Some(4));
    let message = stderr(&output);
    assert!(
        message
            .contains("source `events`: events.csv, column `ts`: Error parsing column 1 at line"),
        "{message}"
    );
    assert!(
        message.contains("Error parsing timestamp from 'x'"),
        "{message}"
    );
}

#[test]
fn an_error_on_a_two_megabyte_line_is_reported_without_its_snippet() {
    let workspace = Workspace::lint_clean();
    let line = format!(
        "{{version: 1, name: x, sources: {{a: {{path: a.csv}}}}, entity: {{source: a, key: k}}, features: [], segments: [{{id: s, name: S}}], description: \"{}\", bogus: 1}}",
        "x".repeat(2_000_000)
    );
    workspace.write("long.yaml", &line);
    let output = workspace.segflow(&["validate", "long.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.contains("unknown field `bogus`"),
        "{}",
        &message[..500.min(message.len())]
    );
    // The message wraps at the terminal width; where depends on the list of expected keys.
    assert!(
        message
            .replace("\n  │ ", " ")
            .contains("(at long.yaml:1:2000142; the line is too long to show)"),
        "{}",
        &message[..500.min(message.len())]
    );
    assert!(
        message.len() < 2_000,
        "the snippet was printed: {} bytes",
        message.len()
    );
}

#[test]
fn fuzz_finding_overflowing_parquet_statistics_is_a_data_error() {
    // Found by fuzz/fuzz_targets/sources.rs: the Parquet reader panicked (multiply with overflow)
    // while planning over this file's statistics, outside registration.
    let workspace = Workspace::lint_clean();
    let bytes = std::fs::read(crate::support::repo_path(
        "tests/fixtures/fuzz/overflowing-statistics.parquet",
    ))
    .unwrap();
    workspace.write_bytes("events.parquet", &bytes);
    workspace.edit_pipeline("path: events.csv", "path: events.parquet");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr(&output);
    assert!(
        matches!(output.status.code(), Some(3 | 4)),
        "{:?}: {message}",
        output.status.code()
    );
    assert!(!message.contains("internal error"), "{message}");
    assert!(message.contains("source `events`"), "{message}");
    assert!(!workspace.path().join("out").exists());
}

/// Arrow reads a number in a date column as days since 1970 without a word; an export with
/// numbers there (an Excel serial date, a Unix time) is refused, naming the file and column.
#[test]
fn numbers_in_a_declared_date_column_are_refused_not_read_as_days() {
    let workspace = Workspace::lint_clean();
    let mut ndjson = String::new();
    for (i, line) in workspace.read("customers.csv").lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        ndjson.push_str(&format!(
            "{{\"customer_id\": {}, \"signup_date\": {}, \"plan\": \"{}\", \"score\": null}}\n",
            cells[0],
            20_000 + i,
            cells[2]
        ));
    }
    workspace.write("customers.ndjson", &ndjson);
    workspace.edit_pipeline("path: customers.csv", "path: customers.ndjson");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains("source `customers`: customers.ndjson, column `signup_date`: holds numbers (Int64), but is declared date"),
        "{message}"
    );
    assert!(!workspace.path().join("out").exists());
}

/// A template that doubles a string until memory runs out: with overcommit the kernel would
/// kill segflow (SIGKILL, staging folder left). The address-space bound (here lowered to 3 GiB
/// for the test, as a smaller machine's memory would) makes the allocation fail instead, and
/// the run ends with exit 9, its folder and lock removed.
#[test]
fn a_runaway_allocation_is_a_resources_error_with_nothing_left() {
    use std::os::unix::process::CommandExt;
    let workspace = Workspace::from_fixture("windows");
    std::fs::create_dir(workspace.path().join("t")).unwrap();
    workspace.write(
        "t/report.md.j2",
        "{% set s = namespace(v='ab') %}{% for i in range(60) %}{% set s.v = s.v ~ s.v %}{% endfor %}{{ s.v|length }}",
    );
    workspace.edit_pipeline("as_of: 2026-10-01", "as_of: 2026-10-01\ntemplates: t");
    let before = workspace.entries();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"));
    command
        .current_dir(workspace.path())
        .args(["run", "pipeline.yaml", "--out", "out"]);
    // SAFETY: setrlimit is async-signal-safe and touches only this child's limits.
    unsafe {
        command.pre_exec(|| {
            let bound = libc::rlimit {
                rlim_cur: 3 << 30,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &bound) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    let message = stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(9), "{message}");
    assert!(
        message.contains("refused") && message.contains("far too large"),
        "{message}"
    );
    assert_eq!(workspace.entries(), before, "{message}");
}

/// A secret reaches text in other spellings than the one given: DataFusion prints paths without
/// their leading `/` or `./`, JSON escapes quotes and backslashes, a message wrapped at the
/// terminal's width splits a long value. Each spelling is masked.
#[test]
fn every_spelling_of_an_interpolated_value_is_masked() {
    let long = "acme-production-customer-export-bucket-token-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9";
    let quoted = "tok\"en\\se'c";
    for folder in [SECRET, long, quoted] {
        let workspace = events_under(folder);
        let absolute = workspace.path().join(folder).display().to_string();
        let dotted = format!("./{folder}");
        for value in [absolute.as_str(), dotted.as_str()] {
            let mut everything = String::new();
            for args in [
                &["plan", "pipeline.yaml", "--format", "physical"][..],
                &["plan", "pipeline.yaml", "--format", "logical"],
                &[
                    "run",
                    "pipeline.yaml",
                    "--out",
                    "out",
                    "--profile",
                    "--replace",
                ],
            ] {
                let output = run_with_secret(&workspace, value, args);
                assert!(output.status.success(), "{args:?}: {}", stderr(&output));
                everything.push_str(&stdout(&output));
                everything.push_str(&stderr(&output));
            }
            everything.push_str(&all_text_below(&workspace.path().join("out")));
            // A bad row makes DataFusion name the file in an error, printed for people and as JSON.
            let events = workspace.path().join(folder).join("events.csv");
            let good = std::fs::read_to_string(&events).unwrap();
            std::fs::write(&events, format!("{good}1,notatime,a\n")).unwrap();
            for format in ["human", "json"] {
                let output = run_with_secret(
                    &workspace,
                    value,
                    &["run", "pipeline.yaml", "--out", "bad", "--format", format],
                );
                assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
                everything.push_str(&stdout(&output));
                everything.push_str(&stderr(&output));
            }
            std::fs::write(&events, good).unwrap();
            let escaped = serde_json::to_string(folder).unwrap();
            for spelling in [folder, escaped.trim_matches('"')] {
                assert!(
                    !everything.contains(spelling),
                    "{value}: `{spelling}` leaked"
                );
            }
            assert!(
                everything.contains("[redacted]"),
                "{value}: nothing was masked"
            );
        }
    }
}

/// Masking must not corrupt data: a variable whose value also occurs inside numbers and dates of
/// the typed documents (`2026`) leaves them intact, so `--compare-to` can read them back.
#[test]
fn masking_never_corrupts_the_run_folders_documents() {
    let workspace = events_under("2026");
    let first = run_with_secret(&workspace, "2026", &["run", "pipeline.yaml", "--out", "r1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let segments: serde_json::Value =
        serde_json::from_str(&workspace.read("r1/segments.json")).unwrap();
    assert_eq!(segments["as_of"], "2026-10-01");
    let second = run_with_secret(
        &workspace,
        "2026",
        &["run", "pipeline.yaml", "--out", "r2", "--compare-to", "r1"],
    );
    assert!(second.status.success(), "{}", stderr(&second));
}

/// `segflow run` asks git for the pipeline's commit. A repository's own config can make git run
/// commands (an fsmonitor hook, a clean filter); a pipeline received as an archive must not run
/// anything through segflow.
#[test]
fn a_repositorys_config_runs_no_command() {
    let workspace = Workspace::from_fixture("windows");
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .current_dir(workspace.path())
            .args(["-c", "user.email=a@b", "-c", "user.name=a"])
            .args(args)
            .status();
        match status {
            Ok(status) => assert!(status.success(), "git {args:?}"),
            Err(e) => panic!("git is needed for this test: {e}"),
        }
    };
    git(&["init", "-q", "."]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "x"]);
    let marker = workspace.path().join("pwned");
    let command = format!("touch '{}'; false", marker.display());
    git(&["config", "core.fsmonitor", &command]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "r1"]);
    assert!(!marker.exists(), "core.fsmonitor ran");
    git(&["config", "--unset", "core.fsmonitor"]);
    workspace.write(".gitattributes", "*.csv filter=x\n");
    git(&[
        "config",
        "filter.x.clean",
        &format!("touch '{}'; cat", marker.display()),
    ]);
    workspace.write("customers.csv", &workspace.read("customers.csv"));
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "r2"]);
    assert!(!marker.exists(), "a clean filter ran");
    let manifest: serde_json::Value =
        serde_json::from_str(&workspace.read("r2/manifest.json")).unwrap();
    assert_eq!(
        manifest["git"]["dirty"], true,
        "unknown state is recorded as possibly dirty"
    );
}

/// A value glued to other text in the path (`client${ID}`, `${A}${B}`, `${T}v2`) or climbing
/// out with `../` is still the value: masked in plans, profiles and errors.
#[test]
fn interpolated_values_glued_to_other_text_are_masked() {
    let workspace = Workspace::from_fixture("windows");
    let folder = workspace.path().join("exports/clientacme1234tok9876v2");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::rename(
        workspace.path().join("events.csv"),
        folder.join("events.csv"),
    )
    .unwrap();
    workspace.edit_pipeline(
        "path: events.csv",
        "path: exports/client${SEG_A}${SEG_B}v2/events.csv",
    );
    let mut everything = String::new();
    for args in [
        &["plan", "pipeline.yaml", "--format", "physical"][..],
        &["run", "pipeline.yaml", "--out", "out", "--profile"],
    ] {
        let output = segflow()
            .current_dir(workspace.path())
            .env("SEG_A", "acme1234")
            .env("SEG_B", "tok9876")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        everything.push_str(&stdout(&output));
        everything.push_str(&stderr(&output));
    }
    everything.push_str(&workspace.read("out/profile.txt"));
    for secret in ["acme1234", "tok9876"] {
        assert!(!everything.contains(secret), "`{secret}` leaked");
    }
}

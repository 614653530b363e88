//! Helpers shared by the end-to-end tests.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::process::Command;
use tempfile::TempDir;

/// The `segflow` binary under test.
pub fn segflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_segflow"));
    command.env("NO_COLOR", "1");
    command
}

/// `command`'s output, or a panic when it runs longer than `limit` (it is killed first).
pub fn output_within(command: &mut Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start segflow");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait for segflow").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("segflow ran longer than {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("segflow output")
}

/// Say that a test skips a check for a part missing here, where `cargo test` shows it: libtest
/// hides what a passing test prints with `eprintln!`, not what it writes to the stderr handle.
pub fn skipping(reason: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "note: {reason}; skipping that check (CI runs it)"
    );
}

/// The Python with the `duckdb` package (.ci/run makes one), or `None` outside CI.
pub fn duckdb_python() -> Option<String> {
    let python = std::env::var("SEGFLOW_TEST_DUCKDB_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    if python.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "SEGFLOW_TEST_DUCKDB_PYTHON is not set: .ci/run makes a venv with duckdb"
        );
        skipping("no Python with duckdb (set SEGFLOW_TEST_DUCKDB_PYTHON)");
    }
    python
}

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A scratch folder holding a copy of a fixture folder, so tests can edit the pipeline and
/// run with paths relative to it (keeping messages free of temporary paths).
pub struct Workspace {
    dir: TempDir,
}

impl Workspace {
    /// A copy of `tests/fixtures/<name>`.
    pub fn from_fixture(name: &str) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let fixture = repo_path(&format!("tests/fixtures/{name}"));
        for entry in std::fs::read_dir(&fixture).expect("fixture folder") {
            let entry = entry.expect("fixture entry");
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
        Workspace { dir }
    }

    /// The `windows` fixture with every segment owned and given an action of its own, and
    /// `lapsed` marked negative, so that it lints clean and only the problem under test is
    /// reported.
    pub fn lint_clean() -> Self {
        let workspace = Workspace::from_fixture("windows");
        for segment in ["busy", "active", "new_quiet", "lapsed"] {
            workspace.edit_pipeline(
                &format!("  - id: {segment}\n"),
                &format!("  - id: {segment}\n    owner: team\n    actions: [Act on {segment}]\n"),
            );
        }
        workspace.edit_pipeline(
            "    actions: [Act on lapsed]\n",
            "    actions: [Act on lapsed]\n    negative: true\n    negative_reason: Gone quiet.\n",
        );
        workspace
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Read a file of the workspace.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).expect("read workspace file")
    }

    /// Write a file into the workspace.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write workspace file");
    }

    /// Write bytes into a file of the workspace.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path().join(name), bytes).expect("write workspace file");
    }

    /// Rewrite `pipeline.yaml`, replacing `from` (which must occur) with `to`.
    pub fn edit_pipeline(&self, from: &str, to: &str) {
        self.edit_pipeline_file("pipeline.yaml", from, to);
    }

    /// Rewrite the workspace's file `name`, replacing `from` (which must occur) with `to`.
    pub fn edit_pipeline_file(&self, name: &str, from: &str, to: &str) {
        let text = self.read(name);
        assert!(text.contains(from), "{name} has no `{from}`");
        self.write(name, &text.replacen(from, to, 1));
    }

    /// Run segflow with `args` inside the workspace.
    pub fn segflow(&self, args: &[&str]) -> Output {
        segflow()
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("run segflow")
    }

    /// Run segflow with `args` inside the workspace and require success.
    pub fn segflow_ok(&self, args: &[&str]) -> Output {
        let output = self.segflow(args);
        assert!(
            output.status.success(),
            "segflow {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Names of the entries in the workspace, sorted (hidden staging folders included).
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .expect("read workspace")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A run of a shipped example pipeline into a fresh temporary folder.
pub struct ExampleRun {
    dir: TempDir,
}

impl ExampleRun {
    /// Run `pipeline` (relative to the repository) with `args` into `<temp>/run`, from the
    /// repository's root, and require success.
    pub fn new(pipeline: &str, args: &[&str]) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let output = segflow()
            .current_dir(repo_path(""))
            .args(["run", pipeline, "--out"])
            .arg(dir.path().join("run"))
            .args(args)
            .output()
            .expect("run segflow");
        assert!(
            output.status.success(),
            "segflow run {pipeline} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        ExampleRun { dir }
    }

    /// The run folder.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A file of the run folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

/// Every file below `dir`, by path relative to it (`personas/a.md`), with its bytes.
pub fn files_below(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .to_string_lossy()
                    .into_owned();
                found.insert(name, std::fs::read(&path).expect("read file"));
            }
        }
    }
    found
}

/// One assignments row: column name → value.
pub type Row = BTreeMap<String, Value>;

/// Read `assignments.parquet` into rows keyed by `key`, and the column types.
pub fn read_assignments(path: &Path, key: &str) -> (BTreeMap<i64, Row>, BTreeMap<String, String>) {
    let file = File::open(path).expect("open assignments");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut rows = BTreeMap::new();
    let mut types = BTreeMap::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let schema = batch.schema();
        for field in schema.fields() {
            types.insert(field.name().clone(), field.data_type().to_string());
        }
        for r in 0..batch.num_rows() {
            let mut row = Row::new();
            for (c, field) in schema.fields().iter().enumerate() {
                let value =
                    segflow::engine::stats::scalar(batch.column(c).as_ref(), r).expect("cell");
                row.insert(field.name().clone(), value);
            }
            let id = row[key].as_i64().expect("integer key");
            assert!(
                rows.insert(id, row).is_none(),
                "customer {id} appears twice"
            );
        }
    }
    (rows, types)
}

/// Parse a JSON file.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("json")
}

/// Stderr of a finished command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stderr of a finished command as one line: miette's wrapping (line breaks, indents and its
/// `│` gutter) undone, so a long message can be matched whole.
pub fn stderr_unwrapped(output: &Output) -> String {
    stderr(output)
        .split_whitespace()
        .filter(|word| *word != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stdout of a finished command, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The URL of the test PostgreSQL (`eval "$(scripts/postgres-start)"` sets it; `.ci/run` does),
/// or `None` outside CI when there is none. In CI (`CI` set) a missing database fails the test.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("SEGFLOW_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "SEGFLOW_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL with scripts/postgres-start"
        );
        skipping("no test PostgreSQL (run `eval \"$(scripts/postgres-start)\"`)");
    }
    url
}

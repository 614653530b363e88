//! The documents of a run folder besides `segments.json` and `criteria.json`: provenance
//! (`manifest.json`), scoring, lints and the comparison. Reports are rendered from these as read
//! back, so `segflow report` on a finished folder renders what `run` rendered.

use serde::{Deserialize, Serialize};

use crate::engine::SourceSummary;

/// The pipeline's repository state at run time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct GitState {
    /// The checked-out commit.
    pub commit: String,
    /// Whether the work tree had uncommitted changes to tracked files.
    pub dirty: bool,
    /// Whether the pipeline file itself differed from the commit (or was not committed).
    pub pipeline_modified: bool,
}

/// What ran, on what, when: the part of `manifest.json` known before the reports are rendered,
/// and shown in them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// segflow's version.
    pub segflow_version: String,
    /// The pipeline file as given on the command line.
    pub pipeline_file: String,
    /// SHA-256 of the pipeline file.
    pub pipeline_sha256: String,
    /// The git commit of the pipeline's repository and whether it had uncommitted changes; null
    /// outside a git work tree.
    pub git: Option<GitState>,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// As-of date in force.
    pub as_of: String,
    /// The engine that computed the assignments: `embedded` (DataFusion in segflow) or
    /// `postgres` (`--engine postgres`: inside the database the sources are in).
    #[serde(default = "embedded")]
    pub engine: String,
    /// Sources as read: location, rows, content hash.
    pub sources: Vec<SourceSummary>,
    /// When the run started (UTC, RFC 3339). Run metadata: differs between identical runs.
    pub started_at: String,
    /// The names (never the values) of the `${VAR}`s whose values the reports mask, so that
    /// `segflow report` masks them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_variables: Vec<String>,
}

/// Run folders written before the engine was recorded were computed by the embedded engine.
fn embedded() -> String {
    "embedded".into()
}

/// What a reviewer needs to reproduce a run, written as `manifest.json` (and read back by
/// `--replace`, which replaces only the files its `outputs` list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// What ran, on what, when.
    #[serde(flatten)]
    pub run: RunInfo,
    /// Seconds per stage. Run metadata: differs between identical runs.
    pub timings: Vec<StageTiming>,
    /// Files written into the run folder.
    pub outputs: Vec<String>,
    /// The pipeline's exports, each committed with this run (absent when it declares none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExportRecord>,
}

/// An export as the manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExportRecord {
    /// The export's name in the pipeline.
    pub name: String,
    /// `postgres` or `file`.
    pub kind: String,
    /// Where it went: `user@host:port/database table` (never the password), or the file.
    pub target: String,
    /// Rows written.
    pub rows: u64,
    /// The run id written into every row of a Postgres export (and its history).
    pub run_id: String,
    /// `committed`: written in the same step as this run folder.
    pub status: String,
}

/// Seconds one stage took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage.
    pub stage: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A lint warning as `lint.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LintRecord {
    /// The lint code.
    pub code: String,
    /// What it found.
    pub message: String,
    /// Line in the pipeline file, when known.
    pub line: Option<usize>,
    /// Column, when known.
    pub column: Option<usize>,
    /// What to do.
    pub help: Option<String>,
}

impl LintRecord {
    /// The record of a lint problem.
    pub fn of(problem: &crate::diagnostic::Problem) -> Self {
        let position = problem.line_column();
        LintRecord {
            code: problem.code_name().to_string(),
            message: problem.message().to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            help: problem.help_text().map(str::to_string),
        }
    }
}

/// `kind` of a folder written by `segflow report`.
pub const REPORT_KIND: &str = "report";

/// `manifest.json` of a folder of re-rendered reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportManifest {
    /// segflow's version.
    pub segflow_version: String,
    /// Always `report`.
    pub kind: String,
    /// The run folder rendered, as named on the command line.
    pub run: String,
    /// The templates folder, when one was given.
    pub templates: Option<String>,
    /// Files written into the folder.
    pub outputs: Vec<String>,
}

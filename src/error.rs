//! The one error type every stage converts into, with diagnostics users can act on, and the
//! documented exit code of each kind of failure.

use std::fmt;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, LabeledSpan, SourceCode};

use crate::diagnostic::{PipelineFile, Problem};

/// Exit codes, documented in the README.
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// The command line was wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The pipeline file (or a template it uses) is invalid.
    pub const PIPELINE: u8 = 3;
    /// An input source is missing, unreadable or holds data the pipeline cannot use.
    pub const DATA: u8 = 4;
    /// The outputs could not be written; nothing was left half-written.
    pub const OUTPUT: u8 = 5;
    /// The run completed and wrote everything, but a validation criterion failed.
    pub const CRITERIA: u8 = 6;
    /// Lint warnings were found and `--deny-warnings` was given.
    pub const LINT: u8 = 7;
    /// The pipeline's own segment tests (`segflow test`) failed.
    pub const TESTS: u8 = 8;
    /// The run needed more memory than `--memory-limit` allows, even with spilling.
    pub const MEMORY: u8 = 9;
    /// A run folder given to `diff`, `history` or `--compare-to` is missing, incomplete or
    /// corrupt.
    pub const RUN_FOLDER: u8 = 10;
    /// Chromium, which prints the report to PDF, is missing, failed or did not finish in time.
    pub const CHROMIUM: u8 = 11;
    /// An export (a database table or a file the pipeline's `exports:` names) failed; the run
    /// folder and every export are left as they were.
    pub const EXPORT: u8 = 12;
    /// The Ballista cluster of `--engine ballista://` could not be reached or failed the job.
    pub const CLUSTER: u8 = 13;
    /// `segflow impact --fail-if-moved-above`: more customers changed segment than allowed.
    pub const MOVED: u8 = 14;
    /// A bug in segflow.
    pub const INTERNAL: u8 = 70;
    /// Interrupted by Ctrl-C or a termination signal; nothing was written.
    pub const INTERRUPTED: u8 = 130;
}

/// Result with segflow's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a segflow command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file segflow was told to read could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why (not an error `source`, so that it is printed once).
        reason: std::io::Error,
    },
    /// The pipeline file has problems; all of them are listed.
    #[error("{}", summary(file, problems))]
    Pipeline {
        /// The pipeline file as the user named it.
        file: String,
        /// Each problem, with its location.
        problems: Vec<Problem>,
    },
    /// An input source cannot be used.
    #[error("source `{source_name}`: {message}")]
    Source {
        /// The source's name in the pipeline.
        source_name: String,
        /// What is wrong.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// The data broke an assumption the pipeline relies on, or failed while executing.
    #[error("{message}")]
    Data {
        /// What is wrong.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// A report template failed to load or render.
    #[error("template `{template}`: {message}")]
    Template {
        /// The template's file name.
        template: String,
        /// The template engine's message, with the line.
        message: String,
    },
    /// Outputs could not be written.
    #[error("{message}")]
    Output {
        /// What is wrong.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// The command line names something that does not exist.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// The pipeline uses something the target SQL dialect cannot express (`segflow compile`).
    #[error("the pipeline cannot be compiled for {dialect}: {message}")]
    Dialect {
        /// The dialect.
        dialect: String,
        /// What cannot be expressed, and where.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// Lint warnings were found and `--deny-warnings` turns them into a failure.
    #[error("{count} lint warning(s) and --deny-warnings")]
    LintDenied {
        /// How many warnings.
        count: usize,
    },
    /// The pipeline's own segment tests failed.
    #[error("{failed} of {total} segment tests failed")]
    TestsFailed {
        /// Failed tests.
        failed: usize,
        /// All tests.
        total: usize,
    },
    /// One failure of a segment test (reported on its own in JSON output).
    #[error("segment test `{test}`: {failure}")]
    TestFailure {
        /// The test's name.
        test: String,
        /// What went wrong.
        failure: String,
    },
    /// The run finished, but validation criteria failed.
    #[error("validation criteria failed:\n  {}", failed.join("\n  "))]
    CriteriaFailed {
        /// One line per failed check.
        failed: Vec<String>,
    },
    /// A run folder to compare with cannot be read.
    #[error("run folder {folder}: {message}")]
    RunFolder {
        /// The folder as named.
        folder: String,
        /// What is wrong.
        message: String,
    },
    /// Chromium, which prints the report to PDF, is missing, failed or did not finish in time.
    #[error("{message}")]
    Chromium {
        /// What is wrong.
        message: String,
        /// What to do about it (how to install Chromium or point segflow at one).
        help: Option<String>,
    },
    /// A database the pipeline reads could not be reached or read.
    #[error("source `{source_name}` ({target}): {message}")]
    Database {
        /// The source.
        source_name: String,
        /// Where it is: host, port and database, never the password.
        target: String,
        /// What went wrong (with secrets masked).
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// An export failed; nothing was exported and the run folder was not written.
    #[error("export `{export}`: {message}")]
    Export {
        /// The export, as named in the pipeline.
        export: String,
        /// What went wrong (with secrets masked).
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// More customers changed segment than `--fail-if-moved-above` allows; everything was written.
    #[error(
        "{moved} customers ({share:.1}%) change segment, more than the {threshold:.1}% allowed (the impact is in {folder})"
    )]
    TooManyMoved {
        /// Customers who moved.
        moved: u64,
        /// Their share, in percent.
        share: f64,
        /// The allowed share, in percent.
        threshold: f64,
        /// The impact folder written.
        folder: String,
    },
    /// The Ballista cluster could not be reached, had no executor, or failed the job.
    #[error("Ballista cluster {scheduler}: {message}")]
    Cluster {
        /// The scheduler, `ballista://HOST:PORT`.
        scheduler: String,
        /// The cluster's message.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// The engine ran out of its memory pool in a stage, even after spilling.
    #[error("out of memory in stage `{stage}`{}: {message}", limit.map_or(String::new(), |l| format!(" under --memory-limit {}", human_bytes(l))))]
    OutOfMemory {
        /// The stage that ran out.
        stage: &'static str,
        /// The limit in force, in bytes.
        limit: Option<u64>,
        /// DataFusion's message.
        message: String,
    },
    /// Standard output was closed by its reader (`| head`): the command ends quietly.
    #[error("standard output was closed")]
    BrokenPipe,
    /// A bug in segflow.
    #[error("internal error (this is a bug in segflow, please report it): {0}")]
    Internal(String),
}

fn summary(file: &str, problems: &[Problem]) -> String {
    match problems {
        [only] => format!("{file}: {}", only.message()),
        _ => format!("{file}: {} problems", problems.len()),
    }
}

impl Error {
    /// An output error about a file in the staging folder `staging`, told as the run folder
    /// `destination` it was being written for.
    pub fn relocated(self, staging: &Path, destination: &Path) -> Self {
        match self {
            Error::Output { message, help } => Error::Output {
                message: message.replace(
                    &staging.display().to_string(),
                    &destination.display().to_string(),
                ),
                help,
            },
            other => other,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::ReadFile { .. }
            | Error::Pipeline { .. }
            | Error::Template { .. }
            | Error::Dialect { .. } => exit::PIPELINE,
            Error::Source { .. } | Error::Data { .. } => exit::DATA,
            Error::Output { .. } => exit::OUTPUT,
            Error::Usage { .. } => exit::USAGE,
            Error::CriteriaFailed { .. } => exit::CRITERIA,
            Error::LintDenied { .. } => exit::LINT,
            Error::TestsFailed { .. } | Error::TestFailure { .. } => exit::TESTS,
            Error::OutOfMemory { .. } => exit::MEMORY,
            Error::RunFolder { .. } => exit::RUN_FOLDER,
            Error::Chromium { .. } => exit::CHROMIUM,
            Error::Database { .. } => exit::DATA,
            Error::Export { .. } => exit::EXPORT,
            Error::Cluster { .. } => exit::CLUSTER,
            Error::TooManyMoved { .. } => exit::MOVED,
            Error::Internal(_) => exit::INTERNAL,
            Error::BrokenPipe => exit::OK,
        }
    }

    /// The pipeline error listing `problems` in `file`, or `Ok` when there are none.
    pub fn fail_if_any(file: &PipelineFile, problems: Vec<Problem>) -> Result<()> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Pipeline {
                file: file.display_name().to_string(),
                problems,
            })
        }
    }

    /// This error, raised while the engine ran `stage` under memory `limit`: running out of the
    /// memory pool becomes [`Error::OutOfMemory`], naming the stage and the limit.
    pub fn in_stage(self, stage: &'static str, limit: Option<u64>) -> Self {
        match self {
            Error::Data { message, .. } if message.starts_with("Resources exhausted") => {
                Error::OutOfMemory {
                    stage,
                    limit,
                    message,
                }
            }
            other => other,
        }
    }

    /// A data error with a hint.
    pub fn data(message: impl Into<String>, help: Option<String>) -> Self {
        Error::Data {
            message: message.into(),
            help,
        }
    }

    /// An output error about `path`. A full disk gets a hint (the message of a full disk is
    /// the same whichever writer saw it first).
    pub fn output(path: &Path, source: impl fmt::Display) -> Self {
        let message = format!("cannot write {}: {source}", path.display());
        let disk_full = message.contains("(os error 28)");
        Error::Output {
            message,
            help: disk_full.then(|| {
                "the disk is full: nothing of this run was kept and earlier runs are untouched; \
                 free space or choose another --out"
                    .to_string()
            }),
        }
    }
}

impl Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match self {
            Error::ReadFile { .. } => "segflow::read",
            Error::Pipeline { problems, .. } if problems.len() == 1 => {
                return Diagnostic::code(&problems[0]);
            }
            Error::Pipeline { .. } => "segflow::pipeline",
            Error::Source { .. } => "segflow::source",
            Error::Data { .. } => "segflow::data",
            Error::Template { .. } => "segflow::template",
            Error::Output { .. } => "segflow::output",
            Error::Usage { .. } => "segflow::usage",
            Error::Dialect { .. } => "segflow::dialect",
            Error::CriteriaFailed { .. } => "segflow::criteria",
            Error::LintDenied { .. } => "segflow::lint",
            Error::TestsFailed { .. } | Error::TestFailure { .. } => "segflow::tests",
            Error::OutOfMemory { .. } => "segflow::memory",
            Error::RunFolder { .. } => "segflow::run-folder",
            Error::Chromium { .. } => "segflow::chromium",
            Error::Database { .. } => "segflow::database",
            Error::Export { .. } => "segflow::export",
            Error::Cluster { .. } => "segflow::cluster",
            Error::TooManyMoved { .. } => "segflow::moved",
            Error::Internal(_) | Error::BrokenPipe => "segflow::internal",
        };
        Some(Box::new(code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            Error::Pipeline { problems, .. } if problems.len() == 1 => {
                Diagnostic::help(&problems[0])
            }
            Error::RunFolder { .. } => Some(Box::new(
                "pass a folder written by `segflow run` (it holds segments.json, criteria.json \
                 and assignments.parquet)",
            )),
            Error::OutOfMemory { .. } => Some(Box::new(
                "raise --memory-limit (e.g. --memory-limit 8GiB), or free memory for the run; \
                 operators that can spill already wrote to the temporary folder ($TMPDIR)",
            )),
            Error::Source { help, .. }
            | Error::Data { help, .. }
            | Error::Output { help, .. }
            | Error::Usage { help, .. }
            | Error::Dialect { help, .. }
            | Error::Chromium { help, .. }
            | Error::Database { help, .. }
            | Error::Export { help, .. }
            | Error::Cluster { help, .. } => {
                help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
            }
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self {
            Error::Pipeline { problems, .. } if problems.len() == 1 => problems[0].source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self {
            Error::Pipeline { problems, .. } if problems.len() == 1 => problems[0].labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            Error::Pipeline { problems, .. } if problems.len() > 1 => {
                Some(Box::new(problems.iter().map(|p| p as &dyn Diagnostic)))
            }
            _ => None,
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(error: datafusion::arrow::error::ArrowError) -> Self {
        Error::data(error.to_string(), None)
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        Error::data(first_line_of_datafusion(&error), None)
    }
}

/// DataFusion's message without its context chain noise, which users cannot act on.
pub fn first_line_of_datafusion(error: &datafusion::error::DataFusionError) -> String {
    let inner = error.find_root().to_string();
    let mut text = inner.as_str();
    // Nested errors repeat their kind ("Parquet error: Parquet error: ..."); keep one.
    while let Some(rest) = text.strip_prefix("Parquet error: ")
        && rest.starts_with("Parquet error: ")
    {
        text = rest;
    }
    text.trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("Arrow error: ")
        .trim_start_matches("Execution error: ")
        .trim_start_matches("Parser error: ")
        .trim_start_matches("SQL error: ")
        .trim_start_matches("External error: ")
        .to_string()
}

/// `bytes` in binary units, e.g. `2 GiB`, `512 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

//! The one error type every stage converts into, with diagnostics users can act on, and the
//! documented exit code of each kind of failure.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

use crate::pipeline::Locations;

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
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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
    /// The run finished, but validation criteria failed.
    #[error("validation criteria failed:\n  {}", failed.join("\n  "))]
    CriteriaFailed {
        /// One line per failed check.
        failed: Vec<String>,
    },
    /// A bug in segflow.
    #[error("internal error (this is a bug in segflow, please report it): {0}")]
    Internal(String),
}

fn summary(file: &str, problems: &[Problem]) -> String {
    match problems {
        [only] => format!("{file}: {}", only.message),
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
            Error::ReadFile { .. } | Error::Pipeline { .. } | Error::Template { .. } => {
                exit::PIPELINE
            }
            Error::Source { .. } | Error::Data { .. } => exit::DATA,
            Error::Output { .. } => exit::OUTPUT,
            Error::Usage { .. } => exit::USAGE,
            Error::CriteriaFailed { .. } => exit::CRITERIA,
            Error::LintDenied { .. } => exit::LINT,
            Error::TestsFailed { .. } => exit::TESTS,
            Error::Internal(_) => exit::INTERNAL,
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
                return problems[0].code();
            }
            Error::Pipeline { .. } => "segflow::pipeline",
            Error::Source { .. } => "segflow::source",
            Error::Data { .. } => "segflow::data",
            Error::Template { .. } => "segflow::template",
            Error::Output { .. } => "segflow::output",
            Error::Usage { .. } => "segflow::usage",
            Error::CriteriaFailed { .. } => "segflow::criteria",
            Error::LintDenied { .. } => "segflow::lint",
            Error::TestsFailed { .. } => "segflow::tests",
            Error::Internal(_) => "segflow::internal",
        };
        Some(Box::new(code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            Error::Pipeline { problems, .. } if problems.len() == 1 => {
                Diagnostic::help(&problems[0])
            }
            Error::Source { help, .. }
            | Error::Data { help, .. }
            | Error::Output { help, .. }
            | Error::Usage { help, .. } => {
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

/// The pipeline file's text and node positions, for pointing problems at their place.
#[derive(Debug, Clone)]
pub struct Origin {
    source: NamedSource<Arc<String>>,
    locations: Arc<Locations>,
    display_name: String,
}

impl Origin {
    /// Index `text`, read from the file shown to users as `display_name`.
    pub fn new(display_name: &str, text: String) -> Self {
        let locations = Arc::new(Locations::index(&text));
        Origin {
            source: NamedSource::new(display_name, Arc::new(text)),
            locations,
            display_name: display_name.to_string(),
        }
    }

    /// The file name shown to users.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        self.source.inner().as_str()
    }

    /// A problem at the value of the node at `path` (e.g. `features[2].expr`).
    pub fn at(&self, code: &'static str, path: &str, message: impl Into<String>) -> Problem {
        self.problem(code, self.locations.value(path), message)
    }

    /// A problem at the first whole-word use of `word` inside the value at `path` (the whole
    /// value when the word is not found on its line).
    pub fn at_word(
        &self,
        code: &'static str,
        path: &str,
        word: &str,
        message: impl Into<String>,
    ) -> Problem {
        let span = self.locations.value(path).map(|span| {
            let text = self.text();
            let start = span.offset();
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            find_word(&text[start..end], word)
                .map_or(span, |at| SourceSpan::new((start + at).into(), word.len()))
        });
        self.problem(code, span, message)
    }

    /// A problem at character `column` (1-based) of the first line of the value at `path`, for
    /// positions reported inside an SQL snippet. Falls back to the whole value.
    pub fn at_column(
        &self,
        code: &'static str,
        path: &str,
        column: usize,
        message: impl Into<String>,
    ) -> Problem {
        let span = self.locations.value(path).map(|span| {
            let text = self.text();
            let start = span.offset();
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let line = &text[start..line_end];
            // Quoted scalars start one character before their content.
            let skip = usize::from(line.starts_with(['"', '\'']));
            line.char_indices()
                .nth(skip + column.saturating_sub(1))
                .map_or(span, |(at, c)| {
                    SourceSpan::new((start + at).into(), c.len_utf8())
                })
        });
        self.problem(code, span, message)
    }

    /// A problem at the mapping key of the node at `path`.
    pub fn at_key(&self, code: &'static str, path: &str, message: impl Into<String>) -> Problem {
        self.problem(code, self.locations.key(path), message)
    }

    /// A problem at an explicit span.
    pub fn problem(
        &self,
        code: &'static str,
        span: Option<SourceSpan>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            code,
            message: message.into(),
            source: self.source.clone(),
            span,
            label: None,
            help: None,
            warning: false,
        }
    }

    /// Turn a list of problems into the pipeline error, or `Ok` when there are none.
    pub fn fail_if_any(&self, problems: Vec<Problem>) -> Result<()> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Pipeline {
                file: self.display_name.clone(),
                problems,
            })
        }
    }
}

/// Byte offset of the first occurrence of `word` in `text` not inside a longer identifier.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// One problem in a pipeline file, pointing at where it is.
#[derive(Debug, Clone)]
pub struct Problem {
    code: &'static str,
    message: String,
    source: NamedSource<Arc<String>>,
    span: Option<SourceSpan>,
    label: Option<String>,
    help: Option<String>,
    warning: bool,
}

impl Problem {
    /// Make this a warning (a lint) rather than an error.
    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// Whether this is a warning.
    pub fn is_warning(&self) -> bool {
        self.warning
    }

    /// The problem's code, e.g. `too-many-segments`.
    pub fn code_name(&self) -> &'static str {
        self.code
    }

    /// The help line, when there is one.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// Add a line telling the user what to do.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Add a help line only when there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// Text shown at the span.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The problem's message, without location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The 1-based line and column where the problem is, when known.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        let span = self.span?;
        let text = self.source.inner();
        let before = &text[..span.offset().min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, column))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("segflow::{}", self.code)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.warning {
            miette::Severity::Warning
        } else {
            miette::Severity::Error
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.span.map(|_| &self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let label = self.label.clone().unwrap_or_else(|| "here".to_string());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(label),
            span,
        ))))
    }
}

//! Diagnostics: the problem type every stage reports, the pipeline file with the positions of its
//! nodes, the registry of codes, did-you-mean suggestions, and rendering for people (miette) and
//! machines (JSON lines).

pub mod codes;
mod locations;
mod names;

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

pub use codes::{Code, Severity};
pub use locations::{Locations, MAX_DEPTH, byte_offset};
pub use names::{available_help, did_you_mean};

/// The pipeline file as read: its text, its name, and where each node is, for pointing problems
/// at their place.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    source: NamedSource<Arc<String>>,
    locations: Arc<Locations>,
    display_name: String,
}

impl PipelineFile {
    /// Index `text`, read from the file shown to users as `display_name`.
    pub fn new(display_name: &str, text: String) -> Self {
        let locations = Arc::new(Locations::index(&text));
        PipelineFile {
            source: NamedSource::new(display_name, Arc::new(text)),
            locations,
            display_name: display_name.to_string(),
        }
    }

    /// The file name shown to users.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// Where the file nests deeper than [`MAX_DEPTH`], if it does.
    pub fn too_deep(&self) -> Option<SourceSpan> {
        self.locations.too_deep()
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        self.source.inner().as_str()
    }

    /// A problem at the value of the node at `path` (e.g. `features[2].expr`).
    pub fn at(&self, code: &'static Code, path: &str, message: impl Into<String>) -> Problem {
        self.problem(code, self.locations.value(path), message)
    }

    /// A problem at the first whole-word use of `word` inside the value at `path` (the whole
    /// value when the word is not found on its line).
    pub fn at_word(
        &self,
        code: &'static Code,
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
        code: &'static Code,
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
    pub fn at_key(&self, code: &'static Code, path: &str, message: impl Into<String>) -> Problem {
        self.problem(code, self.locations.key(path), message)
    }

    /// A problem at an explicit span.
    pub fn problem(
        &self,
        code: &'static Code,
        span: Option<SourceSpan>,
        message: impl Into<String>,
    ) -> Problem {
        let mut message = message.into();
        let mut span = span;
        // A snippet of a very long line (a minified or generated file) would be unreadable and
        // slow to draw: say where instead.
        if let Some(at) = span {
            let text = self.text();
            let start = at.offset().min(text.len());
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            if line_end - line_start > MAX_SNIPPET_LINE {
                let line = text[..start].matches('\n').count() + 1;
                let column = text[line_start..start].chars().count() + 1;
                message = format!(
                    "{message} (at {}:{line}:{column}; the line is too long to show)",
                    self.display_name
                );
                span = None;
            }
        }
        Problem {
            code,
            message,
            source: self.source.clone(),
            span,
            label: None,
            help: None,
        }
    }
}

/// Longest line (in bytes) a diagnostic shows as a snippet.
const MAX_SNIPPET_LINE: usize = 1_000;

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
    code: &'static Code,
    message: String,
    source: NamedSource<Arc<String>>,
    span: Option<SourceSpan>,
    label: Option<String>,
    help: Option<String>,
}

impl Problem {
    /// Whether this is a warning.
    pub fn is_warning(&self) -> bool {
        self.code.severity == Severity::Warning
    }

    /// The problem's code, e.g. `too-many-segments`.
    pub fn code_name(&self) -> &'static str {
        self.code.name
    }

    /// The problem's registered code.
    pub fn code(&self) -> &'static Code {
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
        Some(Box::new(format!("segflow::{}", self.code.name)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.is_warning() {
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

/// `diagnostic` as JSON lines, one per problem (a pipeline error with several problems gives
/// one line each): code, severity, message, file, line and column (1-based, null when unknown)
/// and help.
pub fn json_lines(diagnostic: &dyn Diagnostic) -> Vec<String> {
    match diagnostic.related() {
        Some(related) => related.flat_map(json_lines).collect(),
        None => vec![json_line(diagnostic)],
    }
}

/// One diagnostic as printed by `--format json`.
#[derive(serde::Serialize)]
struct JsonDiagnostic {
    code: Option<String>,
    severity: &'static str,
    message: String,
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    help: Option<String>,
}

fn json_line(diagnostic: &dyn Diagnostic) -> String {
    let code = diagnostic.code().map(|c| {
        let code = c.to_string();
        code.trim_start_matches("segflow::").to_string()
    });
    let severity = match diagnostic.severity() {
        Some(miette::Severity::Warning) => "warning",
        Some(miette::Severity::Advice) => "advice",
        _ => "error",
    };
    let mut line = JsonDiagnostic {
        code,
        severity,
        message: diagnostic.to_string(),
        file: None,
        line: None,
        column: None,
        help: diagnostic.help().map(|h| h.to_string()),
    };
    if let (Some(source), Some(label)) = (
        diagnostic.source_code(),
        diagnostic.labels().and_then(|mut labels| labels.next()),
    ) && let Ok(contents) = source.read_span(label.inner(), 0, 0)
    {
        line.file = contents.name().map(str::to_string);
        line.line = Some(contents.line() + 1);
        line.column = Some(contents.column() + 1);
    }
    serde_json::to_string(&line).unwrap_or_default()
}

//! Views that reports render beside the run folder's documents: lint warnings as lines.

use serde::Serialize;

/// A lint warning as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct LintView {
    /// The lint code.
    pub code: &'static str,
    /// What it found.
    pub message: String,
    /// Line in the pipeline file, when known.
    pub line: Option<usize>,
    /// Column, when known.
    pub column: Option<usize>,
    /// What to do.
    pub help: Option<String>,
}

impl LintView {
    /// The view of a lint problem.
    pub fn of(problem: &crate::diagnostic::Problem) -> Self {
        let position = problem.line_column();
        LintView {
            code: problem.code_name(),
            message: problem.message().to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            help: problem.help_text().map(str::to_string),
        }
    }
}

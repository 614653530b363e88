//! Progress of a long run on the terminal: the stage, customers written and elapsed time, drawn on
//! stderr only when it is a terminal and `--quiet` was not given. Nothing of it reaches the run
//! folder, so outputs stay byte-identical.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress line, or nothing when hidden.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress line on stderr when it is a terminal and `quiet` is false.
    pub fn on_terminal(quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix}: {msg}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// No progress shown.
    pub fn hidden() -> Self {
        Progress { bar: None }
    }

    /// A new stage begins.
    pub fn stage(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(name.to_string());
            bar.set_message("");
        }
    }

    /// `written` customers are done in the current stage.
    pub fn customers(&self, written: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{written} customers written"));
        }
    }

    /// Print a note on stderr, above the progress line when there is one. Shown even with
    /// `--quiet`: it tells of a risk to the results, not of progress.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Remove the line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Tests stop a run at a named point (just before its commit, between the renames of `--replace`,
/// inside an export) to send a signal there; the variable gives milliseconds. Debug builds only.
pub(crate) fn pause_for_tests(variable: &str) {
    #[cfg(not(debug_assertions))]
    let _ = variable;
    #[cfg(debug_assertions)]
    if let Some(millis) = std::env::var(variable)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }
}

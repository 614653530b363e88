//! The runs of a history and the history folder's format: run folders named directly or by glob
//! patterns, put in as-of order, the flows between consecutive runs measured on their
//! assignments, and the manifest that marks a folder as a history segflow wrote.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{MANIFEST, Run, summary};
use crate::analysis::compare::RunSummary;
use crate::analysis::history::{self, History, SameAsOf};
use crate::diagnostic::available_help;
use crate::engine::compare::is_numeric;
use crate::error::{Error, Result};

/// The history as data ([`History`]).
pub const HISTORY: &str = "history.json";
/// The history for people, as Markdown.
pub const HISTORY_MD: &str = "history.md";
/// The history for people, as one HTML page.
pub const HISTORY_HTML: &str = "history.html";
/// The `kind` of a history folder's manifest.
pub const HISTORY_KIND: &str = "history";

/// `manifest.json` of a history folder: what it was made from. Its `kind` tells it apart from a
/// run folder's manifest, so that `--replace` knows segflow wrote it and glob patterns over run
/// folders skip it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryManifest {
    /// segflow's version.
    pub segflow_version: String,
    /// Always `history`.
    pub kind: String,
    /// The run folders, in as-of order, as named on the command line.
    pub runs: Vec<String>,
    /// The features whose means are shown.
    pub features: Vec<String>,
    /// Files written into the folder.
    pub outputs: Vec<String>,
}

/// Whether `folder` is a history folder segflow wrote (its manifest says `kind: history`).
pub fn is_history_folder(folder: &Path) -> bool {
    super::read_regular(&folder.join(MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|m| m.get("kind").and_then(|k| k.as_str()) == Some(HISTORY_KIND))
}

/// The run folders `arguments` name: each is a folder, or a glob pattern (`runs/q*`) when no
/// file of that name exists, for shells that did not expand it. A pattern's matches are its
/// folders in name order, without history folders and (as in a shell) without hidden ones
/// unless the pattern spells the dot; a pattern matching none is a run folder error. A folder
/// named twice counts once.
pub fn expand(arguments: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut add = |folder: PathBuf| {
        if !folders.iter().any(|known| same_folder(known, &folder)) {
            folders.push(folder);
        }
    };
    for argument in arguments {
        let text = argument.to_string_lossy();
        let is_pattern = text.contains(['*', '?', '[']);
        if argument.exists() || !is_pattern {
            add(argument.clone());
            continue;
        }
        // Like a shell: `*` does not match a leading dot, so staging folders stay out.
        let options = glob::MatchOptions {
            require_literal_leading_dot: true,
            ..glob::MatchOptions::new()
        };
        let matches = glob::glob_with(&text, options).map_err(|e| Error::Usage {
            message: format!("`{text}` is not a valid glob pattern: {e}"),
            help: Some("quote patterns as in `segflow history 'runs/saas_quarterly-*'`".into()),
        })?;
        let mut found = 0;
        for path in matches.flatten() {
            if path.is_dir() && !is_history_folder(&path) {
                found += 1;
                add(path);
            }
        }
        if found == 0 {
            return Err(Error::RunFolder {
                folder: text.into_owned(),
                message: "no run folder matches this pattern".into(),
            });
        }
    }
    Ok(folders)
}

/// Whether `a` and `b` name the same folder (or, when either does not exist, the same path).
fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The history of `runs` (any order): they are put in as-of order, refused when two runs of one
/// pipeline share an as-of date, and the customers' flows between each run and the next are
/// measured on their assignments. Shows the means of `features`; none chosen means the numeric
/// features of the latest run.
/// Queries run within `resources`.
pub async fn history(
    runs: &[Run<'_>],
    features: &[String],
    resources: &crate::engine::Resources,
) -> Result<History> {
    let summaries: Vec<RunSummary> = runs.iter().map(summary).collect();
    let order = history::chronological(&summaries).map_err(|SameAsOf { first, second }| {
        let (a, b) = (&summaries[first], &summaries[second]);
        Error::Usage {
            message: format!(
                "{} and {} are both runs of pipeline `{}` as of {}",
                a.folder, b.folder, a.pipeline, a.as_of
            ),
            help: Some(
                "a history has one run per as-of date of a pipeline: leave one of them out".into(),
            ),
        }
    })?;
    let runs: Vec<&Run<'_>> = order.iter().map(|&i| &runs[i]).collect();
    let summaries: Vec<RunSummary> = order.iter().map(|&i| summaries[i].clone()).collect();
    let (Some(latest), Some(latest_run)) = (summaries.last(), runs.last()) else {
        return Err(Error::Internal("a history of no runs".into()));
    };
    let chosen = if features.is_empty() {
        history::default_features(latest)
    } else {
        let mut known: Vec<&str> = Vec::new();
        for (name, _) in summaries.iter().flat_map(|s| &s.features) {
            if !known.contains(&name.as_str()) {
                known.push(name);
            }
        }
        let mut chosen: Vec<String> = Vec::new();
        for feature in features {
            if !known.contains(&feature.as_str()) {
                return Err(Error::Usage {
                    message: format!("--feature `{feature}` is in none of the runs"),
                    help: Some(available_help(feature, "feature", known.iter().copied())),
                });
            }
            // Means are of numbers: a text or true/false feature would show only empty cells.
            let numeric = summaries
                .iter()
                .flat_map(|s| &s.features)
                .any(|(name, data_type)| name == feature && is_numeric(data_type));
            if !numeric {
                return Err(Error::Usage {
                    message: format!(
                        "--feature `{feature}` is not a number in any of the runs, and the history shows means"
                    ),
                    help: Some(format!(
                        "choose numeric features (by default: {})",
                        history::default_features(latest).join(", ")
                    )),
                });
            }
            if !chosen.contains(feature) {
                chosen.push(feature.clone());
            }
        }
        chosen
    };
    let mut steps = Vec::new();
    for pair in runs.windows(2) {
        steps.push(
            crate::engine::compare::measure(
                &pair[0].keyed_assignments(),
                &pair[1].keyed_assignments(),
                &[],
                resources,
            )
            .await?,
        );
    }
    let mut history = history::history(
        &summaries,
        &latest_run.segments.pipeline.title,
        &steps,
        &chosen,
    );
    history.min_cell = latest_run.segments.pipeline.min_cell;
    Ok(history)
}

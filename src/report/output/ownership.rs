//! Which entries of a run or history folder segflow wrote. `--replace` deletes the old folder,
//! so it must hold nothing else: a note, a folder or a symlink the user added is theirs.

use std::collections::BTreeSet;
use std::path::Path;

use crate::pipeline::model::is_valid_name;
use crate::run_folder::history::{
    HISTORY, HISTORY_HTML, HISTORY_KIND, HISTORY_MD, HistoryManifest,
};
use crate::run_folder::impact::{IMPACT_KIND, ImpactManifest};
use crate::run_folder::{
    ASSIGNMENTS, CHARTS, COMPARISON, CRITERIA, LINT, MANIFEST, Manifest, PERSONAS, PROFILE,
    REPORT_CONTEXT, REPORT_KIND, ReportManifest, SCORING, SEGMENTS, SEGMENTS_CSV, SUPPRESSION,
    read_regular,
};

/// The charts segflow writes into `charts/`.
const CHART_NAMES: &[&str] = &["sizes", "heatmap", "matrix", "migration"];

/// Unknown entries named in a refusal; the rest are counted.
const NAMED: usize = 3;

/// What a folder segflow wrote holds: `--replace` swaps a folder only for one of its kind (a
/// folder of re-rendered reports never takes the place of a run's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// A run folder (`segflow run`).
    Run,
    /// A history folder (`segflow history`).
    History,
    /// A folder of re-rendered reports (`segflow report`).
    Report,
    /// The impact of a change (`segflow impact`).
    Impact,
}

impl std::fmt::Display for FolderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FolderKind::Run => "run",
            FolderKind::History => "history",
            FolderKind::Report => "reports",
            FolderKind::Impact => "impact",
        })
    }
}

/// The kind of folder whose segflow manifest is in `folder`, if any.
pub(super) fn kind_of(folder: &Path) -> Option<FolderKind> {
    let path = folder.join(MANIFEST);
    if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let manifest: serde_json::Value = serde_json::from_str(&read_regular(&path).ok()?).ok()?;
    match manifest.get("kind").and_then(|k| k.as_str()) {
        Some(HISTORY_KIND) => Some(FolderKind::History),
        Some(REPORT_KIND) => Some(FolderKind::Report),
        Some(IMPACT_KIND) => Some(FolderKind::Impact),
        Some(_) => None,
        None => manifest
            .get("pipeline_sha256")
            .is_some_and(|v| v.is_string())
            .then_some(FolderKind::Run),
    }
}

/// The files segflow claims in a folder.
#[derive(Debug)]
pub(super) enum Owned {
    /// The manifest's `outputs` (paths relative to the folder, `personas/a.md`).
    Listed(BTreeSet<String>),
    /// A manifest written before it listed its outputs: only segflow's own file names.
    Known,
}

/// Names every segflow version has written into a run or history folder.
const KNOWN: &[&str] = &[
    ASSIGNMENTS,
    SEGMENTS,
    SEGMENTS_CSV,
    CRITERIA,
    SCORING,
    LINT,
    COMPARISON,
    MANIFEST,
    PROFILE,
    "report.md",
    "report.html",
    SUPPRESSION,
    REPORT_CONTEXT,
    "report.pdf",
    HISTORY,
    HISTORY_MD,
    HISTORY_HTML,
];

impl Owned {
    /// What the manifest in `folder` claims, or `None` when the folder has no segflow manifest.
    pub(super) fn read(folder: &Path) -> Option<Owned> {
        // Never through a symlink (segflow writes none), nor from a FIFO or device.
        let path = folder.join(MANIFEST);
        if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
            return None;
        }
        let text = read_regular(&path).ok()?;
        if let Ok(run) = serde_json::from_str::<Manifest>(&text) {
            return Some(Owned::listed(run.outputs));
        }
        if let Ok(report) = serde_json::from_str::<ReportManifest>(&text)
            && report.kind == REPORT_KIND
        {
            return Some(Owned::listed(report.outputs));
        }
        if let Ok(history) = serde_json::from_str::<HistoryManifest>(&text)
            && history.kind == HISTORY_KIND
        {
            return Some(Owned::listed(history.outputs));
        }
        if let Ok(impact) = serde_json::from_str::<ImpactManifest>(&text)
            && impact.kind == IMPACT_KIND
        {
            return Some(Owned::listed(impact.outputs));
        }
        // Older manifests: a run's names its pipeline's hash; a history's says it is one.
        let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
        let written_by_segflow = manifest
            .get("segflow_version")
            .is_some_and(|v| v.is_string())
            && (manifest
                .get("pipeline_sha256")
                .is_some_and(|v| v.is_string())
                || manifest.get("kind").and_then(|v| v.as_str()) == Some(HISTORY_KIND));
        written_by_segflow.then_some(Owned::Known)
    }

    fn listed(outputs: Vec<String>) -> Owned {
        let mut files: BTreeSet<String> = outputs.into_iter().collect();
        // The manifest is segflow's even where an old version did not list it.
        files.insert(MANIFEST.into());
        Owned::Listed(files)
    }

    fn owns_file(&self, relative: &str) -> bool {
        match self {
            Owned::Listed(files) => files.contains(relative),
            Owned::Known => {
                KNOWN.contains(&relative)
                    || relative
                        .strip_prefix(PERSONAS)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .and_then(|file| file.strip_suffix(".md"))
                        .is_some_and(is_valid_name)
                    || relative
                        .strip_prefix(CHARTS)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .and_then(|file| file.strip_suffix(".svg"))
                        .is_some_and(|chart| CHART_NAMES.contains(&chart))
            }
        }
    }

    fn owns_folder(&self, relative: &str) -> bool {
        match self {
            Owned::Listed(files) => {
                let prefix = format!("{relative}/");
                files.iter().any(|file| file.starts_with(&prefix))
            }
            Owned::Known => relative == PERSONAS || relative == CHARTS,
        }
    }

    /// The entries below `folder` this claim does not cover (symlinks never: segflow writes
    /// none), and the folders that cannot be emptied because they are read-only.
    pub(super) fn foreign_entries(&self, folder: &Path) -> Foreign {
        let mut foreign = Foreign::default();
        self.walk(folder, "", &mut foreign);
        foreign
    }

    fn walk(&self, folder: &Path, prefix: &str, foreign: &mut Foreign) {
        let Ok(metadata) = folder.symlink_metadata() else {
            return;
        };
        if metadata.permissions().readonly() {
            foreign.read_only.push(shown(prefix));
        }
        let Ok(entries) = std::fs::read_dir(folder) else {
            foreign.unknown.push(shown(prefix));
            return;
        };
        let mut names: Vec<_> = entries.flatten().collect();
        names.sort_by_key(|entry| entry.file_name());
        for entry in names {
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                foreign
                    .unknown
                    .push(format!("{prefix}{}", entry.file_name().to_string_lossy()));
                continue;
            };
            let relative = format!("{prefix}{name}");
            let Ok(kind) = entry.file_type() else {
                foreign.unknown.push(relative);
                continue;
            };
            if kind.is_dir() && self.owns_folder(&relative) {
                self.walk(&entry.path(), &format!("{relative}/"), foreign);
            } else if kind.is_file() && (self.owns_file(&relative) || is_marker(&entry, &relative))
            {
                continue;
            } else {
                foreign.unknown.push(if kind.is_dir() {
                    format!("{relative}/")
                } else {
                    relative
                });
            }
        }
    }
}

/// Why [`Owned::remove`] stopped.
#[derive(Debug)]
pub(super) enum Removal {
    /// Entries segflow did not write appeared: they, and the manifest, are kept.
    Foreign(String),
    /// The file system refused; only segflow's files are left.
    Io(std::io::Error),
}

impl Owned {
    /// Delete `folder`, file by file: only the files this claim covers and then the folders
    /// they leave empty, the manifest last. An entry that appears after the caller's check is
    /// never deleted (no `remove_dir_all`); it stops the removal with the manifest kept, so
    /// the folder still says what segflow wrote.
    pub(super) fn remove(&self, folder: &Path) -> Result<(), Removal> {
        self.remove_below(folder, "").map_err(Removal::Io)?;
        if let Some(why) = self.foreign_entries(folder).refusal() {
            return Err(Removal::Foreign(why));
        }
        std::fs::remove_file(folder.join(MANIFEST)).map_err(Removal::Io)?;
        std::fs::remove_dir(folder).map_err(|e| match self.foreign_entries(folder).refusal() {
            Some(why) => Removal::Foreign(why),
            None => Removal::Io(e),
        })
    }

    fn remove_below(&self, folder: &Path, prefix: &str) -> std::io::Result<()> {
        for entry in std::fs::read_dir(folder)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            let relative = format!("{prefix}{name}");
            let kind = entry.file_type()?;
            if kind.is_dir() && self.owns_folder(&relative) {
                self.remove_below(&entry.path(), &format!("{relative}/"))?;
                // Fails on a folder still holding something: that is reported by the caller.
                let _ = std::fs::remove_dir(entry.path());
            } else if kind.is_file()
                && relative != MANIFEST
                && (self.owns_file(&relative) || is_marker(&entry, &relative))
            {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

/// segflow's empty staging marker, which a run killed just after its commit leaves behind.
fn is_marker(entry: &std::fs::DirEntry, relative: &str) -> bool {
    relative == super::STAGING_MARKER && entry.metadata().is_ok_and(|m| m.len() == 0)
}

/// How a folder's own entries were named: `.` for the folder itself.
fn shown(prefix: &str) -> String {
    if prefix.is_empty() {
        ".".into()
    } else {
        prefix.into()
    }
}

/// What stops a folder from being replaced.
#[derive(Debug, Default)]
pub(super) struct Foreign {
    /// Entries segflow did not write (folders end in `/`).
    pub unknown: Vec<String>,
    /// Folders without write permission.
    pub read_only: Vec<String>,
}

impl Foreign {
    /// Why the folder cannot be replaced, if it cannot.
    pub(super) fn refusal(&self) -> Option<String> {
        if !self.unknown.is_empty() {
            return Some(format!(
                "it holds {} segflow did not write: {}",
                if self.unknown.len() == 1 {
                    "an entry"
                } else {
                    "entries"
                },
                listing(&self.unknown)
            ));
        }
        if !self.read_only.is_empty() {
            return Some(format!(
                "it is read-only ({}), so --replace will not delete it",
                listing(&self.read_only)
            ));
        }
        None
    }
}

fn listing(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(NAMED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED {
        text.push_str(&format!(" and {} more", names.len() - NAMED));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_claim_covers_segflow_names_only() {
        let owned = Owned::Known;
        assert!(owned.owns_file("segments.json"));
        assert!(owned.owns_file("personas/power_users.md"));
        assert!(!owned.owns_file("personas/Mine.md"));
        assert!(!owned.owns_file("NOTES.md"));
        assert!(owned.owns_folder("personas"));
        assert!(!owned.owns_folder("mine"));
    }

    #[test]
    fn a_listed_claim_covers_its_files_and_their_folders() {
        let owned = Owned::listed(vec!["report.md".into(), "personas/a.md".into()]);
        assert!(owned.owns_file("report.md") && owned.owns_file("manifest.json"));
        assert!(owned.owns_folder("personas") && !owned.owns_file("personas/b.md"));
        assert!(!owned.owns_file("segments.json"));
    }
}

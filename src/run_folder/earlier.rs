//! Earlier runs of a pipeline found in the runs folder, as much of each as the
//! `segment-proliferation` lint needs: its as-of date and its segment ids, read from its
//! `segments.json`.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use super::{SEGMENTS, read_regular};

/// A run of the pipeline before the as-of date in force.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlierRun {
    /// The run folder.
    pub folder: String,
    /// Its as-of date.
    pub as_of: NaiveDate,
    /// Its segment ids, in rule order.
    pub segments: Vec<String>,
}

/// The part of `segments.json` read here; the rest of the document is not parsed.
#[derive(Deserialize)]
struct Header {
    pipeline: HeaderPipeline,
    as_of: NaiveDate,
    segments: Vec<HeaderSegment>,
}

#[derive(Deserialize)]
struct HeaderPipeline {
    name: String,
}

#[derive(Deserialize)]
struct HeaderSegment {
    id: String,
}

/// The runs of pipeline `name` in the folders directly inside `runs_dir` whose as-of date is
/// before `before`, oldest first. Folders that are not readable runs (history and impact folders,
/// hidden staging folders, anything else) are not runs of this pipeline and are passed over; a
/// missing `runs_dir` has none.
pub fn earlier_runs(runs_dir: &Path, name: &str, before: NaiveDate) -> Vec<EarlierRun> {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return Vec::new();
    };
    let mut runs: Vec<EarlierRun> = entries
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|entry| {
            let folder = entry.path();
            let text = read_regular(&folder.join(SEGMENTS)).ok()?;
            let header: Header = serde_json::from_str(&text).ok()?;
            (header.pipeline.name == name && header.as_of < before).then(|| EarlierRun {
                folder: folder.display().to_string(),
                as_of: header.as_of,
                segments: header.segments.into_iter().map(|s| s.id).collect(),
            })
        })
        .collect();
    runs.sort_by(|a, b| (a.as_of, &a.folder).cmp(&(b.as_of, &b.folder)));
    runs
}

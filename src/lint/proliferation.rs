//! The `segment-proliferation` lint: more segments than the last reviewed run of the pipeline had,
//! with no `review.note` saying why. It needs the run history, which the caller reads from the
//! runs folder ([`crate::run_folder::earlier`]).

use chrono::NaiveDate;

use crate::diagnostic::{Problem, codes};
use crate::pipeline::Pipeline;
use crate::run_folder::earlier::EarlierRun;

/// `segment-proliferation` against `earlier`, the pipeline's runs before the as-of date.
pub fn segment_proliferation(pipeline: &Pipeline, earlier: &[EarlierRun]) -> Option<Problem> {
    let review = &pipeline.spec.review;
    if review.note.as_deref().is_some_and(|n| !n.trim().is_empty()) {
        return None;
    }
    let reviewed = last_reviewed_run(earlier, review.last_reviewed)?;
    let segments = &pipeline.spec.segments;
    if segments.len() <= reviewed.segments.len() {
        return None;
    }
    let added: Vec<String> = segments
        .iter()
        .filter(|s| !reviewed.segments.contains(&s.id))
        .map(|s| format!("`{}`", s.id))
        .collect();
    Some(
        pipeline
            .file
            .at_key(
                codes::SEGMENT_PROLIFERATION,
                "segments",
                format!(
                    "{} segments, {} more than the {} of the last reviewed run {} (as of {}); new: {}",
                    segments.len(),
                    segments.len() - reviewed.segments.len(),
                    reviewed.segments.len(),
                    reviewed.folder,
                    reviewed.as_of,
                    added.join(", ")
                ),
            )
            .help("validate the existing segments before adding new ones; if the new ones are needed, say why in `review.note`"),
    )
}

/// The newest run on or before the last review date, or else (no review date, or every run is
/// newer) the newest run.
fn last_reviewed_run(
    earlier: &[EarlierRun],
    last_reviewed: Option<NaiveDate>,
) -> Option<&EarlierRun> {
    last_reviewed
        .and_then(|date| newest(earlier.iter().filter(|r| r.as_of <= date)))
        .or_else(|| newest(earlier.iter()))
}

fn newest<'a>(runs: impl Iterator<Item = &'a EarlierRun>) -> Option<&'a EarlierRun> {
    runs.max_by(|a, b| (a.as_of, &a.folder).cmp(&(b.as_of, &b.folder)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(as_of: &str) -> EarlierRun {
        EarlierRun {
            folder: format!("runs/p-{as_of}"),
            as_of: as_of.parse().unwrap(),
            segments: Vec::new(),
        }
    }

    #[test]
    fn the_last_reviewed_run_is_the_newest_on_or_before_the_review_date() {
        let runs = [run("2026-01-01"), run("2026-04-01"), run("2026-07-01")];
        let date = |d: &str| Some(d.parse().unwrap());
        let found = |d| last_reviewed_run(&runs, d).map(|r| r.as_of.to_string());
        assert_eq!(found(date("2026-04-01")).as_deref(), Some("2026-04-01"));
        assert_eq!(found(date("2026-06-30")).as_deref(), Some("2026-04-01"));
        // Reviewed before every run, or never: the newest run.
        assert_eq!(found(date("2025-12-01")).as_deref(), Some("2026-07-01"));
        assert_eq!(found(None).as_deref(), Some("2026-07-01"));
        assert_eq!(last_reviewed_run(&[], None), None);
    }
}

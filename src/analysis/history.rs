//! The history of many runs (quarter after quarter): each segment's size and share per run, the
//! flows of customers between consecutive runs, the mean of chosen features per segment, and each
//! criteria check's status per run. Segments are matched by id, as [`compare`]
//! matches them; each step between two runs is that comparison. Nothing here touches DataFusion.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::compare::{self, NOT_IN_NEW, NOT_IN_OLD, RunSummary};
use super::criteria::criterion_rank;
use crate::engine::compare::{RunMeasures, is_numeric};

/// Flow label of customers who are in a run but not in the run before it.
pub const NOT_IN_EARLIER: &str = "(not in earlier run)";
/// Flow label of customers who are in a run but not in the run after it.
pub const NOT_IN_LATER: &str = "(not in later run)";

/// Everything a history shows, written as `history.json`. Every per-run list is in as-of order,
/// one entry per run in [`History::runs`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    /// The latest run's pipeline name.
    pub pipeline: String,
    /// The latest run's pipeline title.
    pub title: String,
    /// The runs, in as-of order.
    pub runs: Vec<HistoryRun>,
    /// Every segment of any run: the latest run's rule order, then segments only earlier runs
    /// declare (latest first).
    pub segments: Vec<SegmentHistory>,
    /// The flows between each run and the next.
    pub steps: Vec<Step>,
    /// The features whose means are shown.
    pub features: Vec<String>,
    /// The mean of each chosen feature per segment per run.
    pub means: Vec<FeatureHistory>,
    /// The status of each criteria check per run.
    pub criteria: Vec<CheckHistory>,
    /// What could not be matched across the runs.
    pub notes: Vec<String>,
    /// The latest run's small-cell threshold: history.md and history.html mask counts under it.
    #[serde(default = "crate::analysis::history::default_min_cell")]
    pub min_cell: u64,
}

/// The threshold of histories written before they recorded one.
pub fn default_min_cell() -> u64 {
    10
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// One run of the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryRun {
    /// The run folder, as named to the user.
    pub folder: String,
    /// Pipeline name.
    pub pipeline: String,
    /// As-of date.
    pub as_of: String,
    /// Customers.
    pub customers: u64,
    /// Customers no segment rule matched.
    pub unassigned: u64,
    /// Their share of the customers.
    pub unassigned_share: f64,
    /// In history.md and history.html only: the unassigned count is masked (then 0 here).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unassigned_masked: bool,
}

/// A segment's size in one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Size {
    /// Customers.
    pub customers: u64,
    /// Share of the run's customers.
    pub share: f64,
    /// In history.md and history.html only: the size is masked (customers and share are 0).
    #[serde(default, skip_serializing_if = "is_false")]
    pub masked: bool,
}

/// One segment across the runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentHistory {
    /// Segment id.
    pub id: String,
    /// Display name, from the latest run that declares it.
    pub name: String,
    /// Size per run; null when the run's pipeline does not declare the segment (absent, which
    /// is not the same as a declared segment with 0 customers).
    pub sizes: Vec<Option<Size>>,
}

/// Customers who were in segment `from` in one run and in `to` in the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Segment id in the earlier run, `(unassigned)`, or `(not in earlier run)` for customers who
    /// appeared.
    pub from: String,
    /// Segment id in the later run, `(unassigned)`, or `(not in later run)` for customers who
    /// disappeared.
    pub to: String,
    /// Customers.
    pub customers: u64,
    /// In history.md and history.html only: the count is masked (then 0 here).
    #[serde(default, skip_serializing_if = "is_false")]
    pub masked: bool,
}

/// What happened between one run and the next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// The earlier run's as-of date.
    pub from: String,
    /// The later run's as-of date.
    pub to: String,
    /// Every non-empty flow, by the earlier run's segment order, then the later run's.
    pub flows: Vec<Flow>,
    /// Customers in both runs in the same segment.
    pub stayed: u64,
    /// Customers in both runs in a different segment (or assigned in one of them only).
    pub moved: u64,
    /// Customers only in the later run.
    pub appeared: u64,
    /// Customers only in the earlier run.
    pub disappeared: u64,
    /// In history.md and history.html only: stayed, moved, appeared and disappeared are masked
    /// (then 0 here) because one of them is small.
    #[serde(default, skip_serializing_if = "is_false")]
    pub totals_masked: bool,
}

/// A feature's mean per segment across the runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureHistory {
    /// The feature.
    pub feature: String,
    /// One row per segment, in [`History::segments`] order.
    pub segments: Vec<SegmentMeans>,
}

/// A segment's mean of one feature per run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentMeans {
    /// Segment id.
    pub segment: String,
    /// Mean per run; null when the segment is absent, has no values, or the run lacks the
    /// feature.
    pub means: Vec<Option<f64>>,
}

/// One criteria check across the runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckHistory {
    /// Criterion.
    pub criterion: String,
    /// Subject (segment, pair, all customers).
    pub subject: String,
    /// Measure.
    pub measure: String,
    /// `pass`, `warn` or `fail` per run; null when the run did not make this check.
    pub statuses: Vec<Option<String>>,
}

/// Two runs of one pipeline with the same as-of date: a history has one run per date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameAsOf {
    /// Index of the first run, as given.
    pub first: usize,
    /// Index of the second run, as given.
    pub second: usize,
}

/// The order of `runs` by as-of date, ties by folder name (then the whole path); refused when
/// two runs of the same pipeline have the same as-of date.
pub fn chronological(runs: &[RunSummary]) -> Result<Vec<usize>, SameAsOf> {
    let name = |run: &RunSummary| {
        Path::new(&run.folder)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| {
        (
            runs[i].as_of.clone(),
            name(&runs[i]),
            runs[i].folder.clone(),
        )
    });
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        if let Some(&first) = seen.get(&(run.pipeline.as_str(), run.as_of.as_str())) {
            return Err(SameAsOf { first, second: i });
        }
        seen.insert((&run.pipeline, &run.as_of), i);
    }
    Ok(order)
}

/// The features shown by default: the numeric features of the latest run, in its order.
pub fn default_features(latest: &RunSummary) -> Vec<String> {
    latest
        .features
        .iter()
        .filter(|(_, data_type)| is_numeric(data_type))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The history of `runs` (in as-of order), given what DataFusion measured between each run and
/// the next (`steps[i]` between `runs[i]` and `runs[i + 1]`), showing the means of `features`.
pub fn history(
    runs: &[RunSummary],
    title: &str,
    steps: &[RunMeasures],
    features: &[String],
) -> History {
    let segments = segment_order(runs);
    let mut notes = Vec::new();
    let segment_histories: Vec<SegmentHistory> = segments
        .iter()
        .map(|id| SegmentHistory {
            id: id.clone(),
            name: runs
                .iter()
                .rev()
                .find_map(|run| run.segments.iter().find(|s| &s.id == id))
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            sizes: runs
                .iter()
                .map(|run| {
                    run.segments.iter().find(|s| &s.id == id).map(|s| Size {
                        customers: s.customers,
                        share: s.share,
                        masked: false,
                    })
                })
                .collect(),
        })
        .collect();
    for segment in &segment_histories {
        let absent: Vec<&str> = runs
            .iter()
            .zip(&segment.sizes)
            .filter(|(_, size)| size.is_none())
            .map(|(run, _)| run.as_of.as_str())
            .collect();
        if !absent.is_empty() {
            notes.push(format!(
                "segment `{}` is absent from the runs as of {}: their pipeline does not declare it",
                segment.id,
                absent.join(", ")
            ));
        }
    }

    let mut history_steps = Vec::new();
    for (pair, measures) in runs.windows(2).zip(steps) {
        let comparison = compare::compare(&pair[0], &pair[1], measures);
        let migration = &comparison.migration;
        let relabel = |label: &str| match label {
            NOT_IN_OLD => NOT_IN_EARLIER.to_string(),
            NOT_IN_NEW => NOT_IN_LATER.to_string(),
            other => other.to_string(),
        };
        let mut flows = Vec::new();
        for (row, counts) in migration.rows.iter().zip(&migration.counts) {
            for (column, &customers) in migration.columns.iter().zip(counts) {
                if customers > 0 {
                    flows.push(Flow {
                        from: relabel(row),
                        to: relabel(column),
                        customers,
                        masked: false,
                    });
                }
            }
        }
        // Segments a run lacks are noted once for the whole history above; the step keeps what
        // else its comparison could not match (features only one of the runs has).
        notes.extend(
            comparison
                .unmatched
                .iter()
                .filter(|u| !u.starts_with("segment `"))
                .map(|u| format!("{} → {}: {u}", pair[0].as_of, pair[1].as_of)),
        );
        history_steps.push(Step {
            from: pair[0].as_of.clone(),
            to: pair[1].as_of.clone(),
            flows,
            stayed: migration.stayed,
            moved: migration.moved,
            appeared: migration.appeared,
            disappeared: migration.disappeared,
            totals_masked: false,
        });
    }

    let means = features
        .iter()
        .map(|feature| {
            let missing: Vec<&str> = runs
                .iter()
                .filter(|run| !run.features.iter().any(|(name, _)| name == feature))
                .map(|run| run.as_of.as_str())
                .collect();
            if !missing.is_empty() {
                notes.push(format!(
                    "feature `{feature}` is not in the runs as of {}",
                    missing.join(", ")
                ));
            }
            FeatureHistory {
                feature: feature.clone(),
                segments: segments
                    .iter()
                    .map(|id| SegmentMeans {
                        segment: id.clone(),
                        means: runs
                            .iter()
                            .map(|run| {
                                run.segments
                                    .iter()
                                    .find(|s| &s.id == id)?
                                    .features
                                    .iter()
                                    .find(|stats| &stats.feature == feature)?
                                    .mean
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();

    let checks: BTreeSet<&(String, String, String)> =
        runs.iter().flat_map(|run| run.checks.keys()).collect();
    let mut checks: Vec<_> = checks.into_iter().collect();
    // The method's order, as each run's report lists them; within a criterion by subject.
    checks.sort_by_key(|key| criterion_rank(&key.0));
    let criteria = checks
        .into_iter()
        .map(|key| CheckHistory {
            criterion: key.0.clone(),
            subject: key.1.clone(),
            measure: key.2.clone(),
            statuses: runs
                .iter()
                .map(|run| run.checks.get(key).cloned())
                .collect(),
        })
        .collect();

    History {
        pipeline: runs.last().map(|r| r.pipeline.clone()).unwrap_or_default(),
        title: title.to_string(),
        runs: runs
            .iter()
            .map(|run| HistoryRun {
                folder: run.folder.clone(),
                pipeline: run.pipeline.clone(),
                as_of: run.as_of.clone(),
                customers: run.customers,
                unassigned: run.unassigned,
                unassigned_share: if run.customers == 0 {
                    0.0
                } else {
                    run.unassigned as f64 / run.customers as f64
                },
                unassigned_masked: false,
            })
            .collect(),
        segments: segment_histories,
        steps: history_steps,
        features: features.to_vec(),
        means,
        criteria,
        notes,
        min_cell: default_min_cell(),
    }
}

/// Segment ids of all runs: the latest run's rule order, then those only earlier runs declare,
/// walking back from the latest.
fn segment_order(runs: &[RunSummary]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for run in runs.iter().rev() {
        for segment in &run.segments {
            if !order.contains(&segment.id) {
                order.push(segment.id.clone());
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::compare::SegmentSummary;
    use crate::engine::compare::MigrationCell;

    fn run(folder: &str, as_of: &str, segments: &[(&str, u64)]) -> RunSummary {
        let customers = segments.iter().map(|s| s.1).sum::<u64>() + 1;
        RunSummary {
            folder: folder.into(),
            pipeline: "p".into(),
            as_of: as_of.into(),
            customers,
            unassigned: 1,
            segments: segments
                .iter()
                .map(|(id, n)| SegmentSummary {
                    id: id.to_string(),
                    name: id.to_uppercase(),
                    customers: *n,
                    share: *n as f64 / customers as f64,
                    features: Vec::new(),
                })
                .collect(),
            features: vec![("x".into(), "Int64".into()), ("d".into(), "Date32".into())],
            checks: BTreeMap::from([(
                ("substantial".into(), "a".into(), "share".into()),
                "pass".into(),
            )]),
        }
    }

    fn cell(old: Option<&str>, new: Option<&str>, present: (bool, bool), n: u64) -> MigrationCell {
        MigrationCell {
            old: old.map(str::to_string),
            new: new.map(str::to_string),
            in_old: present.0,
            in_new: present.1,
            customers: n,
        }
    }

    #[test]
    fn runs_are_ordered_by_as_of_then_folder_name_and_one_date_per_pipeline() {
        let runs = [
            run("x/q3", "2026-07-01", &[]),
            run("x/q1", "2026-01-01", &[]),
            run("y/q2", "2026-04-01", &[]),
        ];
        assert_eq!(chronological(&runs), Ok(vec![1, 2, 0]));
        let mut other = run("a/other", "2026-04-01", &[]);
        other.pipeline = "other".into();
        let runs = [run("y/q2", "2026-04-01", &[]), other.clone()];
        assert_eq!(chronological(&runs), Ok(vec![1, 0]), "ties by folder name");
        let runs = [
            run("a", "2026-04-01", &[]),
            other,
            run("b", "2026-04-01", &[]),
        ];
        assert_eq!(
            chronological(&runs),
            Err(SameAsOf {
                first: 0,
                second: 2
            })
        );
    }

    #[test]
    fn segments_are_matched_by_id_and_absent_is_not_zero() {
        let runs = [
            run("q1", "2026-01-01", &[("a", 3), ("gone", 2)]),
            run("q2", "2026-04-01", &[("a", 4), ("new", 0)]),
        ];
        let steps = [RunMeasures {
            migration: vec![
                cell(Some("a"), Some("a"), (true, true), 3),
                cell(Some("gone"), Some("a"), (true, true), 1),
                cell(Some("gone"), None, (true, false), 1),
                cell(None, None, (true, true), 1),
                cell(None, None, (false, true), 1),
            ],
            bins: Vec::new(),
            unbinned: Vec::new(),
        }];
        let history = history(&runs, "T", &steps, &default_features(&runs[1]));
        let ids: Vec<&str> = history.segments.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "new", "gone"]);
        assert_eq!(history.segments[1].sizes[0], None);
        assert_eq!(history.segments[1].sizes[1].map(|s| s.customers), Some(0));
        assert_eq!(history.segments[2].sizes[1], None);
        assert_eq!(history.features, ["x"]);
        let step = &history.steps[0];
        assert_eq!(
            (step.stayed, step.moved, step.appeared, step.disappeared),
            (4, 1, 1, 1)
        );
        let flows: Vec<(&str, &str, u64)> = step
            .flows
            .iter()
            .map(|f| (f.from.as_str(), f.to.as_str(), f.customers))
            .collect();
        assert_eq!(
            flows,
            [
                ("a", "a", 3),
                ("gone", "a", 1),
                ("gone", NOT_IN_LATER, 1),
                ("(unassigned)", "(unassigned)", 1),
                (NOT_IN_EARLIER, "(unassigned)", 1),
            ]
        );
        assert_eq!(
            history.criteria[0].statuses,
            vec![Some("pass".to_string()); 2]
        );
        assert!(
            history
                .notes
                .iter()
                .any(|n| n.starts_with("segment `new` is absent from the runs as of 2026-01-01")),
            "{:?}",
            history.notes
        );
    }

    #[test]
    fn criteria_come_in_the_methods_order_not_alphabetically() {
        let mut early = run("q1", "2026-01-01", &[("a", 3)]);
        let mut late = run("q2", "2026-04-01", &[("a", 4)]);
        for (criterion, subject) in [
            ("stable", "a"),
            ("actionable", "a"),
            ("identifiable", "(all)"),
            ("accessible", "b"),
            ("accessible", "a"),
        ] {
            let key = (criterion.to_string(), subject.to_string(), "m".to_string());
            early.checks.insert(key.clone(), "pass".into());
            late.checks.insert(key, "warn".into());
        }
        let step = RunMeasures {
            migration: Vec::new(),
            bins: Vec::new(),
            unbinned: Vec::new(),
        };
        let runs = [early, late];
        let history = history(&runs, "T", &[step], &default_features(&runs[1]));
        let order: Vec<(&str, &str)> = history
            .criteria
            .iter()
            .map(|c| (c.criterion.as_str(), c.subject.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("identifiable", "(all)"),
                ("substantial", "a"),
                ("accessible", "a"),
                ("accessible", "b"),
                ("actionable", "a"),
                ("stable", "a"),
            ]
        );
    }
}

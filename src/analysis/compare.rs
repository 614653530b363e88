//! Comparing two runs (last quarter's and this quarter's): segment size changes, the migration
//! matrix, per-segment feature drift with the population stability index, criteria whose status
//! changed, and segments that appeared or vanished. Segments are matched by id.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::FeatureStats;
use crate::engine::compare::{FeatureBins, RunMeasures};
use crate::pipeline::model::UNASSIGNED;

/// One side of a comparison: what a run folder says about a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run folder, as named to the user.
    pub folder: String,
    /// Pipeline name.
    pub pipeline: String,
    /// As-of date.
    pub as_of: String,
    /// Customers.
    pub customers: u64,
    /// Unassigned customers.
    pub unassigned: u64,
    /// Segments in rule order.
    pub segments: Vec<SegmentSummary>,
    /// Features with their Arrow types.
    pub features: Vec<(String, String)>,
    /// The status of every criteria check, by (criterion, subject, measure).
    pub checks: BTreeMap<(String, String, String), String>,
}

/// A segment of a run.
#[derive(Debug, Clone)]
pub struct SegmentSummary {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Customers.
    pub customers: u64,
    /// Share of customers.
    pub share: f64,
    /// Feature statistics.
    pub features: Vec<FeatureStats>,
}

/// A run as the comparison names it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunRef {
    /// The run folder.
    pub folder: String,
    /// Pipeline name.
    pub pipeline: String,
    /// As-of date.
    pub as_of: String,
    /// Customers.
    pub customers: u64,
}

/// How one segment's size changed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SizeChange {
    /// Segment id.
    pub segment: String,
    /// Display name (the new run's when it has the segment).
    pub name: String,
    /// Customers in the old run (null: no such segment then).
    pub old_customers: Option<u64>,
    /// Customers in the new run (null: no such segment now).
    pub new_customers: Option<u64>,
    /// Share in the old run.
    pub old_share: Option<f64>,
    /// Share in the new run.
    pub new_share: Option<f64>,
    /// Change of share in percentage points.
    pub share_change_points: Option<f64>,
}

/// Customers moving from old segments (rows) to new segments (columns).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Migration {
    /// Row labels: old segment ids, then `(unassigned)` and `(not in old run)`.
    pub rows: Vec<String>,
    /// Column labels: new segment ids, then `(unassigned)` and `(not in new run)`.
    pub columns: Vec<String>,
    /// Customers per row and column.
    pub counts: Vec<Vec<u64>>,
    /// Customers in both runs in the same segment.
    pub stayed: u64,
    /// Customers in both runs in a different segment (or assigned in one run only).
    pub moved: u64,
    /// Customers only in the new run.
    pub appeared: u64,
    /// Customers only in the old run.
    pub disappeared: u64,
}

/// How a feature moved within a segment.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FeatureDrift {
    /// Segment id.
    pub segment: String,
    /// Feature.
    pub feature: String,
    /// Mean in the old run.
    pub old_mean: Option<f64>,
    /// Mean in the new run.
    pub new_mean: Option<f64>,
    /// New minus old mean.
    pub mean_change: Option<f64>,
    /// Median in the old run.
    pub old_median: Option<f64>,
    /// Median in the new run.
    pub new_median: Option<f64>,
    /// New minus old median.
    pub median_change: Option<f64>,
    /// Population stability index over the old run's decile bins (numbers) or the values of
    /// either run (true/false, text); null without values in either run.
    pub psi: Option<f64>,
}

/// A criterion check whose status differs between the runs.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CriterionChange {
    /// Criterion.
    pub criterion: String,
    /// Subject (segment, pair).
    pub subject: String,
    /// Measure.
    pub measure: String,
    /// Status before (null: not checked then).
    pub old_status: Option<String>,
    /// Status now (null: not checked now).
    pub new_status: Option<String>,
}

/// Everything that changed between two runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The earlier run.
    pub old: RunRef,
    /// The later run.
    pub new: RunRef,
    /// Size change of every segment in either run (new run's order, then vanished ones).
    pub sizes: Vec<SizeChange>,
    /// Segment ids only in the new run.
    pub appeared_segments: Vec<String>,
    /// Segment ids only in the old run.
    pub vanished_segments: Vec<String>,
    /// Features only in one of the runs, and other things that could not be matched.
    pub unmatched: Vec<String>,
    /// The migration matrix.
    pub migration: Migration,
    /// Drift of every numeric feature in every segment present in both runs.
    pub drift: Vec<FeatureDrift>,
    /// Criteria checks whose status changed.
    pub criteria_changes: Vec<CriterionChange>,
}

/// Migration label of customers only in the new run.
pub const NOT_IN_OLD: &str = "(not in old run)";
/// Migration label of customers only in the old run.
pub const NOT_IN_NEW: &str = "(not in new run)";

/// Smallest proportion used in the PSI, so empty bins do not divide by zero.
const PSI_FLOOR: f64 = 1e-4;

/// Population stability index Σ (new% − old%) · ln(new% / old%) over matching bins.
pub fn psi(old: &[u64], new: &[u64]) -> Option<f64> {
    let (old_total, new_total) = (old.iter().sum::<u64>(), new.iter().sum::<u64>());
    if old_total == 0 || new_total == 0 {
        return None;
    }
    Some(
        old.iter()
            .zip(new)
            .map(|(&o, &n)| {
                let p = (o as f64 / old_total as f64).max(PSI_FLOOR);
                let q = (n as f64 / new_total as f64).max(PSI_FLOOR);
                (q - p) * (q / p).ln()
            })
            .sum(),
    )
}

fn run_ref(summary: &RunSummary) -> RunRef {
    RunRef {
        folder: summary.folder.clone(),
        pipeline: summary.pipeline.clone(),
        as_of: summary.as_of.clone(),
        customers: summary.customers,
    }
}

fn feature_psi(bins: &[FeatureBins], feature: &str, segment: &str) -> Option<f64> {
    let bins = bins.iter().find(|b| b.feature == feature)?;
    let width = if bins.values.is_empty() {
        bins.edges.len() + 1
    } else {
        bins.values.len()
    };
    let empty = vec![0; width];
    psi(
        bins.old.get(segment).unwrap_or(&empty),
        bins.new.get(segment).unwrap_or(&empty),
    )
}

/// Compare two runs, given what DataFusion measured about their assignments.
pub fn compare(old: &RunSummary, new: &RunSummary, measures: &RunMeasures) -> Comparison {
    let old_ids: Vec<&str> = old.segments.iter().map(|s| s.id.as_str()).collect();
    let new_ids: Vec<&str> = new.segments.iter().map(|s| s.id.as_str()).collect();
    let appeared_segments: Vec<String> = new_ids
        .iter()
        .filter(|id| !old_ids.contains(id))
        .map(|s| s.to_string())
        .collect();
    let vanished_segments: Vec<String> = old_ids
        .iter()
        .filter(|id| !new_ids.contains(id))
        .map(|s| s.to_string())
        .collect();

    let mut sizes = Vec::new();
    for segment in &new.segments {
        let before = old.segments.iter().find(|s| s.id == segment.id);
        sizes.push(SizeChange {
            segment: segment.id.clone(),
            name: segment.name.clone(),
            old_customers: before.map(|s| s.customers),
            new_customers: Some(segment.customers),
            old_share: before.map(|s| s.share),
            new_share: Some(segment.share),
            share_change_points: before.map(|s| (segment.share - s.share) * 100.0),
        });
    }
    for segment in old
        .segments
        .iter()
        .filter(|s| !new_ids.contains(&s.id.as_str()))
    {
        sizes.push(SizeChange {
            segment: segment.id.clone(),
            name: segment.name.clone(),
            old_customers: Some(segment.customers),
            new_customers: None,
            old_share: Some(segment.share),
            new_share: None,
            share_change_points: None,
        });
    }

    let label = |segment: &Option<String>, present: bool, absent: &str| match (present, segment) {
        (false, _) => absent.to_string(),
        (true, Some(id)) => id.clone(),
        (true, None) => UNASSIGNED.to_string(),
    };
    let rows: Vec<String> = old_ids
        .iter()
        .map(|s| s.to_string())
        .chain([UNASSIGNED.into(), NOT_IN_OLD.into()])
        .collect();
    let columns: Vec<String> = new_ids
        .iter()
        .map(|s| s.to_string())
        .chain([UNASSIGNED.into(), NOT_IN_NEW.into()])
        .collect();
    let mut counts = vec![vec![0u64; columns.len()]; rows.len()];
    let (mut stayed, mut moved, mut appeared, mut disappeared) = (0, 0, 0, 0);
    let mut unmatched = Vec::new();
    for cell in &measures.migration {
        let row_label = label(&cell.old, cell.in_old, NOT_IN_OLD);
        let column_label = label(&cell.new, cell.in_new, NOT_IN_NEW);
        match (rows.iter().position(|r| *r == row_label), columns.iter().position(|c| *c == column_label)) {
            (Some(r), Some(c)) => counts[r][c] += cell.customers,
            _ => unmatched.push(format!("{} customers moved from `{row_label}` to `{column_label}`, which the runs do not declare", cell.customers)),
        }
        match (cell.in_old, cell.in_new) {
            (true, true) if cell.old == cell.new => stayed += cell.customers,
            (true, true) => moved += cell.customers,
            (false, true) => appeared += cell.customers,
            (true, false) => disappeared += cell.customers,
            (false, false) => {}
        }
    }

    let old_features: BTreeSet<&str> = old.features.iter().map(|f| f.0.as_str()).collect();
    let new_features: BTreeSet<&str> = new.features.iter().map(|f| f.0.as_str()).collect();
    unmatched.extend(measures.unbinned.iter().cloned());
    for feature in new_features.difference(&old_features) {
        unmatched.push(format!("feature `{feature}` is only in the new run"));
    }
    for feature in old_features.difference(&new_features) {
        unmatched.push(format!("feature `{feature}` is only in the old run"));
    }
    for id in &appeared_segments {
        unmatched.push(format!("segment `{id}` is only in the new run: its customers' old segments are in the migration matrix"));
    }
    for id in &vanished_segments {
        unmatched.push(format!("segment `{id}` is only in the old run: its customers' new segments are in the migration matrix"));
    }

    let mut drift = Vec::new();
    for segment in &new.segments {
        let Some(before) = old.segments.iter().find(|s| s.id == segment.id) else {
            continue;
        };
        for stats in &segment.features {
            let Some(old_stats) = before.features.iter().find(|s| s.feature == stats.feature)
            else {
                continue;
            };
            let psi = feature_psi(&measures.bins, &stats.feature, &segment.id);
            if stats.mean.is_none() && old_stats.mean.is_none() && psi.is_none() {
                continue;
            }
            let change = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
            drift.push(FeatureDrift {
                segment: segment.id.clone(),
                feature: stats.feature.clone(),
                old_mean: old_stats.mean,
                new_mean: stats.mean,
                mean_change: change(old_stats.mean, stats.mean),
                old_median: old_stats.median,
                new_median: stats.median,
                median_change: change(old_stats.median, stats.median),
                psi,
            });
        }
    }

    Comparison {
        old: run_ref(old),
        new: run_ref(new),
        sizes,
        appeared_segments,
        vanished_segments,
        unmatched,
        migration: Migration {
            rows,
            columns,
            counts,
            stayed,
            moved,
            appeared,
            disappeared,
        },
        drift,
        criteria_changes: criteria_changes(&old.checks, &new.checks),
    }
}

fn criteria_changes(
    old: &BTreeMap<(String, String, String), String>,
    new: &BTreeMap<(String, String, String), String>,
) -> Vec<CriterionChange> {
    let keys: BTreeSet<&(String, String, String)> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| CriterionChange {
            criterion: key.0.clone(),
            subject: key.1.clone(),
            measure: key.2.clone(),
            old_status: old.get(key).cloned(),
            new_status: new.get(key).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_distributions_and_matches_a_hand_computation() {
        assert_eq!(psi(&[10, 20, 30], &[20, 40, 60]), Some(0.0));
        // old 50/50, new 25/75: (0.25-0.5)·ln(0.5) + (0.75-0.5)·ln(1.5) = 0.25·(ln 2 + ln 1.5).
        let value = psi(&[50, 50], &[25, 75]).unwrap();
        let hand = 0.25 * (2f64.ln() + 1.5f64.ln());
        assert!((value - hand).abs() < 1e-12, "{value} vs {hand}");
        assert_eq!(psi(&[0, 0], &[1, 1]), None);
    }
}

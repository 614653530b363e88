//! Pure functions over a run's measured results: validation criteria, prioritisation scoring,
//! and segment profiles for personas. Nothing here touches DataFusion.

pub mod association;
pub mod compare;
pub mod criteria;
pub mod effect;
pub mod history;
pub mod impact;
pub mod lifetime_value;
pub mod scoring;
pub mod segment_tests;
pub mod stable;

use serde::{Deserialize, Serialize};

use crate::engine::RunResults;
use crate::engine::profiles::{CategoryMix, GroupCounts};
use crate::pipeline::Pipeline;
use association::{Association, associate};
use effect::{Moments, cohens_d};

pub use criteria::{CriteriaReport, Status};
pub use scoring::ScoringReport;

/// A feature on which a segment differs from all other customers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Distinction {
    /// The feature.
    pub feature: String,
    /// Mean in the segment.
    pub segment_mean: f64,
    /// Mean over all other customers.
    pub rest_mean: f64,
    /// Cohen's d of the segment against all other customers.
    pub effect: f64,
}

/// What distinguishes one segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentProfile {
    /// Segment id.
    pub segment: String,
    /// Numeric features by decreasing absolute effect size (at most five).
    pub distinguishing: Vec<Distinction>,
    /// Category features, in declaration order: the segment's most common values against
    /// everyone's, and Cramér's V of the segment against the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryProfile>,
}

/// A segment's mix of one category feature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryProfile {
    /// The feature.
    pub feature: String,
    /// The segment's most common values (at most five), most customers first.
    pub top: Vec<ValueShare>,
    /// Customers of the segment with any other value.
    pub other: u64,
    /// Their share of the segment.
    pub other_share: f64,
    /// The segment against everyone else (null when undefined).
    pub against_rest: Option<Association>,
}

/// One value's customers in a segment, beside its share over all customers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueShare {
    /// The value as text; null for customers without one.
    pub value: Option<String>,
    /// Customers of the segment with it.
    pub customers: u64,
    /// Their share of the segment.
    pub share: f64,
    /// The value's share of all customers.
    pub overall_share: f64,
}

/// Everything analysed about a run.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Validation criteria.
    pub criteria: CriteriaReport,
    /// Prioritisation, when declared.
    pub scoring: Option<ScoringReport>,
    /// Per segment, in rule order, its most distinguishing features.
    pub profiles: Vec<SegmentProfile>,
}

/// How many distinguishing features a profile lists.
const DISTINGUISHING: usize = 5;

/// How many values of a category feature a profile lists.
const TOP_VALUES: usize = 5;

/// The mixes of every category feature in the group `group` (a segment id, or `icp`), against
/// everyone; empty for a group nobody is in.
pub fn category_profiles(mixes: &[CategoryMix], group: &str) -> Vec<CategoryProfile> {
    mixes
        .iter()
        .filter_map(|mix| {
            let counts = mix
                .segments
                .iter()
                .find(|g| g.segment.as_deref() == Some(group))?;
            category_profile(mix, counts)
        })
        .collect()
}

/// The mix of one category feature in `group`, against everyone in `mix`; `None` for an empty
/// group.
fn category_profile(mix: &CategoryMix, group: &GroupCounts) -> Option<CategoryProfile> {
    let customers = group.total();
    if customers == 0 {
        return None;
    }
    let everyone: u64 = mix.overall.iter().sum::<u64>() + mix.overall_other;
    let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let mut held: Vec<ValueShare> = mix
        .values
        .iter()
        .zip(&group.counts)
        .zip(&mix.overall)
        .filter(|((_, n), _)| **n > 0)
        .map(|((value, n), all)| ValueShare {
            value: value.clone(),
            customers: *n,
            share: share(*n, customers),
            overall_share: share(*all, everyone),
        })
        .collect();
    // Most customers first; a stable sort keeps the mix's own order (numeric categories in
    // ascending order) among equals.
    held.sort_by_key(|v| std::cmp::Reverse(v.customers));
    let top: Vec<ValueShare> = held.into_iter().take(TOP_VALUES).collect();
    let other = customers - top.iter().map(|v| v.customers).sum::<u64>();
    let mut all = mix.overall.clone();
    all.push(mix.overall_other);
    let cells = group.cells();
    Some(CategoryProfile {
        feature: mix.feature.clone(),
        other,
        other_share: share(other, customers),
        against_rest: associate(&[cells.clone(), association::rest(&all, &cells)]),
        top,
    })
}

/// Analyse a run.
pub fn analyse(pipeline: &Pipeline, results: &RunResults) -> Analysis {
    let profiles = results
        .segments
        .iter()
        .map(|segment| {
            let mut distinguishing: Vec<Distinction> = segment
                .features
                .iter()
                .filter_map(|stats| {
                    let part = Moments::of(stats)?;
                    let all = results
                        .overall
                        .iter()
                        .find(|o| o.feature == stats.feature)
                        .and_then(Moments::of)?;
                    let rest = Moments::rest(all, part)?;
                    Some(Distinction {
                        feature: stats.feature.clone(),
                        segment_mean: part.mean,
                        rest_mean: rest.mean,
                        effect: cohens_d(part, rest)?,
                    })
                })
                .collect();
            distinguishing.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
            distinguishing.truncate(DISTINGUISHING);
            SegmentProfile {
                segment: segment.id.clone(),
                distinguishing,
                categories: category_profiles(&results.categories, &segment.id),
            }
        })
        .collect();
    Analysis {
        criteria: criteria::evaluate_all(
            pipeline.spec.criteria.as_ref(),
            &pipeline.spec.segments,
            results,
        ),
        scoring: pipeline
            .spec
            .scoring
            .as_ref()
            .map(|spec| scoring::score(spec, &pipeline.spec.segments, results)),
        profiles,
    }
}

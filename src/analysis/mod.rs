//! Pure functions over a run's measured results: validation criteria, prioritisation scoring,
//! and segment profiles for personas. Nothing here touches DataFusion.

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
use crate::pipeline::Pipeline;
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

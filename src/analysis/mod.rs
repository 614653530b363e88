//! Pure functions over a run's measured results: validation criteria, prioritisation scoring,
//! and segment profiles for personas. Nothing here touches DataFusion.

pub mod compare;
pub mod criteria;
pub mod effect;
pub mod scoring;
pub mod segment_tests;

use serde::Serialize;

use crate::engine::RunResults;
use crate::pipeline::Pipeline;
use effect::{Moments, cohens_d};

pub use criteria::{CriteriaReport, Status};
pub use scoring::ScoringReport;

/// A feature on which a segment differs from all other customers.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

/// Lints that need a run's results: empty segments and personas without data.
pub fn runtime_lints(pipeline: &Pipeline, results: &RunResults) -> Vec<crate::error::Problem> {
    let origin = &pipeline.origin;
    let mut lints = Vec::new();
    for (i, segment) in results.segments.iter().enumerate() {
        if segment.customers == 0 {
            lints.push(
                origin
                    .at("empty-segment", &format!("segments[{i}].id"), format!("segment `{}` has no customers in this run", segment.id))
                    .help("its rule never matched: earlier rules may cover it, or its thresholds exclude everyone")
                    .warning(),
            );
        }
    }
    for (i, persona) in pipeline.spec.personas.iter().enumerate() {
        if results
            .segments
            .iter()
            .any(|s| s.id == persona.segment && s.customers == 0)
        {
            lints.push(
                origin
                    .at("persona-without-data", &format!("personas[{i}].segment"), format!("persona `{}` describes segment `{}`, which has no customers in this run", persona.name, persona.segment))
                    .help("a persona needs customers behind it; revisit the persona or the segment")
                    .warning(),
            );
        }
    }
    lints
}

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
    pub fn of(problem: &crate::error::Problem) -> Self {
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
        criteria: criteria::evaluate_all(pipeline.spec.criteria.as_ref(), results),
        scoring: pipeline
            .spec
            .scoring
            .as_ref()
            .map(|spec| scoring::score(spec, &pipeline.spec.segments, results)),
        profiles,
    }
}

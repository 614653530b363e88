//! The five validation criteria of seed 001 (identifiable, substantial, accessible,
//! differentiable, actionable), evaluated against a run's measured results.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::association::{Association, associate};
use super::effect::{Moments, cohens_d};
use crate::engine::profiles::CategoryMix;
use crate::engine::{RunResults, SegmentResult};
use crate::pipeline::model::{
    AccessibleSpec, ActionableSpec, CriteriaSpec, DifferentiableSpec, IdentifiableSpec,
    SegmentSpec, SubstantialSpec, Threshold,
};

/// Outcome of a check, ordered by severity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Within all levels.
    Pass,
    /// Beyond the warn level.
    Warn,
    /// Beyond the error level.
    Fail,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        })
    }
}

/// One measured value against its threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// What was checked: a segment id, a pair `a ~ b`, or `all customers`.
    pub subject: String,
    /// The measure, e.g. `share of customers`.
    pub measure: String,
    /// The measured value, when it is a number.
    pub value: Option<f64>,
    /// The levels, e.g. `warn below 0.05, fail below 0.02`.
    pub threshold: String,
    /// Pass, warn or fail.
    pub status: Status,
    /// More about this result.
    pub detail: Option<String>,
    /// The levels as numbers, for reports to format like the value (absent for checks whose
    /// threshold is not a number, and in criteria.json files written before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<Level>,
}

/// One level of a threshold: `fail below 0.02`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Level {
    /// `warn below`, `fail below`, `warn above` or `fail above`.
    pub kind: String,
    /// The level, in the unit of the measured value.
    pub value: f64,
}

/// One criterion's checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CriterionResult {
    /// `identifiable`, `substantial`, `accessible`, `differentiable` or `actionable`.
    pub criterion: Cow<'static, str>,
    /// The question the criterion answers.
    pub question: Cow<'static, str>,
    /// The worst status of its checks.
    pub status: Status,
    /// Every check.
    pub checks: Vec<Check>,
}

/// Effect sizes between two segments.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairDifference {
    /// First segment id.
    pub a: String,
    /// Second segment id.
    pub b: String,
    /// Largest absolute Cohen's d over the declared features, when defined.
    pub largest: Option<f64>,
    /// The feature with the largest effect.
    pub feature: Option<String>,
    /// Cohen's d per declared feature (a minus b), null when undefined.
    pub by_feature: Vec<(String, Option<f64>)>,
}

/// Chi-square tests and Cramér's V between two segments.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairAssociation {
    /// First segment id.
    pub a: String,
    /// Second segment id.
    pub b: String,
    /// Largest Cramér's V over the declared category features, when defined.
    pub largest: Option<f64>,
    /// The feature with the largest V.
    pub feature: Option<String>,
    /// The test per declared category feature, null when undefined (a value held by nobody in
    /// either segment is left out; one value left leaves nothing to test).
    pub by_feature: Vec<(String, Option<Association>)>,
}

/// All criteria of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CriteriaReport {
    /// The worst status of all checks (pass when none are declared).
    pub status: Status,
    /// Each declared criterion.
    pub criteria: Vec<CriterionResult>,
    /// The pairwise effect sizes behind the differentiable criterion.
    pub differentiation: Vec<PairDifference>,
    /// The pairwise chi-square tests behind the differentiable criterion's category features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category_differentiation: Vec<PairAssociation>,
}

impl CriteriaReport {
    /// Add a criterion judged after the others (stable, which needs the comparison), keeping
    /// the overall status the worst of all.
    pub fn add(&mut self, criterion: CriterionResult) {
        self.status = self.status.max(criterion.status);
        self.criteria.push(criterion);
    }
}

/// Evaluate a threshold on `value`.
pub fn evaluate(threshold: &Threshold, value: f64) -> Status {
    let below = |level: Option<f64>| level.is_some_and(|l| value < l);
    let above = |level: Option<f64>| level.is_some_and(|l| value > l);
    if below(threshold.error_if_below) || above(threshold.error_if_above) {
        Status::Fail
    } else if below(threshold.warn_if_below) || above(threshold.warn_if_above) {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// The levels of a threshold in words.
pub fn describe(threshold: &Threshold) -> String {
    let parts: Vec<String> = levels(threshold)
        .iter()
        .map(|level| format!("{} {}", level.kind, level.value))
        .collect();
    parts.join(", ")
}

/// The levels of a threshold that are set, in the order `describe` names them.
pub fn levels(threshold: &Threshold) -> Vec<Level> {
    [
        ("warn below", threshold.warn_if_below),
        ("fail below", threshold.error_if_below),
        ("warn above", threshold.warn_if_above),
        ("fail above", threshold.error_if_above),
    ]
    .iter()
    .filter_map(|(kind, level)| {
        level.map(|value| Level {
            kind: kind.to_string(),
            value,
        })
    })
    .collect()
}

fn threshold_check(subject: &str, measure: &str, value: f64, threshold: &Threshold) -> Check {
    Check {
        subject: subject.to_string(),
        measure: measure.to_string(),
        value: Some(value),
        threshold: describe(threshold),
        status: evaluate(threshold, value),
        detail: None,
        levels: levels(threshold),
    }
}

/// The criteria in the order reports list them: the five of the method, then `stable`.
pub const CRITERIA_ORDER: [&str; 6] = [
    "identifiable",
    "substantial",
    "accessible",
    "differentiable",
    "actionable",
    "stable",
];

/// Where a criterion comes in [`CRITERIA_ORDER`] (an unknown name, from a newer segflow, last).
pub fn criterion_rank(criterion: &str) -> usize {
    CRITERIA_ORDER
        .iter()
        .position(|known| *known == criterion)
        .unwrap_or(CRITERIA_ORDER.len())
}

/// A criterion's result: its checks and their worst status.
pub(super) fn criterion(
    criterion: &'static str,
    question: &'static str,
    checks: Vec<Check>,
) -> CriterionResult {
    CriterionResult {
        criterion: Cow::Borrowed(criterion),
        question: Cow::Borrowed(question),
        status: checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass),
        checks,
    }
}

fn feature_moments(stats: &[crate::engine::FeatureStats], feature: &str) -> Option<Moments> {
    stats
        .iter()
        .find(|s| s.feature == feature)
        .and_then(Moments::of)
}

/// Evaluate the declared criteria on a run's results; `segments` are the declarations (owners,
/// actions) that *actionable* judges.
pub fn evaluate_all(
    spec: Option<&CriteriaSpec>,
    segments: &[SegmentSpec],
    results: &RunResults,
) -> CriteriaReport {
    let Some(spec) = spec else {
        return CriteriaReport {
            status: Status::Pass,
            criteria: Vec::new(),
            differentiation: Vec::new(),
            category_differentiation: Vec::new(),
        };
    };
    let mut criteria = Vec::new();
    if let Some(identifiable) = &spec.identifiable {
        criteria.push(identifiable_checks(identifiable, results));
    }
    if let Some(substantial) = &spec.substantial {
        criteria.push(substantial_checks(substantial, results));
    }
    if let Some(accessible) = &spec.accessible {
        criteria.push(accessible_checks(accessible, results));
    }
    let mut differentiation = Vec::new();
    let mut category_differentiation = Vec::new();
    if let Some(differentiable) = &spec.differentiable {
        let (checks, pairs, associations) = differentiable_checks(differentiable, results);
        criteria.push(checks);
        differentiation = pairs;
        category_differentiation = associations;
    }
    if let Some(actionable) = &spec.actionable {
        criteria.push(actionable_checks(actionable, segments));
    }
    CriteriaReport {
        status: criteria
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass),
        criteria,
        differentiation,
        category_differentiation,
    }
}

/// Identifiable: the share of customers no rule matches.
fn identifiable_checks(identifiable: &IdentifiableSpec, results: &RunResults) -> CriterionResult {
    let mut unassigned = threshold_check(
        "all customers",
        "share unassigned",
        results.unassigned_share,
        &identifiable.unassigned_share,
    );
    unassigned.detail = Some(format!(
        "{} of {} customers match no rule",
        results.unassigned, results.customers
    ));
    criterion("identifiable", "Can you find them?", vec![unassigned])
}

/// Substantial: each segment's share, size and share of a value feature's total.
fn substantial_checks(substantial: &SubstantialSpec, results: &RunResults) -> CriterionResult {
    let mut checks = Vec::new();
    for segment in &results.segments {
        if let Some(t) = &substantial.share {
            checks.push(threshold_check(
                &segment.id,
                "share of customers",
                segment.share,
                t,
            ));
        }
        if let Some(t) = &substantial.customers {
            checks.push(threshold_check(
                &segment.id,
                "customers",
                segment.customers as f64,
                t,
            ));
        }
        if let Some(value) = &substantial.value_share {
            let total = results
                .overall
                .iter()
                .find(|s| s.feature == value.feature)
                .and_then(|s| s.sum);
            let part = segment
                .features
                .iter()
                .find(|s| s.feature == value.feature)
                .and_then(|s| s.sum);
            let measure = format!("share of total {}", value.feature);
            checks.push(match (part, total) {
                (_, Some(total)) if total != 0.0 => {
                    let mut c = threshold_check(
                        &segment.id,
                        &measure,
                        part.unwrap_or(0.0) / total,
                        &value.threshold,
                    );
                    c.detail = Some(format!("{:.2} of {total:.2}", part.unwrap_or(0.0)));
                    c
                }
                _ => Check {
                    levels: Vec::new(),
                    subject: segment.id.clone(),
                    measure,
                    value: None,
                    threshold: describe(&value.threshold),
                    status: Status::Fail,
                    detail: Some(format!("`{}` has no numeric total to share", value.feature)),
                },
            });
        }
        for (channel, minimum) in &substantial.channels {
            let customers = segment.customers;
            let big_enough = customers >= *minimum;
            checks.push(Check {
                subject: segment.id.clone(),
                measure: format!("audience for {channel}"),
                value: Some(customers as f64),
                threshold: format!("warn below {minimum}"),
                status: if big_enough {
                    Status::Pass
                } else {
                    Status::Warn
                },
                detail: (!big_enough).then(|| {
                    format!("too small for {channel}: {customers} customers, it needs {minimum}")
                }),
                levels: vec![Level {
                    kind: "warn below".into(),
                    value: *minimum as f64,
                }],
            });
        }
    }
    criterion("substantial", "Big enough to matter?", checks)
}

/// Accessible: the share of each segment that the `reachable` condition matches.
fn accessible_checks(accessible: &AccessibleSpec, results: &RunResults) -> CriterionResult {
    let checks = results
        .segments
        .iter()
        .map(|segment| match (segment.reachable, segment.customers) {
            (Some(reachable), n) if n > 0 => {
                let mut c = threshold_check(
                    &segment.id,
                    "share reachable",
                    reachable as f64 / n as f64,
                    &accessible.share,
                );
                c.detail = Some(format!(
                    "{reachable} of {n} match `{}`",
                    accessible.reachable
                ));
                c
            }
            _ => Check {
                levels: Vec::new(),
                subject: segment.id.clone(),
                measure: "share reachable".into(),
                value: None,
                threshold: describe(&accessible.share),
                status: Status::Warn,
                detail: Some("the segment is empty".into()),
            },
        })
        .collect();
    criterion("accessible", "Can you reach them?", checks)
}

/// Differentiable: between every pair of populated segments, the largest Cohen's d over the
/// numeric features and the largest Cramér's V over the category features, each judged by its
/// own levels.
fn differentiable_checks(
    differentiable: &DifferentiableSpec,
    results: &RunResults,
) -> (CriterionResult, Vec<PairDifference>, Vec<PairAssociation>) {
    let mut differentiation = Vec::new();
    let mut associations = Vec::new();
    let populated: Vec<&SegmentResult> = results
        .segments
        .iter()
        .filter(|s| s.customers > 0)
        .collect();
    let mut checks = Vec::new();
    for (i, a) in populated.iter().enumerate() {
        for b in &populated[i + 1..] {
            let subject = format!("{} ~ {}", a.id, b.id);
            if let Some(effect_size) = &differentiable.effect_size {
                let pair = pair_difference(&differentiable.features, a, b);
                let best = pair.largest.zip(pair.feature.as_deref());
                checks.push(largest_check(
                    &subject,
                    "largest |Cohen's d|",
                    best,
                    effect_size,
                ));
                differentiation.push(pair);
            }
            if let Some(cramers_v) = &differentiable.cramers_v {
                let pair = pair_association(&differentiable.categories, &results.categories, a, b);
                let best = pair.largest.zip(pair.feature.as_deref());
                checks.push(largest_check(
                    &subject,
                    "largest Cramér's V",
                    best,
                    cramers_v,
                ));
                associations.push(pair);
            }
        }
    }
    (
        criterion("differentiable", "Distinct from the others?", checks),
        differentiation,
        associations,
    )
}

/// Cohen's d of segments `a` and `b` on each of `features`.
fn pair_difference(features: &[String], a: &SegmentResult, b: &SegmentResult) -> PairDifference {
    let by_feature: Vec<(String, Option<f64>)> = features
        .iter()
        .map(|f| {
            let d = feature_moments(&a.features, f)
                .zip(feature_moments(&b.features, f))
                .and_then(|(x, y)| cohens_d(x, y));
            (f.clone(), d)
        })
        .collect();
    let best = by_feature
        .iter()
        .filter_map(|(f, d)| d.map(|d| (f, d.abs())))
        .max_by(|x, y| x.1.total_cmp(&y.1));
    PairDifference {
        a: a.id.clone(),
        b: b.id.clone(),
        largest: best.map(|(_, d)| d),
        feature: best.map(|(f, _)| f.clone()),
        by_feature,
    }
}

/// The chi-square test and Cramér's V of segments `a` and `b` on each of `categories`.
fn pair_association(
    categories: &[String],
    mixes: &[CategoryMix],
    a: &SegmentResult,
    b: &SegmentResult,
) -> PairAssociation {
    let by_feature: Vec<(String, Option<Association>)> = categories
        .iter()
        .map(|feature| {
            let counts = |id: &str| {
                mixes
                    .iter()
                    .find(|m| &m.feature == feature)
                    .and_then(|m| m.segments.iter().find(|g| g.segment.as_deref() == Some(id)))
                    .map(|g| g.cells())
            };
            let association = counts(&a.id)
                .zip(counts(&b.id))
                .and_then(|(x, y)| associate(&[x, y]));
            (feature.clone(), association)
        })
        .collect();
    let best = by_feature
        .iter()
        .filter_map(|(f, v)| v.map(|v| (f, v.cramers_v)))
        .max_by(|x, y| x.1.total_cmp(&y.1));
    PairAssociation {
        a: a.id.clone(),
        b: b.id.clone(),
        largest: best.map(|(_, v)| v),
        feature: best.map(|(f, _)| f.clone()),
        by_feature,
    }
}

/// The check of a pair's largest effect (and the feature it is on) against `threshold`.
fn largest_check(
    subject: &str,
    measure: &str,
    best: Option<(f64, &str)>,
    threshold: &Threshold,
) -> Check {
    match best {
        Some((value, feature)) => {
            let mut check = threshold_check(subject, measure, value, threshold);
            check.detail = Some(format!("on `{feature}`"));
            check
        }
        None => Check {
            levels: Vec::new(),
            subject: subject.to_string(),
            measure: measure.into(),
            value: None,
            threshold: describe(threshold),
            status: Status::Fail,
            detail: Some("no declared feature varies in these segments".into()),
        },
    }
}

/// Actionable: every segment has an owner and actions, or a reason for being negative.
fn actionable_checks(actionable: &ActionableSpec, segments: &[SegmentSpec]) -> CriterionResult {
    let mut checks = Vec::new();
    for segment in segments {
        let mut missing = Vec::new();
        if actionable.require_owner && segment.owner.is_none() {
            missing.push("an owner");
        }
        if segment.negative {
            if segment
                .negative_reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                missing.push("a `negative_reason` (it is marked negative)");
            }
        } else if actionable.require_action && segment.actions.is_empty() {
            missing.push("an action");
        }
        checks.push(Check {
            levels: Vec::new(),
            subject: segment.id.clone(),
            measure: "owner and action declared".into(),
            value: None,
            threshold: "required".into(),
            status: if missing.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            detail: Some(if missing.is_empty() {
                match (&segment.owner, segment.negative) {
                    (_, true) => format!(
                        "negative on purpose: {}",
                        segment.negative_reason.clone().unwrap_or_default()
                    ),
                    (Some(owner), false) => format!("{owner}: {}", segment.actions.join("; ")),
                    (None, false) => segment.actions.join("; "),
                }
            } else {
                format!("missing {}", missing.join(" and "))
            }),
        });
    }
    criterion("actionable", "Can you serve them differently?", checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_pass_warn_and_fail() {
        let minimum = Threshold {
            warn_if_below: Some(0.1),
            error_if_below: Some(0.05),
            ..Default::default()
        };
        assert_eq!(evaluate(&minimum, 0.2), Status::Pass);
        assert_eq!(evaluate(&minimum, 0.1), Status::Pass);
        assert_eq!(evaluate(&minimum, 0.07), Status::Warn);
        assert_eq!(evaluate(&minimum, 0.01), Status::Fail);
        let maximum = Threshold {
            warn_if_above: Some(0.02),
            error_if_above: Some(0.05),
            ..Default::default()
        };
        assert_eq!(evaluate(&maximum, 0.0), Status::Pass);
        assert_eq!(evaluate(&maximum, 0.03), Status::Warn);
        assert_eq!(evaluate(&maximum, 0.06), Status::Fail);
        assert_eq!(describe(&maximum), "warn above 0.02, fail above 0.05");
    }
}

//! The stable criterion: drift gates judging a run against the earlier run it was compared
//! with (`--compare-to`): each segment's largest feature PSI, and the share of customers who
//! changed segment.

use super::compare::Comparison;
use super::criteria::{Check, CriterionResult, Status, criterion, describe, evaluate};
use crate::pipeline::model::StableSpec;

/// The question the stable criterion answers.
const QUESTION: &str = "Stable over time? Judged against the earlier run given with --compare-to.";

/// Judge `comparison` (none without `--compare-to`) by the levels of `spec`.
pub fn evaluate_stability(spec: &StableSpec, comparison: Option<&Comparison>) -> CriterionResult {
    let Some(comparison) = comparison else {
        return result(vec![Check {
            levels: Vec::new(),
            subject: "all customers".into(),
            measure: "comparison with an earlier run".into(),
            value: None,
            threshold: "needs --compare-to".into(),
            status: Status::Pass,
            detail: Some("not judged: no earlier run was given with --compare-to".into()),
        }]);
    };
    let mut checks = Vec::new();
    if let Some(levels) = &spec.psi {
        let judged = |feature: &str| {
            spec.features
                .as_ref()
                .is_none_or(|judged| judged.iter().any(|f| f == feature))
        };
        let mut segments: Vec<&str> = Vec::new();
        for drift in &comparison.drift {
            if !segments.contains(&drift.segment.as_str()) {
                segments.push(&drift.segment);
            }
        }
        for segment in segments {
            let mut measured: Vec<(&str, f64)> = comparison
                .drift
                .iter()
                .filter(|d| d.segment == segment && judged(&d.feature))
                .filter_map(|d| Some((d.feature.as_str(), d.psi?)))
                .collect();
            measured.sort_by(|a, b| b.1.total_cmp(&a.1));
            let Some(&(feature, largest)) = measured.first() else {
                continue;
            };
            let beyond: Vec<String> = measured
                .iter()
                .filter(|(_, psi)| evaluate(levels, *psi) != Status::Pass)
                .map(|(feature, psi)| format!("{feature} ({psi:.3})"))
                .collect();
            let detail = if beyond.is_empty() {
                format!("largest: {feature}")
            } else {
                format!("beyond a level: {}", beyond.join(", "))
            };
            checks.push(Check {
                levels: Vec::new(),
                subject: segment.to_string(),
                measure: "largest feature PSI".into(),
                value: Some(largest),
                threshold: describe(levels),
                status: evaluate(levels, largest),
                detail: Some(detail),
            });
        }
    }
    if spec.psi.is_some() && checks.is_empty() {
        // A gate that measured nothing must not read as a pass.
        checks.push(Check {
 levels: Vec::new(),
            subject: "all customers".into(),
            measure: "largest feature PSI".into(),
            value: None,
            threshold: "needs a feature with a PSI".into(),
            status: Status::Warn,
            detail: Some(
                "not measured: no judged feature has a PSI in a segment of both runs (numbers, true/false, or text with at most 50 values)"
                    .into(),
            ),
        });
    }
    if let Some(levels) = &spec.migration {
        let migration = &comparison.migration;
        let both = migration.stayed + migration.moved;
        let share = if both == 0 {
            0.0
        } else {
            migration.moved as f64 / both as f64
        };
        checks.push(Check {
            levels: Vec::new(),
            subject: "all customers".into(),
            measure: "share of customers who changed segment".into(),
            value: Some(share),
            threshold: describe(levels),
            status: evaluate(levels, share),
            detail: Some(format!(
                "{} of {both} customers in both runs changed segment (since {})",
                migration.moved, comparison.old.as_of
            )),
        });
    }
    result(checks)
}

fn result(checks: Vec<Check>) -> CriterionResult {
    criterion("stable", QUESTION, checks)
}

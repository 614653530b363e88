//! Checks of the segmentation-method sections: validation criteria thresholds, the weighted
//! prioritisation matrix, personas and the 2x2 matrix. Like `check`, every problem is collected
//! with its location.

use std::collections::HashSet;

use super::references::feature_condition;
use crate::diagnostic::{PipelineFile, Problem, available_help, codes};
use crate::pipeline::model::{
    CriteriaSpec, DifferentiableSpec, MatrixSpec, PipelineSpec, ScaleMethod, Split, Threshold,
    UNASSIGNED, is_valid_name,
};

/// Most random weight draws of the stability analysis (documented in the README).
const MAX_DRAWS: u32 = 1_000_000;

/// Most points a weight may move in the stability analysis: a whole weight.
const MAX_SHIFT: f64 = 100.0;

/// Tolerance for weights summing to 100.
const WEIGHT_TOLERANCE: f64 = 1e-6;

/// Check the method sections of `spec`, appending problems.
pub fn check_sections(spec: &PipelineSpec, file: &PipelineFile, problems: &mut Vec<Problem>) {
    let features: Vec<&str> = spec.features.iter().map(|f| f.name.as_str()).collect();
    if let Some(criteria) = &spec.criteria {
        check_criteria(criteria, file, &features, problems);
    }
    check_scoring(spec, file, &features, problems);
    check_personas(spec, file, problems);
    check_allowed_lints(spec, file, problems);
    check_tests(spec, file, &features, problems);
    if let Some(matrix) = &spec.matrix {
        check_matrix(matrix, file, &features, problems);
    }
    check_economics(spec, file, &features, problems);
}

/// A problem when `name`, at node `path`, is not one of `features`.
fn feature_ref(
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
    path: &str,
    name: &str,
) {
    if !features.contains(&name) {
        problems.push(
            file.at(
                codes::UNKNOWN_FEATURE,
                path,
                format!("unknown feature `{name}`"),
            )
            .help(available_help(name, "feature", features.iter().copied())),
        );
    }
}

/// The differentiable criterion: Cohen's d over numeric features, Cramér's V over categories, or
/// both; each list comes with its levels.
fn check_differentiable(
    differentiable: &DifferentiableSpec,
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
) {
    let path = "criteria.differentiable";
    if differentiable.features.is_empty() && differentiable.categories.is_empty() {
        problems.push(
            file.at(codes::EMPTY_LIST, path, "no features to compare segments on")
                .help("list numeric `features` (compared with Cohen's d) or `categories` (compared with Cramér's V) that should tell segments apart"),
        );
    }
    let measures = [
        (
            "features",
            &differentiable.features,
            "effect_size",
            &differentiable.effect_size,
            "effect_size: { warn_if_below: 0.5 }",
        ),
        (
            "categories",
            &differentiable.categories,
            "cramers_v",
            &differentiable.cramers_v,
            "cramers_v: { warn_if_below: 0.3 }",
        ),
    ];
    for (list, names, levels, threshold_spec, example) in measures {
        for (i, name) in names.iter().enumerate() {
            feature_ref(
                file,
                features,
                problems,
                &format!("{path}.{list}[{i}]"),
                name,
            );
        }
        match threshold_spec {
            Some(spec) => threshold(file, &format!("{path}.{levels}"), spec, false, problems),
            None if !names.is_empty() => problems.push(
                file.at(
                    codes::THRESHOLD_EMPTY,
                    &format!("{path}.{list}"),
                    format!("`{list}` are listed without the `{levels}` levels to judge them by"),
                )
                .help(format!("add `{example}`")),
            ),
            None => {}
        }
    }
}

/// Value or cost features for concentration, and the ideal customer profile.
fn check_economics(
    spec: &PipelineSpec,
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
) {
    let mut seen = HashSet::new();
    for (i, name) in spec.concentration.iter().enumerate() {
        let path = format!("concentration[{i}]");
        feature_ref(file, features, problems, &path, name);
        if !seen.insert(name) {
            problems.push(file.at(
                codes::DUPLICATE_NAME,
                &path,
                format!("feature `{name}` is listed twice"),
            ));
        }
    }
    let Some(icp) = &spec.icp else { return };
    match (&icp.segment, &icp.when) {
        (Some(segment), None) => {
            let ids: Vec<&str> = spec.segments.iter().map(|s| s.id.as_str()).collect();
            if !ids.contains(&segment.as_str()) {
                problems.push(
                    file.at(
                        codes::UNKNOWN_SEGMENT,
                        "icp.segment",
                        format!("unknown segment `{segment}`"),
                    )
                    .help(available_help(segment, "segment", ids.iter().copied())),
                );
            }
        }
        (None, Some(when)) => {
            feature_condition(file, "icp.when", when, "`icp.when`", features, problems);
        }
        _ => problems.push(
            file.at(
                codes::ICP_TARGET,
                "icp",
                "the ideal customer profile needs exactly one of `segment` and `when`",
            )
            .help("name the target segment (`segment: power_users`) or give a condition (`when: \"seats >= 20\"`)"),
        ),
    }
}

/// The validation criteria: thresholds, and the features they name.
fn check_criteria(
    criteria: &CriteriaSpec,
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
) {
    if let Some(identifiable) = &criteria.identifiable {
        threshold(
            file,
            "criteria.identifiable.unassigned_share",
            &identifiable.unassigned_share,
            true,
            problems,
        );
    }
    if let Some(substantial) = &criteria.substantial {
        if let Some(share) = &substantial.share {
            threshold(file, "criteria.substantial.share", share, true, problems);
        }
        if let Some(customers) = &substantial.customers {
            threshold(
                file,
                "criteria.substantial.customers",
                customers,
                false,
                problems,
            );
        }
        if let Some(value) = &substantial.value_share {
            feature_ref(
                file,
                features,
                problems,
                "criteria.substantial.value_share.feature",
                &value.feature,
            );
            threshold(
                file,
                "criteria.substantial.value_share.threshold",
                &value.threshold,
                true,
                problems,
            );
        }
    }
    if let Some(accessible) = &criteria.accessible {
        feature_condition(
            file,
            "criteria.accessible.reachable",
            &accessible.reachable,
            "`reachable`",
            features,
            problems,
        );
        threshold(
            file,
            "criteria.accessible.share",
            &accessible.share,
            true,
            problems,
        );
    }
    if let Some(differentiable) = &criteria.differentiable {
        check_differentiable(differentiable, file, features, problems);
    }
    if let Some(stable) = &criteria.stable {
        if stable.psi.is_none() && stable.migration.is_none() {
            problems.push(
                file.at(
                    codes::THRESHOLD_EMPTY,
                    "criteria.stable",
                    "the stable criterion gives no levels",
                )
                .help("give `psi: { warn_if_above: 0.1, error_if_above: 0.25 }`, `migration: { warn_if_above: 0.3 }` or both"),
            );
        }
        if let Some(psi) = &stable.psi {
            threshold(file, "criteria.stable.psi", psi, false, problems);
        }
        if let Some(migration) = &stable.migration {
            threshold(file, "criteria.stable.migration", migration, true, problems);
        }
        if stable.features.as_ref().is_some_and(Vec::is_empty) {
            problems.push(
                file.at(
                    codes::EMPTY_LIST,
                    "criteria.stable.features",
                    "an empty list judges no feature's drift",
                )
                .help("list the features whose PSI is judged, or leave `features` out to judge every feature"),
            );
        }
        for (i, name) in stable.features.iter().flatten().enumerate() {
            feature_ref(
                file,
                features,
                problems,
                &format!("criteria.stable.features[{i}]"),
                name,
            );
        }
    }
}

/// The prioritisation matrix: weights, derived factors, hand scores, stability.
fn check_scoring(
    spec: &PipelineSpec,
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
) {
    if let Some(scoring) = &spec.scoring {
        let sum: f64 = scoring.factors.iter().map(|f| f.weight).sum();
        if sum.is_nan() || (sum - 100.0).abs() > WEIGHT_TOLERANCE {
            let listed: Vec<String> = scoring
                .factors
                .iter()
                .map(|f| format!("{} {}", f.id, f.weight))
                .collect();
            problems.push(
                file.at_key(
                    codes::WEIGHTS_SUM,
                    "scoring.factors",
                    format!("factor weights sum to {sum}, not 100"),
                )
                .help(format!(
                    "weights are percentages: {} = {sum}; adjust them to total 100",
                    listed.join(" + ")
                )),
            );
        }
        let mut ids = HashSet::new();
        for (i, factor) in scoring.factors.iter().enumerate() {
            let path = format!("scoring.factors[{i}]");
            if !is_valid_name(&factor.id) {
                problems.push(file.at(
                    codes::INVALID_NAME,
                    &format!("{path}.id"),
                    format!("invalid factor id `{}`", factor.id),
                ));
            }
            if !ids.insert(factor.id.as_str()) {
                problems.push(file.at(
                    codes::DUPLICATE_NAME,
                    &format!("{path}.id"),
                    format!("factor `{}` is declared twice", factor.id),
                ));
            }
            if !factor.weight.is_finite() || factor.weight < 0.0 {
                problems.push(file.at(
                    codes::INVALID_WEIGHT,
                    &format!("{path}.weight"),
                    format!(
                        "factor `{}` has weight {}: weights are finite, non-negative numbers",
                        factor.id, factor.weight
                    ),
                ));
            }
            match &factor.derived {
                Some(derived) => {
                    use crate::pipeline::model::Metric;
                    if let Metric::Mean(f) | Metric::Median(f) | Metric::Sum(f) = &derived.metric {
                        feature_ref(
                            file,
                            features,
                            problems,
                            &format!("{path}.derived.metric"),
                            f,
                        );
                    }
                    if let ScaleMethod::Breakpoints(points) = &derived.method
                        && (points.is_empty()
                            || points.iter().any(|p| !p.is_finite())
                            || points.windows(2).any(|w| w[0] >= w[1]))
                    {
                        problems.push(
                            file.at(
                                codes::INVALID_BREAKPOINTS,
                                &format!("{path}.derived.method"),
                                "breakpoints must be a non-empty, strictly ascending list",
                            )
                            .help("e.g. `breakpoints: [10, 20, 50, 100]`"),
                        );
                    }
                }
                None => {
                    for (s, segment) in spec.segments.iter().enumerate() {
                        if !segment.scores.contains_key(&factor.id) {
                            problems.push(
                                file
                                    .at(codes::MISSING_SCORE, &format!("segments[{s}].id"), format!("segment `{}` has no score for factor `{}`", segment.id, factor.id))
                                    .help(format!("add `scores: {{ {}: {{ score: 1-10, note: ... }} }}` to the segment, or derive the factor from data with `derived:`", factor.id)),
                            );
                        }
                    }
                }
            }
        }
        for (s, segment) in spec.segments.iter().enumerate() {
            for (factor, given) in &segment.scores {
                let path = format!("segments[{s}].scores.{factor}");
                if !ids.contains(factor.as_str()) {
                    problems.push(
                        file.at_key(
                            codes::UNKNOWN_FACTOR,
                            &path,
                            format!("segment `{}` scores unknown factor `{factor}`", segment.id),
                        )
                        .help(available_help(
                            factor,
                            "factor",
                            scoring.factors.iter().map(|f| f.id.as_str()),
                        )),
                    );
                } else if scoring
                    .factors
                    .iter()
                    .any(|f| &f.id == factor && f.derived.is_some())
                {
                    problems.push(file.at_key(codes::DERIVED_FACTOR, &path, format!("factor `{factor}` is derived from data; segment `{}` cannot also score it by hand", segment.id)).help("remove the hand score, or remove `derived:` from the factor"));
                }
                if !(1.0..=10.0).contains(&given.score) {
                    problems.push(file.at(
                        codes::SCORE_RANGE,
                        &format!("{path}.score"),
                        format!("score {} is outside 1 to 10", given.score),
                    ));
                }
            }
        }
        if let Some(stability) = &scoring.stability
            && !(1..=MAX_DRAWS).contains(&stability.draws)
        {
            problems.push(file.at(
                codes::INVALID_STABILITY,
                "scoring.stability.draws",
                format!(
                    "{} draws: the stability analysis takes 1 to {MAX_DRAWS}",
                    stability.draws
                ),
            ));
        }
        if let Some(stability) = &scoring.stability
            && !(0.0..=MAX_SHIFT).contains(&stability.max_shift)
        {
            problems.push(file.at(
                codes::INVALID_STABILITY,
                "scoring.stability.max_shift",
                format!(
                    "max_shift {}: each weight moves by 0 to {MAX_SHIFT} points",
                    stability.max_shift
                ),
            ));
        }
    } else {
        for (s, segment) in spec.segments.iter().enumerate() {
            if !segment.scores.is_empty() {
                problems.push(
                    file.at_key(
                        codes::UNKNOWN_FACTOR,
                        &format!("segments[{s}].scores"),
                        format!(
                            "segment `{}` has scores but the pipeline declares no `scoring`",
                            segment.id
                        ),
                    )
                    .help("declare `scoring: { factors: [...] }` or remove the scores"),
                );
            }
        }
    }
}

/// Personas: each names an existing segment, at most one per segment.
fn check_personas(spec: &PipelineSpec, file: &PipelineFile, problems: &mut Vec<Problem>) {
    let segment_ids: Vec<&str> = spec.segments.iter().map(|s| s.id.as_str()).collect();
    let mut with_persona = HashSet::new();
    for (i, persona) in spec.personas.iter().enumerate() {
        let path = format!("personas[{i}].segment");
        if !segment_ids.contains(&persona.segment.as_str()) {
            problems.push(
                file
                    .at(codes::PERSONA_WITHOUT_SEGMENT, &path, format!("persona `{}` describes segment `{}`, which does not exist", persona.name, persona.segment))
                    .help(format!("a persona must stand for a segment in the data, not for a wish (persona theater); {}", available_help(&persona.segment, "segment", segment_ids.iter().copied()))),
            );
        } else if !with_persona.insert(persona.segment.as_str()) {
            problems.push(file.at(
                codes::DUPLICATE_NAME,
                &path,
                format!("segment `{}` has more than one persona", persona.segment),
            ));
        }
    }
}

/// `review.allow`: each key is a lint code and each reason says something.
fn check_allowed_lints(spec: &PipelineSpec, file: &PipelineFile, problems: &mut Vec<Problem>) {
    // `database-unreachable` warns about the machine `validate` runs on, not the pipeline.
    let lints = || {
        codes::ALL
            .iter()
            .filter(|c| {
                c.severity == codes::Severity::Warning && c.name != codes::DATABASE_UNREACHABLE.name
            })
            .map(|c| c.name)
    };
    for (code, reason) in &spec.review.allow {
        let path = format!("review.allow.{code}");
        if !lints().any(|name| name == code) {
            problems.push(
                file.at_key(
                    codes::UNKNOWN_LINT,
                    &path,
                    format!("`{code}` is not a lint code"),
                )
                .help(available_help(code, "lint", lints())),
            );
        } else if reason.trim().is_empty() {
            problems.push(
                file.at(
                    codes::UNKNOWN_LINT,
                    &path,
                    format!("`{code}` is allowed without a reason"),
                )
                .help("say why this lint does not apply to this pipeline"),
            );
        }
    }
}

/// Segment tests: their sources, expected segments and features exist.
fn check_tests(
    spec: &PipelineSpec,
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
) {
    let segment_ids: Vec<&str> = spec.segments.iter().map(|s| s.id.as_str()).collect();
    for (t, test) in spec.tests.iter().enumerate() {
        for source in test.sources.keys() {
            if !spec.sources.contains_key(source) {
                problems.push(
                    file.at_key(
                        codes::UNKNOWN_SOURCE,
                        &format!("tests[{t}].sources.{source}"),
                        format!(
                            "test `{}` gives rows for unknown source `{source}`",
                            test.name
                        ),
                    )
                    .help(available_help(
                        source,
                        "source",
                        spec.sources.keys().map(String::as_str),
                    )),
                );
            }
        }
        for (e, expectation) in test.expect.iter().enumerate() {
            let path = format!("tests[{t}].expect[{e}]");
            if expectation.segment != UNASSIGNED
                && !segment_ids.contains(&expectation.segment.as_str())
            {
                problems.push(
                    file.at(
                        codes::UNKNOWN_SEGMENT,
                        &format!("{path}.segment"),
                        format!(
                            "test `{}` expects unknown segment `{}`",
                            test.name, expectation.segment
                        ),
                    )
                    .help(format!(
                        "{}; `(unassigned)` expects no segment",
                        available_help(
                            &expectation.segment,
                            "segment",
                            segment_ids.iter().copied()
                        )
                    )),
                );
            }
            for feature in expectation.features.keys() {
                feature_ref(
                    file,
                    features,
                    problems,
                    &format!("{path}.features.{feature}"),
                    feature,
                );
            }
        }
    }
}

/// The 2x2 matrix: its features exist and quantile splits lie in (0, 1).
fn check_matrix(
    matrix: &MatrixSpec,
    file: &PipelineFile,
    features: &[&str],
    problems: &mut Vec<Problem>,
) {
    for (axis, spec) in [("value", &matrix.value), ("engagement", &matrix.engagement)] {
        feature_ref(
            file,
            features,
            problems,
            &format!("matrix.{axis}.feature"),
            &spec.feature,
        );
        if let Split::Value(value) = spec.split
            && !value.is_finite()
        {
            problems.push(file.at(
                codes::THRESHOLD_RANGE,
                &format!("matrix.{axis}.split"),
                format!("split value {value} is not a finite number"),
            ));
        }
        if let Split::Quantile(q) = spec.split
            && !(q > 0.0 && q < 1.0)
        {
            problems.push(file.at(
                codes::THRESHOLD_RANGE,
                &format!("matrix.{axis}.split"),
                format!("quantile {q} is not between 0 and 1"),
            ));
        }
    }
}

/// A threshold needs a level, shares lie in [0, 1], and errors are at least as strict as warnings.
fn threshold(
    file: &PipelineFile,
    path: &str,
    t: &Threshold,
    share: bool,
    problems: &mut Vec<Problem>,
) {
    let levels = [
        t.warn_if_below,
        t.error_if_below,
        t.warn_if_above,
        t.error_if_above,
    ];
    if levels.iter().all(Option::is_none) {
        problems.push(file.at(codes::THRESHOLD_EMPTY, path, "threshold has no level").help("give `warn_if_below`/`error_if_below` for a minimum or `warn_if_above`/`error_if_above` for a maximum"));
    }
    for level in levels.into_iter().flatten() {
        if !level.is_finite() || share && !(0.0..=1.0).contains(&level) || level < 0.0 {
            let range = if share {
                "a share between 0 and 1"
            } else {
                "0 or more"
            };
            let problem = if level.is_finite() {
                format!("threshold {level} is out of range: it must be {range}")
            } else {
                format!("threshold {level} is not a finite number: it must be {range}")
            };
            problems.push(
                file.at(codes::THRESHOLD_RANGE, path, problem)
                    .help(if share {
                        "shares are fractions: 5% is 0.05"
                    } else {
                        "use a non-negative number"
                    }),
            );
        }
    }
    if let (Some(warn), Some(error)) = (t.warn_if_below, t.error_if_below)
        && error > warn
    {
        problems.push(file.at(codes::THRESHOLD_ORDER, path, format!("error_if_below {error} is above warn_if_below {warn}")).help("the error level must be at least as strict as the warning: error_if_below <= warn_if_below"));
    }
    if let (Some(warn), Some(error)) = (t.warn_if_above, t.error_if_above)
        && error < warn
    {
        problems.push(file.at(codes::THRESHOLD_ORDER, path, format!("error_if_above {error} is below warn_if_above {warn}")).help("the error level must be at least as strict as the warning: error_if_above >= warn_if_above"));
    }
}

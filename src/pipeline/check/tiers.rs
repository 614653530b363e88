//! Named buckets: a quantile's `labels`, and the `tiers` shorthand, which is desugared here into
//! the quantile it stands for so that later stages know only quantiles.

use crate::diagnostic::{PipelineFile, Problem, codes};
use crate::pipeline::model::{ColumnType, DEFAULT_TIER_LABELS, FeatureSpec, QuantileSpec, Ties};

/// The quantile a feature declares, under `quantile` or as `tiers`, with the YAML key it is
/// written under (for locating problems).
pub(super) fn declared_quantile(feature: &FeatureSpec) -> Option<(QuantileSpec, &'static str)> {
    if let Some(quantile) = &feature.quantile {
        return Some((quantile.clone(), "quantile"));
    }
    let tiers = feature.tiers.as_ref()?;
    let labels = tiers.labels.clone().unwrap_or_else(|| {
        DEFAULT_TIER_LABELS
            .iter()
            .map(|label| label.to_string())
            .collect()
    });
    let equal_counts = tiers.cuts.is_none();
    Some((
        QuantileSpec {
            of: tiers.of.clone(),
            buckets: equal_counts.then_some(labels.len() as u32),
            // Customers with the same value belong in the same tier.
            ties: if equal_counts {
                Ties::Together
            } else {
                Ties::ByKey
            },
            cuts: tiers.cuts.clone(),
            descending: tiers.descending,
            labels: Some(labels),
        },
        "tiers",
    ))
}

/// The labels of `quantile` (written at `at`, e.g. `features[3].tiers`): one per bucket, each
/// named, none twice.
pub(super) fn check_labels(
    feature: &str,
    quantile: &QuantileSpec,
    at: &str,
    file: &PipelineFile,
    problems: &mut Vec<Problem>,
) {
    let Some(labels) = &quantile.labels else {
        return;
    };
    let path = format!("{at}.labels");
    let buckets = match (&quantile.buckets, &quantile.cuts) {
        (Some(buckets), None) => *buckets as usize,
        (None, Some(cuts)) => cuts.len() + 1,
        // Neither or both: the quantile's own check reports it.
        _ => return,
    };
    if labels.len() != buckets {
        let (noun, cause) = match quantile.cuts {
            Some(_) => (
                "cut points",
                format!("its {} cut points make {buckets} buckets", buckets - 1),
            ),
            None => ("buckets", format!("it has {buckets} buckets")),
        };
        problems.push(
            file.at(
                codes::INVALID_QUANTILE,
                &path,
                format!(
                    "feature `{feature}` names {} buckets, but {cause}",
                    labels.len()
                ),
            )
            .help(format!(
                "give one label per bucket, lowest first, e.g. `labels: [low, middle, high]`, or change the {noun}"
            )),
        );
    }
    if labels.len() < 2 && quantile.cuts.is_none() {
        problems.push(
            file.at(
                codes::INVALID_QUANTILE,
                &path,
                format!("feature `{feature}` needs at least two labels"),
            )
            .help("tiers split customers into at least two buckets, e.g. `labels: [low, high]`"),
        );
    }
    for (i, label) in labels.iter().enumerate() {
        if label.trim().is_empty() {
            problems.push(
                file.at(
                    codes::INVALID_QUANTILE,
                    &format!("{path}[{i}]"),
                    format!("label {} of feature `{feature}` is empty", i + 1),
                )
                .help("name every bucket, e.g. `low`, `middle`, `high`"),
            );
        } else if labels[..i].contains(label) {
            problems.push(
                file.at(
                    codes::INVALID_QUANTILE,
                    &format!("{path}[{i}]"),
                    format!("feature `{feature}` names two buckets `{label}`"),
                )
                .help("give every bucket its own label, or fewer buckets"),
            );
        }
    }
}

/// A feature with labelled buckets is text: a declared `type` (at `path.type`) must say so.
pub(super) fn check_label_type(
    feature: &FeatureSpec,
    quantile: &QuantileSpec,
    path: &str,
    file: &PipelineFile,
    problems: &mut Vec<Problem>,
) {
    let Some(declared) = feature.column_type else {
        return;
    };
    if quantile.labels.is_none() || declared == ColumnType::String {
        return;
    }
    problems.push(
        file.at(
            codes::INVALID_QUANTILE,
            &format!("{path}.type"),
            format!(
                "feature `{}` names its buckets, so it holds text, but declares another `type`",
                feature.name
            ),
        )
        .help("remove `type`, or write `type: string`; without labels the buckets are numbers"),
    );
}

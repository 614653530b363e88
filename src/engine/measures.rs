//! Measures the segmentation method needs beyond per-segment statistics, computed over the
//! written assignments: reachable customers per segment, the cut points quantile features used,
//! the 2x2 value x engagement matrix, and the overlap between segment rules.

use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::stats::query_rows;
use crate::error::{Error, Result};
use crate::pipeline::model::{AxisSpec, Split};
use crate::pipeline::sql::ident;
use crate::pipeline::validated::Bucketing;
use crate::pipeline::{FeatureDefinition, Pipeline};

/// The value range one bucket of a quantile feature covers.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BucketRange {
    /// Bucket number (1 = lowest).
    pub bucket: i64,
    /// The bucket's name, for a quantile with `labels` (or `tiers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Customers in the bucket.
    pub customers: u64,
    /// Smallest value of the bucketed feature in the bucket.
    pub min: serde_json::Value,
    /// Largest value of the bucketed feature in the bucket.
    pub max: serde_json::Value,
}

/// The cut points a quantile feature actually used.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuantileCuts {
    /// The quantile feature.
    pub feature: String,
    /// The feature it buckets.
    pub of: String,
    /// Buckets in order; customers without a value are not in any.
    pub buckets: Vec<BucketRange>,
    /// How tie handling shaped the buckets, when equal values are kept together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One quadrant of the 2x2 matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quadrant {
    /// Whether these customers are at or above the value split.
    pub high_value: bool,
    /// Whether these customers are at or above the engagement split.
    pub high_engagement: bool,
    /// Customers in the quadrant.
    pub customers: u64,
    /// Share of all customers.
    pub share: f64,
    /// How many of them each segment holds (`None`: unassigned), in rule order.
    pub segments: Vec<(Option<String>, u64)>,
}

/// The 2x2 value x engagement matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Matrix {
    /// The value feature.
    pub value_feature: String,
    /// Its split value: customers at or above are high value.
    pub value_split: f64,
    /// How the value split was chosen.
    pub value_rule: String,
    /// The engagement feature.
    pub engagement_feature: String,
    /// Its split value.
    pub engagement_split: f64,
    /// How the engagement split was chosen.
    pub engagement_rule: String,
    /// The four quadrants: high/high, high value/low engagement, low/high, low/low.
    pub quadrants: Vec<Quadrant>,
}

/// What the rule order decides: for the customers of each segment, how many each later rule
/// would also have matched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleOverlap {
    /// The segment the customers are in.
    pub segment: String,
    /// Its customers.
    pub customers: u64,
    /// Per later segment with a rule: its id and how many of these customers its rule matches.
    pub also_matched_by: Vec<(String, u64)>,
}

/// Overlap between segment rules, evaluated over the assignments.
pub async fn rule_overlap(
    ctx: &SessionContext,
    table: &str,
    pipeline: &Pipeline,
) -> Result<Vec<RuleOverlap>> {
    let segments = &pipeline.segments;
    let ruled: Vec<(usize, &str)> = segments
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.rule.as_deref().map(|w| (i, w)))
        .collect();
    if ruled.is_empty() {
        return Ok(Vec::new());
    }
    let columns: Vec<String> = ruled
        .iter()
        .enumerate()
        .map(|(c, (_, when))| format!("sum(CASE WHEN ({when}) THEN 1 ELSE 0 END) AS r{c}"))
        .collect();
    let sql = format!(
        "SELECT \"segment\", count(*) AS n, {} FROM {} WHERE \"segment\" IS NOT NULL GROUP BY \"segment\"",
        columns.join(", "),
        ident(table)
    );
    let counts = query_rows(ctx, &sql).await?;
    Ok(segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let row = counts
                .iter()
                .find(|row| row[0].as_str() == Some(segment.id.as_str()));
            RuleOverlap {
                segment: segment.id.clone(),
                customers: row.map_or(0, |r| as_u64(&r[1])),
                also_matched_by: ruled
                    .iter()
                    .enumerate()
                    .filter(|(_, (j, _))| *j > i)
                    .map(|(c, (j, _))| {
                        (
                            segments[*j].id.clone(),
                            row.map_or(0, |r| as_u64(&r[2 + c])),
                        )
                    })
                    .collect(),
            }
        })
        .collect())
}

fn as_u64(value: &serde_json::Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// Reachable customers per segment (`None`: unassigned), for the accessible criterion.
pub async fn reachable(
    ctx: &SessionContext,
    table: &str,
    condition: &str,
) -> Result<Vec<(Option<String>, u64)>> {
    let sql = format!(
        "SELECT \"segment\", sum(CASE WHEN ({condition}) THEN 1 ELSE 0 END) AS reachable FROM {} GROUP BY \"segment\"",
        ident(table)
    );
    Ok(query_rows(ctx, &sql)
        .await?
        .iter()
        .map(|row| (row[0].as_str().map(str::to_string), as_u64(&row[1])))
        .collect())
}

/// What keeping ties together did to the buckets of a quantile: how many are used and how
/// unequal they are.
fn ties_note(requested: u32, buckets: &[BucketRange]) -> String {
    let sizes = buckets.iter().map(|b| b.customers);
    let (smallest, largest) = (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0));
    let mut note = format!(
        "equal values are kept in one bucket (ties: together), so buckets may be unequal: {} of {requested} buckets used",
        buckets.len()
    );
    if smallest == largest {
        note.push_str(&format!(", each with {smallest} customers"));
    } else {
        note.push_str(&format!(", holding {smallest} to {largest} customers"));
    }
    note
}

/// The value range of every bucket of every quantile feature.
pub async fn quantile_cuts(
    ctx: &SessionContext,
    table: &str,
    pipeline: &Pipeline,
) -> Result<Vec<QuantileCuts>> {
    let mut all = Vec::new();
    for feature in &pipeline.features {
        let FeatureDefinition::Quantile(quantile) = &feature.definition else {
            continue;
        };
        let (bucket, of) = (ident(&feature.name), ident(&quantile.of));
        let sql = format!(
            "SELECT {bucket} AS bucket, count(*) AS n, min({of}) AS lo, max({of}) AS hi FROM {} \
             WHERE {bucket} IS NOT NULL GROUP BY {bucket} ORDER BY {bucket}",
            ident(table)
        );
        let mut buckets: Vec<BucketRange> = query_rows(ctx, &sql)
            .await?
            .into_iter()
            .map(|row| bucket_range(&row, quantile.labels.as_deref()))
            .collect();
        // Labelled buckets come back in the labels' alphabetical order.
        buckets.sort_by_key(|b| b.bucket);
        let note = match quantile.bucketing {
            Bucketing::TiesTogether(requested) => Some(ties_note(requested, &buckets)),
            _ => None,
        };
        all.push(QuantileCuts {
            feature: feature.name.clone(),
            of: quantile.of.clone(),
            buckets,
            note,
        });
    }
    Ok(all)
}

/// One row of (bucket, customers, min, max) as a range; a labelled bucket's number is its
/// label's position (1 = the first label).
fn bucket_range(row: &[serde_json::Value], labels: Option<&[String]>) -> BucketRange {
    let label = labels.and(row[0].as_str()).map(str::to_string);
    let bucket = match (&label, labels) {
        (Some(label), Some(labels)) => labels
            .iter()
            .position(|l| l == label)
            .map_or(0, |i| i as i64 + 1),
        _ => row[0].as_i64().unwrap_or(0),
    };
    BucketRange {
        bucket,
        label,
        customers: as_u64(&row[1]),
        min: row[2].clone(),
        max: row[3].clone(),
    }
}

async fn split_value(ctx: &SessionContext, table: &str, axis: &AxisSpec) -> Result<(f64, String)> {
    let column = format!("CAST({} AS DOUBLE)", ident(&axis.feature));
    let (aggregate, rule) = match axis.split {
        Split::Value(value) => return Ok((value, format!("fixed value {value}"))),
        Split::Median => (format!("median({column})"), "median".to_string()),
        Split::Quantile(q) => (
            format!("percentile_cont({q}) WITHIN GROUP (ORDER BY {column})"),
            format!("quantile {q}"),
        ),
    };
    let sql = format!("SELECT {aggregate} AS split FROM {}", ident(table));
    let value = query_rows(ctx, &sql)
        .await?
        .first()
        .and_then(|row| row[0].as_f64())
        .ok_or_else(|| {
            Error::data(
                format!(
                    "feature `{}` has no values to split the 2x2 matrix on",
                    axis.feature
                ),
                Some("choose a feature with values, or a fixed `split: { value: ... }`".into()),
            )
        })?;
    Ok((value, rule))
}

/// The 2x2 matrix of the pipeline's `matrix` section.
pub async fn matrix(
    ctx: &SessionContext,
    table: &str,
    pipeline: &Pipeline,
    customers: u64,
) -> Result<Option<Matrix>> {
    let Some(spec) = &pipeline.spec.matrix else {
        return Ok(None);
    };
    let (value_split, value_rule) = split_value(ctx, table, &spec.value).await?;
    let (engagement_split, engagement_rule) = split_value(ctx, table, &spec.engagement).await?;
    let sql = format!(
        "SELECT COALESCE(CAST({} AS DOUBLE) >= {value_split:?}, false) AS hv, \
         COALESCE(CAST({} AS DOUBLE) >= {engagement_split:?}, false) AS he, \"segment\", count(*) AS n \
         FROM {} GROUP BY 1, 2, 3",
        ident(&spec.value.feature),
        ident(&spec.engagement.feature),
        ident(table)
    );
    let counts = query_rows(ctx, &sql).await?;
    let order: Vec<Option<&str>> = pipeline
        .segments
        .iter()
        .map(|s| Some(s.id.as_str()))
        .chain([None])
        .collect();
    let quadrants = [(true, true), (true, false), (false, true), (false, false)]
        .into_iter()
        .map(|(high_value, high_engagement)| {
            let inside: Vec<&Vec<serde_json::Value>> = counts
                .iter()
                .filter(|row| {
                    row[0].as_bool() == Some(high_value)
                        && row[1].as_bool() == Some(high_engagement)
                })
                .collect();
            let total: u64 = inside.iter().map(|row| as_u64(&row[3])).sum();
            let segments = order
                .iter()
                .filter_map(|id| {
                    let n: u64 = inside
                        .iter()
                        .filter(|row| row[2].as_str() == *id)
                        .map(|row| as_u64(&row[3]))
                        .sum();
                    (n > 0).then(|| (id.map(str::to_string), n))
                })
                .collect();
            Quadrant {
                high_value,
                high_engagement,
                customers: total,
                share: if customers == 0 {
                    0.0
                } else {
                    total as f64 / customers as f64
                },
                segments,
            }
        })
        .collect();
    Ok(Some(Matrix {
        value_feature: spec.value.feature.clone(),
        value_split,
        value_rule,
        engagement_feature: spec.engagement.feature.clone(),
        engagement_split,
        engagement_rule,
        quadrants,
    }))
}

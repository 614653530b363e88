//! Profiles of the written assignments beyond numeric statistics: the mix of category values in
//! each segment, the concentration of a value over customers (Gini coefficient, Lorenz curve),
//! and the ideal customer profile's two groups. DataFusion does the scans; the tables that come
//! back are small (at most [`MAX_VALUES`] values per segment, [`LORENZ_POINTS`] points).

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::stats::query_rows;
use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::pipeline::sql::{ident, string_literal};

/// Most values a category mix keeps per feature, by customers over all; the rest count as
/// "other" (a text feature holding e-mail addresses would otherwise bring back every customer).
pub const MAX_VALUES: usize = 50;

/// Points of a Lorenz curve after (0, 0): one per twentieth of the customers.
pub const LORENZ_POINTS: usize = 20;

/// Customers per category value of one feature, over all customers and per segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CategoryMix {
    /// The feature.
    pub feature: String,
    /// Its values as text, most customers first (numeric categories in ascending order); null
    /// for customers without a value.
    pub values: Vec<Option<String>>,
    /// Customers per value over all customers, in the order of `values`.
    pub overall: Vec<u64>,
    /// Customers whose value is not among `values` (there were more than 50 values).
    #[serde(default)]
    pub overall_other: u64,
    /// Per segment in rule order, then the unassigned customers (segment null).
    pub segments: Vec<GroupCounts>,
}

/// Customers per category value in one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupCounts {
    /// The segment id; null for unassigned customers (`icp` and `rest` beside an ICP).
    pub segment: Option<String>,
    /// Customers per value, in the order of the mix's `values`.
    pub counts: Vec<u64>,
    /// Customers with a value not among the mix's `values`.
    #[serde(default)]
    pub other: u64,
}

impl GroupCounts {
    /// Every customer of the group: the counts per value and the other values.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.other
    }

    /// The counts with "other" as a last cell, for a contingency table.
    pub fn cells(&self) -> Vec<u64> {
        let mut cells = self.counts.clone();
        cells.push(self.other);
        cells
    }
}

/// How a value or cost feature is spread over customers and segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Concentration {
    /// The feature.
    pub feature: String,
    /// Customers with a value; customers without one are left out of the curve and the Gini.
    pub customers: u64,
    /// The sum of the values.
    pub total: f64,
    /// Customers with a negative value (a refund, a credit): the Gini is not given then.
    pub negative: u64,
    /// Whether a value is infinite or not a number, or the total overflows: nothing else is
    /// given then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub infinite: bool,
    /// Gini coefficient over customers: 0 when everyone holds the same, towards 1 when a few
    /// hold it all. Null when undefined (no positive total, or negative values).
    pub gini: Option<f64>,
    /// The Lorenz curve: (share of customers, share of the total they hold), customers in
    /// ascending order of value, from (0, 0) to (1, 1).
    pub lorenz: Vec<(f64, f64)>,
}

impl Concentration {
    /// Share of the total held by the top `customers_share` of customers (e.g. 0.2 for the top
    /// fifth), read off the curve at a twentieth.
    pub fn top_share(&self, customers_share: f64) -> Option<f64> {
        if self.total <= 0.0 || self.negative > 0 {
            return None;
        }
        let cut = 1.0 - customers_share;
        // Between the two points around the cut, linearly: with a number of customers that is
        // not a multiple of twenty the points fall a fraction of a customer off the twentieths.
        let after = self.lorenz.iter().position(|(x, _)| *x >= cut - 1e-12)?;
        let (x1, y1) = self.lorenz[after];
        let held = match after.checked_sub(1).map(|i| self.lorenz[i]) {
            Some((x0, y0)) if x1 > x0 => y0 + (y1 - y0) * (cut - x0) / (x1 - x0),
            _ => y1,
        };
        Some(1.0 - held)
    }
}

/// Whether a column of this type is profiled as categories without being declared one.
pub fn is_category_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean
    ) || matches!(data_type, DataType::Dictionary(_, value) if is_category_type(value))
}

/// The features profiled as categories: text and boolean ones, those declared `category: true`,
/// and those the differentiable criterion compares with Cramér's V.
pub fn category_features(pipeline: &Pipeline, schema: &Schema) -> Vec<String> {
    let listed: Vec<&str> = pipeline
        .spec
        .criteria
        .as_ref()
        .and_then(|c| c.differentiable.as_ref())
        .map(|d| d.categories.iter().map(String::as_str).collect())
        .unwrap_or_default();
    pipeline
        .spec
        .features
        .iter()
        .filter(|f| {
            let Ok(field) = schema.field_with_name(&f.name) else {
                return false;
            };
            f.category || listed.contains(&f.name.as_str()) || is_category_type(field.data_type())
        })
        .map(|f| f.name.clone())
        .collect()
}

/// The category mix of every category feature of `table` (which has a `segment` column), with
/// groups in the order of `groups` (a group nobody is in has zero counts).
pub async fn category_mixes(
    ctx: &SessionContext,
    table: &str,
    schema: &Schema,
    features: &[String],
    groups: &[Option<String>],
) -> Result<Vec<CategoryMix>> {
    let mut mixes = Vec::with_capacity(features.len());
    for feature in features {
        let numeric = schema
            .field_with_name(feature)
            .is_ok_and(|f| f.data_type().is_numeric());
        mixes.push(category_mix(ctx, table, feature, numeric, groups).await?);
    }
    Ok(mixes)
}

/// One feature's mix in one scan: counts per (segment, value), the values ranked by customers
/// over all, and those past [`MAX_VALUES`] folded into "other" before they leave DataFusion.
async fn category_mix(
    ctx: &SessionContext,
    table: &str,
    feature: &str,
    numeric: bool,
    groups: &[Option<String>],
) -> Result<CategoryMix> {
    // Grouped by the value as it is (a boolean or a number hashes faster than its text), cast to
    // text only once per distinct value.
    let sql = format!(
        "WITH counted AS (SELECT \"segment\" AS s, CAST(raw AS VARCHAR) AS v, n FROM \
           (SELECT \"segment\", {column} AS raw, count(*) AS n FROM {table} GROUP BY 1, 2)), \
         totals AS (SELECT s, v, n, sum(n) OVER (PARTITION BY v) AS total FROM counted), \
         ranked AS (SELECT s, v, n, dense_rank() OVER (ORDER BY total DESC, v ASC NULLS FIRST) AS r \
           FROM totals) \
         SELECT s, CASE WHEN r <= {MAX_VALUES} THEN v END AS v, r > {MAX_VALUES} AS other, \
           CAST(sum(n) AS BIGINT) AS n, min(r) AS r \
         FROM ranked GROUP BY 1, 2, 3",
        column = ident(feature),
        table = ident(table),
    );
    let rows = query_rows(ctx, &sql).await?;
    // Values by rank over all customers; numeric categories (a Likert scale) read in their own
    // order instead.
    let mut ranked: Vec<(i64, Option<String>)> = rows
        .iter()
        .filter(|row| row[2].as_bool() == Some(false))
        .map(|row| {
            (
                row[4].as_i64().unwrap_or(0),
                row[1].as_str().map(str::to_string),
            )
        })
        .collect();
    ranked.sort();
    ranked.dedup();
    let mut values: Vec<Option<String>> = ranked.into_iter().map(|(_, v)| v).collect();
    if numeric {
        values.sort_by(|a, b| {
            let number = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<f64>().ok());
            match (number(a), number(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        });
    }
    let count = |row: &Vec<serde_json::Value>| row[3].as_u64().unwrap_or(0);
    let group_counts = |segment: Option<&str>| {
        let mut counts = vec![0; values.len()];
        let mut other = 0;
        for row in rows.iter().filter(|row| row[0].as_str() == segment) {
            if row[2].as_bool() == Some(true) {
                other += count(row);
            } else if let Some(i) = values.iter().position(|v| v.as_deref() == row[1].as_str()) {
                counts[i] += count(row);
            }
        }
        GroupCounts {
            segment: segment.map(str::to_string),
            counts,
            other,
        }
    };
    let segments: Vec<GroupCounts> = groups.iter().map(|g| group_counts(g.as_deref())).collect();
    let overall = (0..values.len())
        .map(|i| segments.iter().map(|g| g.counts[i]).sum())
        .collect();
    let overall_other = segments.iter().map(|g| g.other).sum();
    Ok(CategoryMix {
        feature: feature.to_string(),
        values,
        overall,
        overall_other,
        segments,
    })
}

/// The concentration of each feature of `features` over the customers of `table`.
pub async fn concentrations(
    ctx: &SessionContext,
    table: &str,
    features: &[String],
) -> Result<Vec<Concentration>> {
    let mut measured = Vec::with_capacity(features.len());
    for feature in features {
        measured.push(concentration(ctx, table, feature).await?);
    }
    Ok(measured)
}

/// One sorted pass: customers ranked by value (ties in any order, which changes neither sum),
/// summed per twentieth for the curve and weighted by rank for the Gini coefficient
/// `G = Σ (2i − n − 1) x_(i) / (n Σ x)`.
async fn concentration(ctx: &SessionContext, table: &str, feature: &str) -> Result<Concentration> {
    let value = format!("CAST({} AS DOUBLE)", ident(feature));
    let table = ident(table);
    let counted = query_rows(
        ctx,
        &format!(
            "SELECT count({value}), CAST(count(CASE WHEN {value} < 0 THEN 1 END) AS BIGINT) FROM {table}"
        ),
    )
    .await?;
    let number = |row: Option<&Vec<serde_json::Value>>, i: usize| {
        row.and_then(|r| r.get(i))
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    };
    let customers = number(counted.first(), 0);
    let negative = number(counted.first(), 1);
    let mut concentration = Concentration {
        feature: feature.to_string(),
        customers,
        total: 0.0,
        negative,
        infinite: false,
        gini: None,
        lorenz: Vec::new(),
    };
    if customers == 0 {
        return Ok(concentration);
    }
    let n = customers as f64;
    let sql = format!(
        "SELECT CAST(ceil(i * {points}.0 / {n:?}) AS BIGINT) AS part, count(*) AS c, sum(x) AS s, \
           sum((2.0 * i - {n:?} - 1.0) * x) AS g \
         FROM (SELECT x, row_number() OVER (ORDER BY x) AS i \
               FROM (SELECT {value} AS x FROM {table} WHERE {value} IS NOT NULL)) \
         GROUP BY 1 ORDER BY 1",
        points = LORENZ_POINTS,
    );
    let parts = query_rows(ctx, &sql).await?;
    let float = |row: &Vec<serde_json::Value>, i: usize| row[i].as_f64().unwrap_or(0.0);
    let total: f64 = parts.iter().map(|row| float(row, 2)).sum();
    let weighted: f64 = parts.iter().map(|row| float(row, 3)).sum();
    // A part's sum comes back null only when it is not a finite number (JSON has none).
    let unrepresentable = parts
        .iter()
        .any(|row| !row[2].is_number() || !row[3].is_number());
    if unrepresentable || !total.is_finite() || !weighted.is_finite() {
        // An infinite or not-a-number value (or a sum that overflows) has no share of a total;
        // JSON could not hold the figures either.
        concentration.infinite = true;
        return Ok(concentration);
    }
    concentration.total = total;
    concentration.gini = (negative == 0 && total > 0.0).then(|| weighted / (n * total));
    let mut lorenz = vec![(0.0, 0.0)];
    let (mut people, mut held) = (0.0, 0.0);
    for row in &parts {
        people += float(row, 1);
        held += float(row, 2);
        let share = if total != 0.0 { held / total } else { 0.0 };
        lorenz.push((people / n, share));
    }
    concentration.lorenz = lorenz;
    Ok(concentration)
}

/// A view of `table` (key and features) whose `segment` column says whether a customer is in the
/// ideal customer profile (`icp`) or not (`rest`), for measuring the two groups like segments.
pub async fn register_icp_view(
    ctx: &SessionContext,
    table: &str,
    view: &str,
    pipeline: &Pipeline,
) -> Result<bool> {
    let Some(icp) = &pipeline.spec.icp else {
        return Ok(false);
    };
    let condition = match (&icp.segment, &icp.when) {
        (Some(segment), _) => format!("\"segment\" = {}", string_literal(segment)),
        // The line break ends a `--` comment the condition may close with.
        (None, Some(when)) => format!("COALESCE(({when}\n), false)"),
        (None, None) => return Ok(false),
    };
    let columns: Vec<String> = std::iter::once(&pipeline.entity.key)
        .chain(pipeline.features.iter().map(|f| &f.name))
        .map(|name| ident(name))
        .collect();
    let sql = format!(
        "SELECT CASE WHEN {condition} THEN '{ICP}' ELSE '{REST}' END AS \"segment\", {} FROM {}",
        columns.join(", "),
        ident(table)
    );
    let frame = ctx.sql(&sql).await?;
    ctx.register_table(view, frame.into_view())?;
    Ok(true)
}

/// The segment id the ICP view gives ICP customers.
pub const ICP: &str = "icp";

/// The segment id the ICP view gives everyone else.
pub const REST: &str = "rest";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_share_reads_the_curve_at_a_twentieth() {
        let concentration = Concentration {
            feature: "revenue".into(),
            customers: 5,
            total: 100.0,
            negative: 0,
            infinite: false,
            gini: Some(0.5),
            lorenz: (0..=20)
                .map(|i| (i as f64 / 20.0, (i as f64 / 20.0).powi(2)))
                .collect(),
        };
        let top = concentration.top_share(0.2).unwrap_or_default();
        assert!((top - (1.0 - 0.64)).abs() < 1e-12, "{top}");
        // Points off the twentieths: the share at 0.8 lies on the line between its neighbours.
        let off = Concentration {
            lorenz: vec![(0.0, 0.0), (0.7, 0.2), (0.9, 0.6), (1.0, 1.0)],
            ..concentration.clone()
        };
        let top = off.top_share(0.2).unwrap_or_default();
        assert!((top - 0.6).abs() < 1e-12, "{top}");
        let none = Concentration {
            total: 0.0,
            ..concentration
        };
        assert_eq!(none.top_share(0.2), None, "no total, no share of it");
    }
}

//! Per-segment statistics of the written assignments, computed by DataFusion aggregates so they
//! scale with the data: count, share, and per feature non-nulls, mean, median, min, max.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::count::count_all;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, median, min, stddev, sum};
use datafusion::logical_expr::Expr;
use datafusion::prelude::{SessionContext, cast, ident, lit};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Summary statistics of one feature over a group of customers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct FeatureStats {
    /// The feature's name.
    pub feature: String,
    /// Customers with a value (not null).
    pub non_null: u64,
    /// Arithmetic mean, for numeric and boolean features (share of `true`).
    #[serde(with = "float_or_infinity")]
    #[schemars(with = "Option<f64>")]
    pub mean: Option<f64>,
    /// Median (the mean of the two middle values for an even count), for numeric features.
    #[serde(with = "float_or_infinity")]
    #[schemars(with = "Option<f64>")]
    pub median: Option<f64>,
    /// Sample standard deviation, for numeric features with at least two values.
    #[serde(with = "float_or_infinity")]
    #[schemars(with = "Option<f64>")]
    pub std_dev: Option<f64>,
    /// Sum of the values, for numeric features.
    #[serde(with = "float_or_infinity")]
    #[schemars(with = "Option<f64>")]
    pub sum: Option<f64>,
    /// Smallest value.
    pub min: Option<serde_json::Value>,
    /// Largest value.
    pub max: Option<serde_json::Value>,
}

/// Statistics of one group: a segment, the unassigned customers, or everyone.
#[derive(Debug, Clone)]
pub struct GroupStats {
    /// The segment id, `None` for unassigned customers (or for the all-customers group).
    pub segment: Option<String>,
    /// Customers in the group.
    pub customers: u64,
    /// Per feature, in declaration order.
    pub features: Vec<FeatureStats>,
}

/// Aggregates per feature in the statistics query: count, mean, median, stddev, sum, min, max.
const COLUMNS_PER_FEATURE: usize = 7;

fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric() || matches!(data_type, DataType::Boolean)
}

/// Statistics per segment (`grouped`) or over all rows, of `table` whose columns include
/// `segment` and the features in `features`. Without `medians` the median is left out: it is the
/// one aggregate that holds every value, and comparisons of means do not need it.
pub async fn compute(
    ctx: &SessionContext,
    table: &str,
    schema: &Schema,
    features: &[String],
    grouped: bool,
    medians: bool,
) -> Result<Vec<GroupStats>> {
    // Built as expressions, not SQL text: DataFusion's SQL planner takes time quadratic in the
    // length of a select list, and this one has seven aggregates per feature.
    let mut aggregates = vec![count_all()];
    for feature in features {
        let column = ident(feature);
        let data_type = schema
            .field_with_name(feature)
            .map(|f| f.data_type().clone())
            .map_err(|e| Error::Internal(e.to_string()))?;
        aggregates.push(count(column.clone()));
        if is_numeric(&data_type) {
            let double = || cast(column.clone(), DataType::Float64);
            aggregates.push(avg(double()));
            aggregates.push(if medians {
                median(double())
            } else {
                cast(lit(ScalarValue::Null), DataType::Float64)
            });
            aggregates.push(stddev(double()));
            aggregates.push(sum(double()));
        } else {
            for _ in 0..4 {
                aggregates.push(cast(lit(ScalarValue::Null), DataType::Float64));
            }
        }
        aggregates.push(min(column.clone()));
        aggregates.push(max(column));
    }
    let aggregates: Vec<Expr> = aggregates
        .into_iter()
        .enumerate()
        .map(|(i, expr)| expr.alias(format!("c{i}")))
        .collect();
    let group_by = if grouped {
        vec![ident("segment")]
    } else {
        vec![]
    };
    let batches = ctx
        .table(table)
        .await?
        .aggregate(group_by, aggregates)?
        .collect()
        .await?;
    let mut groups = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            groups.push(read_group(batch, row, features, grouped)?);
        }
    }
    Ok(groups)
}

/// One row of the statistics: the segment (when `grouped`), the count of customers, then
/// [`COLUMNS_PER_FEATURE`] columns per feature.
fn read_group(
    batch: &RecordBatch,
    row: usize,
    features: &[String],
    grouped: bool,
) -> Result<GroupStats> {
    let column = |i: usize| batch.column(i).as_ref();
    let first = usize::from(grouped);
    let segment = match grouped.then(|| scalar(column(0), row)).transpose()? {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    let customers = whole(column(first), row)?;
    let mut stats = Vec::with_capacity(features.len());
    for (f, feature) in features.iter().enumerate() {
        let base = first + 1 + f * COLUMNS_PER_FEATURE;
        stats.push(FeatureStats {
            feature: feature.clone(),
            non_null: whole(column(base), row)?,
            mean: number(column(base + 1), row)?,
            median: number(column(base + 2), row)?,
            std_dev: number(column(base + 3), row)?,
            sum: number(column(base + 4), row)?,
            min: Some(scalar(column(base + 5), row)?).filter(|v| !v.is_null()),
            max: Some(scalar(column(base + 6), row)?).filter(|v| !v.is_null()),
        });
    }
    Ok(GroupStats {
        segment,
        customers,
        features: stats,
    })
}

/// A float as JSON: infinities as the strings `inf` and `-inf` (JSON numbers cannot hold them),
/// NaN as null (no value).
fn float(value: f64) -> serde_json::Value {
    match serde_json::Number::from_f64(value) {
        Some(number) => serde_json::Value::Number(number),
        None if value.is_infinite() => serde_json::Value::String(infinity(value).into()),
        None => serde_json::Value::Null,
    }
}

fn infinity(value: f64) -> &'static str {
    if value > 0.0 { "inf" } else { "-inf" }
}

/// Serde for an optional float that may be infinite: written as a number, `"inf"` or `"-inf"`
/// (null for none or NaN), and read back from the same.
mod float_or_infinity {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) if v.is_infinite() => serializer.serialize_str(super::infinity(*v)),
            Some(v) if !v.is_nan() => serializer.serialize_f64(*v),
            _ => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Float {
            Number(f64),
            Text(String),
        }
        match Option::<Float>::deserialize(deserializer)? {
            None => Ok(None),
            Some(Float::Number(v)) => Ok(Some(v)),
            Some(Float::Text(t)) if t == "inf" => Ok(Some(f64::INFINITY)),
            Some(Float::Text(t)) if t == "-inf" => Ok(Some(f64::NEG_INFINITY)),
            Some(Float::Text(t)) => Err(serde::de::Error::custom(format!(
                "expected a number, \"inf\" or \"-inf\", found \"{t}\""
            ))),
        }
    }
}

/// A float cell, infinities included.
fn number(array: &dyn Array, row: usize) -> Result<Option<f64>> {
    Ok(match scalar(array, row)? {
        serde_json::Value::String(s) if s == "inf" => Some(f64::INFINITY),
        serde_json::Value::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
        value => value.as_f64(),
    })
}

fn whole(array: &dyn Array, row: usize) -> Result<u64> {
    scalar(array, row)?
        .as_u64()
        .ok_or_else(|| Error::Internal("count is not a whole number".into()))
}

/// Run `sql` and return every row as JSON cells (for small results: aggregates, counts).
pub async fn query_rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<serde_json::Value>>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        for r in 0..batch.num_rows() {
            rows.push(
                (0..batch.num_columns())
                    .map(|c| scalar(batch.column(c).as_ref(), r))
                    .collect::<Result<_>>()?,
            );
        }
    }
    Ok(rows)
}

/// One cell as JSON: numbers and booleans as such, dates and text as strings, null as null.
pub fn scalar(array: &dyn Array, row: usize) -> Result<serde_json::Value> {
    use serde_json::Value;
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let value = ScalarValue::try_from_array(array, row)?;
    Ok(match value {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Int8(Some(v)) => v.into(),
        ScalarValue::Int16(Some(v)) => v.into(),
        ScalarValue::Int32(Some(v)) => v.into(),
        ScalarValue::Int64(Some(v)) => v.into(),
        ScalarValue::UInt8(Some(v)) => v.into(),
        ScalarValue::UInt16(Some(v)) => v.into(),
        ScalarValue::UInt32(Some(v)) => v.into(),
        ScalarValue::UInt64(Some(v)) => v.into(),
        ScalarValue::Float32(Some(v)) => float(f64::from(v)),
        ScalarValue::Float64(Some(v)) => float(v),
        _ => Value::String(array_value_to_string(array, row)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinities_are_written_as_strings_and_read_back() {
        let stats = FeatureStats {
            feature: "amount".into(),
            non_null: 3,
            mean: Some(f64::INFINITY),
            median: Some(2.5),
            std_dev: Some(f64::NAN),
            sum: Some(f64::NEG_INFINITY),
            min: Some(float(f64::NEG_INFINITY)),
            max: Some(float(f64::INFINITY)),
        };
        let json = serde_json::to_string(&stats).expect("serialize");
        assert!(json.contains(r#""mean":"inf""#), "{json}");
        assert!(json.contains(r#""std_dev":null"#), "{json}");
        assert!(json.contains(r#""min":"-inf""#), "{json}");
        let back: FeatureStats = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.mean, Some(f64::INFINITY));
        assert_eq!(back.sum, Some(f64::NEG_INFINITY));
        assert_eq!(back.median, Some(2.5));
        assert_eq!(back.std_dev, None);
    }
}

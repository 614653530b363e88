//! Per-segment statistics of the written assignments, computed by DataFusion aggregates so they
//! scale with the data: count, share, and per feature non-nulls, mean, median, min, max.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pipeline::sql::ident;

/// Summary statistics of one feature over a group of customers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureStats {
    /// The feature's name.
    pub feature: String,
    /// Customers with a value (not null).
    pub non_null: u64,
    /// Arithmetic mean, for numeric and boolean features (share of `true`).
    pub mean: Option<f64>,
    /// Median (the mean of the two middle values for an even count), for numeric features.
    pub median: Option<f64>,
    /// Sample standard deviation, for numeric features with at least two values.
    pub std_dev: Option<f64>,
    /// Sum of the values, for numeric features.
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
/// `segment` and the features in `features`.
pub async fn compute(
    ctx: &SessionContext,
    table: &str,
    schema: &Schema,
    features: &[String],
    grouped: bool,
) -> Result<Vec<GroupStats>> {
    let mut select = vec![
        if grouped {
            "\"segment\""
        } else {
            "CAST(NULL AS VARCHAR)"
        }
        .to_string(),
        "count(*)".to_string(),
    ];
    for feature in features {
        let column = ident(feature);
        let data_type = schema
            .field_with_name(feature)
            .map(|f| f.data_type().clone())
            .map_err(|e| Error::Internal(e.to_string()))?;
        select.push(format!("count({column})"));
        if is_numeric(&data_type) {
            select.push(format!("avg(CAST({column} AS DOUBLE))"));
            select.push(format!("median(CAST({column} AS DOUBLE))"));
            select.push(format!("stddev(CAST({column} AS DOUBLE))"));
            select.push(format!("sum(CAST({column} AS DOUBLE))"));
        } else {
            for _ in 0..4 {
                select.push("CAST(NULL AS DOUBLE)".to_string());
            }
        }
        select.push(format!("min({column})"));
        select.push(format!("max({column})"));
    }
    let select: Vec<String> = select
        .into_iter()
        .enumerate()
        .map(|(i, expr)| format!("{expr} AS c{i}"))
        .collect();
    let group_by = if grouped { " GROUP BY \"segment\"" } else { "" };
    let sql = format!(
        "SELECT {} FROM {}{group_by}",
        select.join(", "),
        ident(table)
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut groups = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            groups.push(read_group(batch, row, features)?);
        }
    }
    Ok(groups)
}

fn read_group(batch: &RecordBatch, row: usize, features: &[String]) -> Result<GroupStats> {
    let column = |i: usize| batch.column(i).as_ref();
    let segment = match scalar(column(0), row)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    };
    let customers = count(column(1), row)?;
    let mut stats = Vec::with_capacity(features.len());
    for (f, feature) in features.iter().enumerate() {
        let base = 2 + f * COLUMNS_PER_FEATURE;
        stats.push(FeatureStats {
            feature: feature.clone(),
            non_null: count(column(base), row)?,
            mean: scalar(column(base + 1), row)?.as_f64(),
            median: scalar(column(base + 2), row)?.as_f64(),
            std_dev: scalar(column(base + 3), row)?.as_f64(),
            sum: scalar(column(base + 4), row)?.as_f64(),
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

fn count(array: &dyn Array, row: usize) -> Result<u64> {
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
        ScalarValue::Float32(Some(v)) => {
            serde_json::Number::from_f64(f64::from(v)).map_or(Value::Null, Value::Number)
        }
        ScalarValue::Float64(Some(v)) => {
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
        _ => Value::String(array_value_to_string(array, row)?),
    })
}

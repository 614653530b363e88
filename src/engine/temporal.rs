//! Dates and timestamps in generated SQL: which columns hold them, and the as-of date (or a
//! window's start) as a literal of a column's type.

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;

/// Whether a column of `data_type` holds dates or timestamps.
pub(super) fn is_temporal(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

/// `date` as an SQL literal comparable with a column of `data_type` (midnight for timestamps).
pub(super) fn temporal_literal(data_type: &DataType, date: NaiveDate) -> String {
    match data_type {
        DataType::Timestamp(..) => format!("TIMESTAMP '{date} 00:00:00'"),
        _ => format!("DATE '{date}'"),
    }
}

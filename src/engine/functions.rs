//! SQL functions segflow adds to DataFusion for pipeline expressions.

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `as_of()`: the run's as-of date, so expressions like `as_of() - signup_date` follow
/// `--as-of` without editing SQL. Immutable, so DataFusion folds it into a constant.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AsOf {
    days_since_epoch: i32,
    signature: Signature,
}

/// Days from 1970-01-01 to `date`, Arrow's `Date32` representation.
pub fn date32(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as i32
}

/// The `as_of()` function for a run as of `date`.
pub fn as_of(date: NaiveDate) -> ScalarUDF {
    ScalarUDF::from(AsOf {
        days_since_epoch: date32(date),
        signature: Signature::nullary(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for AsOf {
    fn name(&self) -> &str {
        "as_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(
            self.days_since_epoch,
        ))))
    }
}

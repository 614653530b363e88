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

/// `bit_count(x)`: the number of bits set in a 64-bit integer (null stays null). segflow uses it
/// to count distinct days from per-customer bitmaps; DuckDB has the same function.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BitCount {
    signature: Signature,
}

/// The `bit_count` function.
pub fn bit_count() -> ScalarUDF {
    ScalarUDF::from(BitCount {
        signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
    })
}

impl ScalarUDFImpl for BitCount {
    fn name(&self) -> &str {
        "bit_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, Int64Array};
        use datafusion::arrow::compute::kernels::arity::unary;
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Int64(value)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Int64(value.map(|v| i64::from(v.count_ones()))),
            )),
            ColumnarValue::Array(array) => {
                let values = array.as_any().downcast_ref::<Int64Array>().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal("bit_count expects Int64".into())
                })?;
                let counted: Int64Array = unary(values, |v| i64::from(v.count_ones()));
                Ok(ColumnarValue::Array(std::sync::Arc::new(counted)))
            }
            other => Err(datafusion::error::DataFusionError::Internal(format!(
                "bit_count of {other:?}"
            ))),
        }
    }
}

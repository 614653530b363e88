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

/// Bytes of text (or elements of lists) one call of `repeat`, `lpad`, `rpad` or
/// `array_repeat` may make for a batch of rows. Beyond it the run fails with the resources
/// error instead of asking the allocator for, say, 191 GB and aborting.
pub const MAX_MADE_BYTES: u64 = 256 << 20;

/// Words in the error of a call that would make too much (see [`MAX_MADE_BYTES`]).
pub const TOO_LONG: &str = "segflow allows one call";

/// DataFusion's `name`, with the size of what it makes checked first (see [`MAX_MADE_BYTES`]).
/// `size` gives, from the arguments and the number of rows, the bytes the call would make.
#[derive(Debug)]
struct Bounded {
    inner: std::sync::Arc<ScalarUDF>,
    size: Size,
}

/// From a call's arguments and its number of rows, the bytes it would make.
type Size = fn(&[ColumnarValue], usize) -> Result<u64>;

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for Bounded {}

impl std::hash::Hash for Bounded {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let made = (self.size)(&args.args, args.number_rows)?;
        if made > MAX_MADE_BYTES {
            return Err(datafusion::error::DataFusionError::ResourcesExhausted(
                format!(
                    "{}() would make {made} bytes for {} rows, more than the {} MiB segflow allows one call",
                    self.name(),
                    args.number_rows,
                    MAX_MADE_BYTES >> 20
                ),
            ));
        }
        self.inner.invoke_with_args(args)
    }
}

/// Per row, argument `i` as a whole number (0 for null or negative), or its length in bytes
/// for text.
fn per_row(args: &[ColumnarValue], i: usize, rows: usize) -> Result<Vec<u64>> {
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::arrow::compute::{cast, kernels::length::length};
    let Some(arg) = args.get(i) else {
        return Ok(vec![1; rows]);
    };
    let array = arg.to_array(rows)?;
    let numbers = if matches!(
        array.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary
    ) {
        cast(&length(&array)?, &DataType::Int64)?
    } else {
        cast(&array, &DataType::Int64)?
    };
    let numbers = numbers
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("not Int64".into()))?;
    Ok(numbers
        .iter()
        .map(|v| u64::try_from(v.unwrap_or(0)).unwrap_or(0))
        .collect())
}

/// `repeat(text, n)` makes length × n bytes per row.
fn repeated(args: &[ColumnarValue], rows: usize) -> Result<u64> {
    let (text, times) = (per_row(args, 0, rows)?, per_row(args, 1, rows)?);
    Ok(text
        .iter()
        .zip(&times)
        .fold(0u64, |sum, (t, n)| sum.saturating_add(t.saturating_mul(*n))))
}

/// `lpad(text, n [, fill])` makes n characters of up to 4 bytes per row; `array_repeat(x, n)`
/// n elements of at least a byte.
fn padded(args: &[ColumnarValue], rows: usize) -> Result<u64> {
    Ok(per_row(args, 1, rows)?
        .iter()
        .fold(0u64, |sum, n| sum.saturating_add(n.saturating_mul(4))))
}

/// DataFusion's functions that make text or lists as long as an argument says, each bounded.
pub fn bounded(ctx: &datafusion::prelude::SessionContext) -> Vec<ScalarUDF> {
    let sizes: [(&str, Size); 4] = [
        ("repeat", repeated),
        ("lpad", padded),
        ("rpad", padded),
        ("array_repeat", padded),
    ];
    let state = ctx.state();
    sizes
        .into_iter()
        .filter_map(|(name, size)| {
            let inner = state.scalar_functions().get(name)?.clone();
            Some(ScalarUDF::from(Bounded { inner, size }))
        })
        .collect()
}

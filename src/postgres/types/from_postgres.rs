//! The mapping between Postgres and Arrow types, and the decoding of Postgres binary values
//! (as binary COPY sends them) into Arrow arrays.
//!
//! Postgres → Arrow (sources): `smallint` Int16, `integer` Int32, `bigint` Int64, `numeric(p,s)`
//! Decimal128(p,s) and unconstrained `numeric` Decimal128(38,10) (a value with more decimals or
//! more than 28 integer digits is refused, never rounded), `real` Float32, `double precision`
//! Float64, `text`/`varchar`/`char`/`name` Utf8, `boolean` Boolean, `date` Date32, `timestamp`
//! Timestamp(µs), `timestamptz` Timestamp(µs, UTC), `uuid` Utf8 (canonical lower-case text).

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit};
use tokio_postgres::types::Type;

/// Precision of an unconstrained `numeric` column as read.
pub const NUMERIC_PRECISION: u8 = 38;
/// Scale of an unconstrained `numeric` column as read.
pub const NUMERIC_SCALE: i8 = 10;

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (Postgres's).
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The Arrow type a Postgres column of `pg_type` (with its type modifier, -1 when none) is read
/// as, or `None` when segflow does not read that type.
pub fn arrow_type_of(pg_type: &Type, type_modifier: i32) -> Option<DataType> {
    Some(match *pg_type {
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::NUMERIC => {
            let (precision, scale) = numeric_precision(type_modifier)?;
            DataType::Decimal128(precision, scale)
        }
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UUID => DataType::Utf8,
        Type::BOOL => DataType::Boolean,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => return None,
    })
}

/// Precision and scale of a `numeric` column from its type modifier: declared ones when they fit
/// Decimal128 (precision at most 38, scale 0 to precision), else `None`; unconstrained ones
/// [`NUMERIC_PRECISION`] and [`NUMERIC_SCALE`].
fn numeric_precision(type_modifier: i32) -> Option<(u8, i8)> {
    if type_modifier < 4 {
        return Some((NUMERIC_PRECISION, NUMERIC_SCALE));
    }
    let modifier = type_modifier - 4;
    let precision = (modifier >> 16) & 0xffff;
    let scale = modifier & 0xffff;
    if !(1..=38).contains(&precision) || scale > precision {
        return None;
    }
    Some((u8::try_from(precision).ok()?, i8::try_from(scale).ok()?))
}

/// One column being read: an Arrow builder and how to decode Postgres binary values into it.
pub struct ColumnReader {
    data_type: DataType,
    is_uuid: bool,
    builder: Box<dyn ArrayBuilder>,
}

impl ColumnReader {
    /// A reader of a column of `pg_type`, or `None` when the type is not read.
    pub fn new(pg_type: &Type, type_modifier: i32) -> Option<Self> {
        let data_type = arrow_type_of(pg_type, type_modifier)?;
        let builder: Box<dyn ArrayBuilder> = match &data_type {
            DataType::Int16 => Box::new(Int16Builder::new()),
            DataType::Int32 => Box::new(Int32Builder::new()),
            DataType::Int64 => Box::new(Int64Builder::new()),
            DataType::Float32 => Box::new(Float32Builder::new()),
            DataType::Float64 => Box::new(Float64Builder::new()),
            DataType::Boolean => Box::new(BooleanBuilder::new()),
            DataType::Utf8 => Box::new(StringBuilder::new()),
            DataType::Date32 => Box::new(Date32Builder::new()),
            DataType::Decimal128(p, s) => {
                Box::new(Decimal128Builder::new().with_data_type(DataType::Decimal128(*p, *s)))
            }
            DataType::Timestamp(_, zone) => {
                Box::new(TimestampMicrosecondBuilder::new().with_timezone_opt(zone.clone()))
            }
            _ => return None,
        };
        Some(ColumnReader {
            data_type,
            is_uuid: *pg_type == Type::UUID,
            builder,
        })
    }

    /// The Arrow type of the column.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// Append one value in Postgres binary form (`None`: NULL), or say why it cannot be read.
    pub fn append(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let any = self.builder.as_any_mut();
        macro_rules! put {
            ($builder:ty, $decode:expr) => {{
                let builder = any
                    .downcast_mut::<$builder>()
                    .ok_or_else(|| "the column's builder is of another type".to_string())?;
                match value {
                    None => builder.append_null(),
                    Some(bytes) => builder.append_value($decode(bytes)?),
                }
            }};
        }
        match &self.data_type {
            DataType::Int16 => put!(Int16Builder, |b| fixed(b).map(i16::from_be_bytes)),
            DataType::Int32 => put!(Int32Builder, |b| fixed(b).map(i32::from_be_bytes)),
            DataType::Int64 => put!(Int64Builder, |b| fixed(b).map(i64::from_be_bytes)),
            DataType::Float32 => put!(Float32Builder, |b| fixed(b).map(f32::from_be_bytes)),
            DataType::Float64 => put!(Float64Builder, |b| fixed(b).map(f64::from_be_bytes)),
            DataType::Boolean => put!(BooleanBuilder, |b| fixed(b).map(|[v]: [u8; 1]| v != 0)),
            DataType::Utf8 if self.is_uuid => put!(StringBuilder, uuid_text),
            DataType::Utf8 => put!(StringBuilder, |b| std::str::from_utf8(b)
                .map_err(|_| "the text is not UTF-8".to_string())),
            DataType::Date32 => put!(Date32Builder, date),
            DataType::Decimal128(precision, scale) => {
                let (precision, scale) = (*precision, *scale);
                put!(Decimal128Builder, |b| numeric(b, precision, scale))
            }
            DataType::Timestamp(..) => put!(TimestampMicrosecondBuilder, timestamp),
            other => return Err(format!("cannot read a value as {other}")),
        }
        Ok(())
    }

    /// The values appended since the last call, as an array.
    pub fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, the server sent {}", bytes.len()))
}

fn date(bytes: &[u8]) -> Result<i32, String> {
    let days = i32::from_be_bytes(fixed(bytes)?);
    if days == i32::MAX || days == i32::MIN {
        return Err("the date is infinity, which segflow cannot read".into());
    }
    // Arrow's dates are days since 1970; what a date can hold is what chrono (and so DataFusion's
    // casts and every output) can show, about ±262,000 years.
    const DAYS_FROM_CE_TO_1970: i32 = 719_163;
    days.checked_add(EPOCH_DAYS)
        .filter(|d| {
            d.checked_add(DAYS_FROM_CE_TO_1970)
                .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                .is_some()
        })
        .ok_or_else(|| "the date is out of range (segflow reads years -262143 to 262142)".into())
}

fn timestamp(bytes: &[u8]) -> Result<i64, String> {
    let micros = i64::from_be_bytes(fixed(bytes)?);
    if micros == i64::MAX || micros == i64::MIN {
        return Err("the timestamp is infinity, which segflow cannot read".into());
    }
    micros
        .checked_add(EPOCH_MICROS)
        .ok_or_else(|| "the timestamp is out of range".into())
}

#[cfg(test)]
mod date_range_tests {
    #[test]
    fn dates_beyond_what_outputs_can_show_are_refused() {
        let days = |d: i32| d.to_be_bytes();
        assert_eq!(super::date(&days(0)), Ok(super::EPOCH_DAYS));
        // 5874897-12-31, Postgres' largest date.
        assert!(super::date(&days(2_145_031_948)).is_err());
        assert!(super::date(&days(-2_451_545 - 10)).is_ok(), "4713 BC reads");
    }
}

fn uuid_text(bytes: &[u8]) -> Result<String, String> {
    let bytes: [u8; 16] = fixed(bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A `numeric` in Postgres binary form (digit count, weight, sign, display scale, then base-10000
/// digits) as a Decimal128 value of `scale`, refused when it needs more decimals than `scale` or
/// more digits than `precision`.
fn numeric(bytes: &[u8], precision: u8, scale: i8) -> Result<i128, String> {
    let word = |i: usize| -> Result<i16, String> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|w| i16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| "the numeric value is cut short".to_string())
    };
    let digits = usize::try_from(word(0)?).map_err(|_| "bad numeric digit count")?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("the value is NaN, which a decimal cannot hold".into()),
        _ => return Err("the value is infinite, which a decimal cannot hold".into()),
    }
    let too_big = || {
        format!(
            "the value does not fit decimal({precision},{scale}): it has more than {} digits before the point",
            i32::from(precision) - i32::from(scale)
        )
    };
    let mut unscaled: i128 = 0;
    for i in 0..digits {
        let digit = i128::from(word(4 + i)?);
        // The power of ten of this base-10000 digit, once scaled.
        let exponent = (weight - i as i32) * 4 + i32::from(scale);
        if exponent >= 0 {
            let power = 10i128
                .checked_pow(exponent.unsigned_abs())
                .ok_or_else(too_big)?;
            unscaled = digit
                .checked_mul(power)
                .and_then(|v| unscaled.checked_add(v))
                .ok_or_else(too_big)?;
        } else {
            let power = 10i128.pow((-exponent).unsigned_abs().min(4));
            if exponent < -4 && digit != 0 || digit % power != 0 {
                return Err(format!(
                    "the value has more than {scale} decimals, which decimal({precision},{scale}) cannot hold without rounding"
                ));
            }
            unscaled += digit / power;
        }
    }
    if unscaled >= 10i128.pow(u32::from(precision)) {
        return Err(too_big());
    }
    Ok(if sign == 0x4000 { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postgres's binary form of a numeric from its base-10000 digits.
    fn encode(digits: &[i16], weight: i16, negative: bool, dscale: i16) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [
            digits.len() as i16,
            weight,
            if negative { 0x4000 } else { 0 },
            dscale,
        ] {
            out.extend(word.to_be_bytes());
        }
        for digit in digits {
            out.extend(digit.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_are_read_exactly_or_refused() {
        // 12345.678 = 1 2345 . 6780
        let value = encode(&[1, 2345, 6780], 1, false, 3);
        assert_eq!(numeric(&value, 10, 3), Ok(12_345_678));
        assert_eq!(numeric(&value, 38, 10), Ok(123_456_780_000_000));
        assert!(numeric(&value, 10, 2).unwrap_err().contains("decimals"));
        assert!(
            numeric(&value, 6, 3)
                .unwrap_err()
                .contains("before the point")
        );
        let negative = encode(&[5], -1, true, 4);
        assert_eq!(numeric(&negative, 5, 4), Ok(-5));
        assert_eq!(numeric(&encode(&[], 0, false, 0), 5, 2), Ok(0));
    }

    #[test]
    fn types_map_as_documented() {
        assert_eq!(arrow_type_of(&Type::INT2, -1), Some(DataType::Int16));
        assert_eq!(
            arrow_type_of(&Type::NUMERIC, -1),
            Some(DataType::Decimal128(38, 10))
        );
        // numeric(12,2): ((12 << 16) | 2) + 4
        assert_eq!(
            arrow_type_of(&Type::NUMERIC, ((12 << 16) | 2) + 4),
            Some(DataType::Decimal128(12, 2))
        );
        assert_eq!(arrow_type_of(&Type::NUMERIC, ((60 << 16) | 2) + 4), None);
        assert_eq!(arrow_type_of(&Type::JSONB, -1), None);
        assert_eq!(
            uuid_text(&[0xab; 16]).unwrap(),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}

//! The mapping between Arrow and Postgres types. Exports: [`postgres_type_of`] names the column
//! type a table gets for an Arrow column, and [`Cell`] writes one value in Postgres' binary COPY
//! format, without a lossy detour (decimals stay `numeric`, timestamps keep their microseconds).

use std::error::Error as StdError;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
};
use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (Postgres').
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The Postgres column type (as `format_type` spells it) and wire type of an Arrow column, or
/// `None` when an export cannot carry it.
pub fn postgres_type_of(data_type: &DataType) -> Option<(String, Type)> {
    let (name, ty) = match data_type {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => ("smallint", Type::INT2),
        DataType::Int32 | DataType::UInt16 => ("integer", Type::INT4),
        DataType::Int64 | DataType::UInt32 => ("bigint", Type::INT8),
        DataType::Float32 => ("real", Type::FLOAT4),
        DataType::Float64 => ("double precision", Type::FLOAT8),
        DataType::Decimal128(precision, scale) if *scale >= 0 => {
            return Some((format!("numeric({precision},{scale})"), Type::NUMERIC));
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("text", Type::TEXT),
        DataType::Boolean => ("boolean", Type::BOOL),
        DataType::Date32 => ("date", Type::DATE),
        DataType::Timestamp(_, None) => ("timestamp without time zone", Type::TIMESTAMP),
        DataType::Timestamp(_, Some(_)) => ("timestamp with time zone", Type::TIMESTAMPTZ),
        _ => return None,
    };
    Some((name.to_string(), ty))
}

/// One value of an Arrow column, written in the binary format of its [`postgres_type_of`].
#[derive(Debug)]
pub struct Cell<'a> {
    /// The column.
    pub array: &'a dyn Array,
    /// The row.
    pub row: usize,
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Cell<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let (array, row) = (self.array, self.row);
        if array.is_null(row) {
            return Ok(IsNull::Yes);
        }
        match array.data_type() {
            DataType::Int8 => out.put_i16(array.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => out.put_i16(array.as_primitive::<Int16Type>().value(row)),
            DataType::UInt8 => out.put_i16(array.as_primitive::<UInt8Type>().value(row).into()),
            DataType::Int32 => out.put_i32(array.as_primitive::<Int32Type>().value(row)),
            DataType::UInt16 => out.put_i32(array.as_primitive::<UInt16Type>().value(row).into()),
            DataType::Int64 => out.put_i64(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt32 => out.put_i64(array.as_primitive::<UInt32Type>().value(row).into()),
            DataType::Float32 => out.put_f32(array.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => out.put_f64(array.as_primitive::<Float64Type>().value(row)),
            DataType::Decimal128(_, scale) => numeric(
                array.as_primitive::<Decimal128Type>().value(row),
                u16::try_from(*scale)?,
                out,
            ),
            DataType::Utf8 => out.put_slice(array.as_string::<i32>().value(row).as_bytes()),
            DataType::LargeUtf8 => out.put_slice(array.as_string::<i64>().value(row).as_bytes()),
            DataType::Utf8View => out.put_slice(array.as_string_view().value(row).as_bytes()),
            DataType::Boolean => out.put_u8(u8::from(array.as_boolean().value(row))),
            DataType::Date32 => {
                let days = array.as_primitive::<Date32Type>().value(row);
                out.put_i32(days.checked_sub(EPOCH_DAYS).ok_or("date out of range")?);
            }
            DataType::Timestamp(unit, _) => {
                let micros = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<TimestampSecondType>()
                        .value(row)
                        .checked_mul(1_000_000),
                    TimeUnit::Millisecond => array
                        .as_primitive::<TimestampMillisecondType>()
                        .value(row)
                        .checked_mul(1_000),
                    TimeUnit::Microsecond => {
                        Some(array.as_primitive::<TimestampMicrosecondType>().value(row))
                    }
                    TimeUnit::Nanosecond => Some(
                        array
                            .as_primitive::<TimestampNanosecondType>()
                            .value(row)
                            .div_euclid(1_000),
                    ),
                };
                let micros = micros
                    .and_then(|m| m.checked_sub(EPOCH_MICROS))
                    .ok_or("timestamp out of range")?;
                out.put_i64(micros);
            }
            other => return Err(format!("no Postgres type for Arrow type {other}").into()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Write the decimal `value / 10^scale` as a Postgres `numeric`: base-10000 digit groups aligned
/// on the decimal point, a weight (the power of 10000 of the first group) and the display scale.
fn numeric(value: i128, scale: u16, out: &mut BytesMut) {
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale);
    // Pad so the integer part has at least one digit, then align both parts on 4-digit groups.
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (integer, fraction) = padded.split_at(padded.len() - scale);
    let integer = format!("{integer:0>width$}", width = integer.len().div_ceil(4) * 4);
    let fraction = format!(
        "{fraction:0<width$}",
        width = fraction.len().div_ceil(4) * 4
    );
    let mut groups: Vec<i16> = integer
        .as_bytes()
        .chunks(4)
        .chain(fraction.as_bytes().chunks(4))
        .map(|chunk| {
            chunk
                .iter()
                .fold(0i16, |n, digit| n * 10 + i16::from(digit - b'0'))
        })
        .collect();
    let mut weight = i16::try_from(integer.len() / 4).unwrap_or(i16::MAX) - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if value < 0 { 0x4000 } else { 0 };
    out.put_i16(i16::try_from(groups.len()).unwrap_or(i16::MAX));
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(u16::try_from(scale).unwrap_or(u16::MAX));
    for group in groups {
        out.put_i16(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: i128, scale: u16) -> Vec<i16> {
        let mut out = BytesMut::new();
        numeric(value, scale, &mut out);
        out.chunks(2)
            .map(|pair| i16::from_be_bytes([pair[0], pair[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_groups_aligned_on_the_point() {
        // 12345.678: groups 1 | 2345 | 6780, weight 1, scale 3.
        assert_eq!(encoded(12_345_678, 3), vec![3, 1, 0, 3, 1, 2345, 6780]);
        // -0.05: one group 500 after the point, weight -1.
        assert_eq!(encoded(-5, 2), vec![1, -1, 0x4000, 2, 500]);
        // 0 with scale 2: no groups.
        assert_eq!(encoded(0, 2), vec![0, 0, 0, 2]);
        // 10000: one group 1 of weight 1.
        assert_eq!(encoded(10_000, 0), vec![1, 1, 0, 0, 1]);
    }

    #[test]
    fn types_are_named_as_format_type_names_them() {
        assert_eq!(
            postgres_type_of(&DataType::Decimal128(12, 2)).map(|t| t.0),
            Some("numeric(12,2)".to_string())
        );
        assert_eq!(
            postgres_type_of(&DataType::Int64).map(|t| t.0),
            Some("bigint".to_string())
        );
        assert!(postgres_type_of(&DataType::Binary).is_none());
    }
}

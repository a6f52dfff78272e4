//! Chain values in Postgres: addresses and hashes in `bytea` columns of exactly their width,
//! and unsigned integers in `numeric(78, 0)` (the width of a `uint256`).
//!
//! Each decodes or fails: a `bytea` of the wrong length or a `numeric` that is negative,
//! fractional, NaN or too large is a decode error (sqlx reports the column), never a panic
//! and never a value clamped to fit. Use them in `query!` overrides (`payee AS "payee:
//! SqlAddress"`) and as bind parameters.
//!
//! `numeric` crosses the connection in Postgres's binary format (base-10000 digits), so an
//! amount is neither rendered as text nor parsed back.

use alloy::primitives::{Address, B256, U256};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::{Decode, Encode, Type};

/// An address in a `bytea` column of 20 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlAddress(pub Address);

/// A 32-byte hash (a transaction, a block, a root, a batch) in a `bytea` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlB256(pub B256);

/// A `uint256` in a `numeric(78, 0)` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SqlU256(pub U256);

/// Why a column did not decode into a chain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlValueError {
    #[error("expected {expected} bytes, the column holds {actual}")]
    Length { expected: usize, actual: usize },
    #[error("numeric is negative, NaN or infinite")]
    NotUnsigned,
    #[error("numeric has a fractional part")]
    Fractional,
    #[error("numeric does not fit in {bits} bits")]
    Overflow { bits: u32 },
    #[error("malformed numeric value")]
    Malformed,
}

macro_rules! bytea {
    ($name:ident, $inner:ty, $len:expr) => {
        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <Vec<u8> as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <Vec<u8> as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <Vec<u8> as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&[u8] as Encode<Postgres>>::encode(self.0.as_slice(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let bytes = <&[u8] as Decode<Postgres>>::decode(value)?;
                let fixed = <$inner>::try_from(bytes).map_err(|_| SqlValueError::Length {
                    expected: $len,
                    actual: bytes.len(),
                })?;
                Ok(Self(fixed))
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $inner {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

bytea!(SqlAddress, Address, 20);
bytea!(SqlB256, B256, 32);

// The built-in type's object ids (`pg_type.oid`), fixed in every Postgres.
const NUMERIC: Oid = Oid(1700);
const NUMERIC_ARRAY: Oid = Oid(1231);

impl Type<Postgres> for SqlU256 {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC)
    }
}

impl PgHasArrayType for SqlU256 {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC_ARRAY)
    }
}

impl Encode<'_, Postgres> for SqlU256 {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        numeric::encode(self.0, buf);
        Ok(IsNull::No)
    }
}

impl<'r> Decode<'r, Postgres> for SqlU256 {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let value = match value.format() {
            PgValueFormat::Binary => numeric::decode(value.as_bytes()?)?,
            // Simple (unprepared) queries answer in text.
            PgValueFormat::Text => numeric::parse(value.as_str()?)?,
        };
        Ok(Self(value))
    }
}

impl From<U256> for SqlU256 {
    fn from(value: U256) -> Self {
        Self(value)
    }
}

impl From<SqlU256> for U256 {
    fn from(value: SqlU256) -> Self {
        value.0
    }
}

/// Postgres's binary `numeric`: four 16-bit words (digit count, weight of the first digit
/// as a power of 10,000, sign, display scale) and then the base-10,000 digits, most
/// significant first. Only non-negative integers are this module's business.
pub mod numeric {
    use alloy::primitives::U256;

    use super::SqlValueError;

    const BASE: u64 = 10_000;
    const POSITIVE: u16 = 0x0000;

    /// Appends `value` in the binary format.
    pub fn encode(value: U256, buf: &mut Vec<u8>) {
        // Least significant digit first while dividing; written the other way round.
        let mut digits: Vec<u16> = Vec::with_capacity(20);
        let mut rest = value;
        let base = U256::from(BASE);
        while !rest.is_zero() {
            let (quotient, remainder) = rest.div_rem(base);
            digits.push(remainder.to::<u16>());
            rest = quotient;
        }
        // Weight counts every digit; trailing zero digits need not be sent.
        let weight = digits.len().saturating_sub(1);
        let first_nonzero = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        let sent = &digits[first_nonzero..];
        // A uint256 has at most 20 base-10,000 digits, so these casts cannot truncate.
        buf.extend_from_slice(&(sent.len() as i16).to_be_bytes());
        buf.extend_from_slice(&(weight as i16).to_be_bytes());
        buf.extend_from_slice(&POSITIVE.to_be_bytes());
        buf.extend_from_slice(&0u16.to_be_bytes());
        for digit in sent.iter().rev() {
            buf.extend_from_slice(&digit.to_be_bytes());
        }
    }

    /// Reads the text form (`123`), refusing anything but a non-negative integer.
    pub fn parse(text: &str) -> Result<U256, SqlValueError> {
        if text.contains(['-', 'N', 'I', 'n', 'i']) {
            return Err(SqlValueError::NotUnsigned);
        }
        if text.contains('.') {
            let (whole, fraction) = text.split_once('.').ok_or(SqlValueError::Malformed)?;
            if fraction.bytes().any(|b| b != b'0') {
                return Err(SqlValueError::Fractional);
            }
            return parse(whole);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SqlValueError::Malformed);
        }
        U256::from_str_radix(text, 10).map_err(|_| SqlValueError::Overflow { bits: 256 })
    }

    /// Reads a non-negative integer, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<U256, SqlValueError> {
        let word = |i: usize| -> Result<u16, SqlValueError> {
            bytes
                .get(2 * i..2 * i + 2)
                .map(|w| u16::from_be_bytes([w[0], w[1]]))
                .ok_or(SqlValueError::Malformed)
        };
        let count = usize::from(word(0)?);
        let weight = i16::from_be_bytes(word(1)?.to_be_bytes());
        if word(2)? != POSITIVE {
            return Err(SqlValueError::NotUnsigned);
        }
        if bytes.len() != 8 + 2 * count {
            return Err(SqlValueError::Malformed);
        }
        if count == 0 {
            return Ok(U256::ZERO);
        }
        // Digits at positions past `weight` are fractional; Postgres strips trailing zero
        // digits, so any such digit makes the value fractional.
        let integer_digits = i32::from(weight) + 1;
        if integer_digits < count as i32 {
            return Err(SqlValueError::Fractional);
        }
        let overflow = SqlValueError::Overflow { bits: 256 };
        let mut value = U256::ZERO;
        let base = U256::from(BASE);
        for i in 0..count {
            let digit = word(4 + i)?;
            if u64::from(digit) >= BASE {
                return Err(SqlValueError::Malformed);
            }
            value = value
                .checked_mul(base)
                .and_then(|v| v.checked_add(U256::from(digit)))
                .ok_or_else(|| overflow.clone())?;
        }
        for _ in count as i32..integer_digits {
            value = value.checked_mul(base).ok_or_else(|| overflow.clone())?;
        }
        Ok(value)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn round_trip(value: U256) -> U256 {
            let mut buf = Vec::new();
            encode(value, &mut buf);
            decode(&buf).unwrap()
        }

        #[test]
        fn integers_round_trip() {
            for value in [0u128, 1, 9_999, 10_000, 10_001, 100_000_000, 2_000_000, u128::MAX] {
                assert_eq!(round_trip(U256::from(value)), U256::from(value));
            }
            assert_eq!(round_trip(U256::MAX), U256::MAX);
        }

        #[test]
        fn trailing_zero_digits_are_not_sent() {
            let mut buf = Vec::new();
            encode(U256::from(20_000_000u64), &mut buf);
            // 2000 0000: one digit sent, weight 1.
            assert_eq!(buf, [0, 1, 0, 1, 0, 0, 0, 0, 0x07, 0xd0]);
        }

        #[test]
        fn refuses_what_is_not_a_uint256() {
            // -1
            assert_eq!(
                decode(&[0, 1, 0, 0, 0x40, 0, 0, 0, 0, 1]),
                Err(SqlValueError::NotUnsigned)
            );
            // NaN
            assert_eq!(decode(&[0, 0, 0, 0, 0xc0, 0, 0, 0]), Err(SqlValueError::NotUnsigned));
            // 1.5: digits 1 and 5000 with weight 0.
            assert_eq!(
                decode(&[0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88]),
                Err(SqlValueError::Fractional)
            );
            // 10^80: one digit with weight 20.
            assert_eq!(
                decode(&[0, 1, 0, 20, 0, 0, 0, 0, 0, 1]),
                Err(SqlValueError::Overflow { bits: 256 })
            );
            // Truncated.
            assert_eq!(decode(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 1]), Err(SqlValueError::Malformed));
        }
    }
}

//! Money: token amounts (integers in the token's base units, never floats) and the
//! money core: escrow accounts of every kind, the double-entry ledger every earning posts
//! to, and the holds that keep what is owed out of epochs until it is due.
//!
//! [`Amount`] holds up to 2^128 - 1 base units, which is more than any real token supply and
//! lets sums of many amounts stay far below the contracts' `uint256`. On the wire an amount
//! is a decimal string (JSON numbers lose precision past 2^53); in Postgres it is a
//! `numeric`, sent in binary: a column value that is not a whole number of base units or
//! does not fit is a decode error, never clamped.

pub mod escrow;
pub mod holds;
pub mod ledger;
pub mod treasury;

use std::fmt;
use std::str::FromStr;

use adescrow_chain::sql::{SqlU256, SqlValueError, numeric};
use alloy::primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative amount of token base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub u128);

/// Why a string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a whole number of token base units, written as a decimal string")]
    NotAnInteger,
    #[error("exceeds the largest amount this system handles (2^128 - 1 base units)")]
    TooLarge,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }
}

impl sqlx::Type<sqlx::Postgres> for Amount {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <SqlU256 as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::postgres::PgHasArrayType for Amount {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <SqlU256 as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for Amount {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        numeric::encode(U256::from(self.0), buf);
        Ok(sqlx::encode::IsNull::No)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Amount {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let SqlU256(wide) = <SqlU256 as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        let narrow = u128::try_from(wide).map_err(|_| SqlValueError::Overflow { bits: 128 })?;
        Ok(Amount(narrow))
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotAnInteger);
        }
        s.parse::<u128>().map(Amount).map_err(|_| AmountError::TooLarge)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A decimal string schema; the patterns stop below 2^128 (`3[0-3]` then 37 digits at most)
/// so that every string they admit parses, and allow the leading zeros `parse` allows.
fn amount_schema(pattern: &str, description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples(["2500000"])
        .into()
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        amount_schema(
            "^0*([0-9]{1,38}|[1-2][0-9]{38}|3[0-3][0-9]{37})$",
            "An amount in the token's base units, as a decimal string.",
        )
    }
}

impl utoipa::ToSchema for Amount {}

/// Schema of an [`Amount`] that must be more than zero (budgets, prices).
#[derive(Debug)]
pub struct PositiveAmount;

impl utoipa::PartialSchema for PositiveAmount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        amount_schema(
            "^0*([1-9][0-9]{0,37}|[1-2][0-9]{38}|3[0-3][0-9]{37})$",
            "An amount in the token's base units, more than zero, as a decimal string.",
        )
    }
}

impl utoipa::ToSchema for PositiveAmount {}

/// Schema of a price per thousand impressions: more than zero and a multiple of 1,000, so
/// that one impression costs a whole base unit.
#[derive(Debug)]
pub struct CpmAmount;

impl utoipa::PartialSchema for CpmAmount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        amount_schema(
            "^0*([1-9][0-9]{0,34}|[1-2][0-9]{35}|3[0-3][0-9]{34})000$",
            "Token base units per thousand impressions: a multiple of 1000, more than zero, as a decimal string.",
        )
    }
}

impl utoipa::ToSchema for CpmAmount {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_integers_only() {
        assert_eq!("0".parse(), Ok(Amount(0)));
        assert_eq!("340282366920938463463374607431768211455".parse(), Ok(Amount(u128::MAX)));
        assert_eq!(
            "340282366920938463463374607431768211456".parse::<Amount>(),
            Err(AmountError::TooLarge)
        );
        for bad in ["", "-1", "1.5", "1e6", " 1", "+1", "0x10"] {
            assert_eq!(bad.parse::<Amount>(), Err(AmountError::NotAnInteger), "{bad:?}");
        }
    }

    #[test]
    fn round_trips_as_a_json_string() {
        let json = serde_json::to_string(&Amount(u128::MAX)).unwrap();
        assert_eq!(json, "\"340282366920938463463374607431768211455\"");
        assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), Amount(u128::MAX));
        assert!(
            serde_json::from_str::<Amount>("12").is_err(),
            "numbers are refused: they lose precision"
        );
    }
}

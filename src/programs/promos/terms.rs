//! A promotion's terms: its code, its offer (ad credit, fee discount, free trial) and the
//! limits on who may redeem it, each checked as it is parsed.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{PromoError, invalid};
use crate::money::Amount;
use crate::platform::values::{Bps, ValueError};
use crate::programs::codes;

/// What a generated code begins with.
pub const CODE_PREFIX: &str = "PROMO";

/// A promotion's code: 4 to 32 letters, digits and inner hyphens, upper case (typed in any
/// case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoCode(String);

impl PromoCode {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let code = value.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        let inner_ok = bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-');
        let ends_ok =
            bytes.first().is_some_and(u8::is_ascii_alphanumeric) && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
        if !(4..=32).contains(&bytes.len()) || !inner_ok || !ends_ok {
            return Err(ValueError::Refused("must be 4 to 32 letters, digits and inner hyphens"));
        }
        Ok(Self(code))
    }

    /// A fresh random code: `PROMO` and eight characters no one confuses.
    pub fn generate() -> Self {
        Self(codes::generate(CODE_PREFIX))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What kind of offer a promotion makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[schema(as = PromotionOfferKind)]
#[sqlx(type_name = "promo_offer", rename_all = "snake_case")]
#[serde(rename_all = "camelCase")]
pub enum OfferKind {
    AdCredit,
    FeeDiscount,
    FreeTrial,
}

/// What a promotion gives each redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
#[schema(as = PromotionOffer)]
pub enum Offer {
    /// Funds the redeemed campaign's escrow with `credit` (base units of the budget's
    /// token), paid from program budget `budget`.
    AdCredit {
        budget: Uuid,
        #[schema(value_type = crate::money::PositiveAmount)]
        credit: Amount,
    },
    /// Waives `bps` of the platform's fee on the redeemer's campaigns for `days` days.
    FeeDiscount {
        #[schema(minimum = 1, maximum = 10000)]
        bps: u32,
        #[schema(minimum = 1, maximum = 3650)]
        days: u32,
    },
    /// Waives the platform's fee on the redeemer's first `impressions` billed impressions.
    FreeTrial {
        #[schema(minimum = 1, maximum = 100000000)]
        impressions: u32,
    },
}

impl Offer {
    pub fn kind(&self) -> OfferKind {
        match self {
            Self::AdCredit { .. } => OfferKind::AdCredit,
            Self::FeeDiscount { .. } => OfferKind::FeeDiscount,
            Self::FreeTrial { .. } => OfferKind::FreeTrial,
        }
    }

    /// The offer's own bounds, refused naming the offer's member at fault.
    pub(super) fn check(&self) -> Result<(), PromoError> {
        match *self {
            Self::AdCredit { credit, .. } if credit.is_zero() => {
                Err(invalid("offer.credit", ValueError::Refused("must be more than zero")))
            }
            Self::FeeDiscount { bps, .. } if Bps::parse(bps).is_err() || bps == 0 => {
                Err(invalid("offer.bps", ValueError::OutOfRange { min: 1, max: 10_000 }))
            }
            Self::FeeDiscount { days, .. } if !(1..=3650).contains(&days) => {
                Err(invalid("offer.days", ValueError::OutOfRange { min: 1, max: 3650 }))
            }
            Self::FreeTrial { impressions } if !(1..=100_000_000).contains(&impressions) => Err(invalid(
                "offer.impressions",
                ValueError::OutOfRange {
                    min: 1,
                    max: 100_000_000,
                },
            )),
            _ => Ok(()),
        }
    }
}

/// Who may redeem, how often and on what.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// Redemptions in all; none for no cap.
    pub max_redemptions: Option<u32>,
    /// Redemptions per user (1 to 100).
    pub per_user: u32,
    /// Only advertisers none of whose campaigns was ever billed.
    pub first_time_only: bool,
    /// The token a redeemed campaign pays in (an ad credit's is its budget's).
    pub token: Option<Address>,
    /// What the advertiser itself must have funded the campaign with, in `token`.
    pub min_budget: Option<Amount>,
}

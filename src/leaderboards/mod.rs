//! Leaderboards: who earned, served, witnessed, spent, referred and sold the most, by day,
//! ISO week, calendar month and all time, in a declared time zone.
//!
//! Scores are integers (token base units or counts) kept per board in daily and period
//! rows that billing and the programs add to in the transaction that earns them
//! ([`tally`]), never recomputed from raw events per request. A score counts in the period
//! of the time it was booked, so a period that has ended never changes; the freezer
//! ([`store::freeze_ended`]) then records the hash of its final ranking. Ranks are read from
//! an in-memory ranking of each board ([`ranking`]), loaded once and refreshed in the
//! background, so a page and a caller's rank cost a lookup, not a scan of a million rows.
//!
//! Ranking is competition ranking with a deterministic order: higher scores first; equal
//! scores share a rank and are listed by address (ascending); the next rank skips.

pub mod periods;
pub mod prizes;
pub mod ranking;
pub mod store;
pub mod tally;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use periods::{Period, PeriodError, PeriodKind};

/// What a board ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "leaderboard_category", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Hosters' earnings (their share of billed events), in base units of a token.
    HosterEarnings,
    /// Billed impressions on hosters' nodes, a count.
    ImpressionsServed,
    /// Billed receipts a witness confirmed, a count.
    WitnessWork,
    /// Advertisers' billed spend, in base units of a token.
    AdvertiserSpend,
    /// Referrals that qualified for their referrer's bonus, a count.
    QualifiedReferrals,
    /// Sellers' marketplace sales (their share), in base units of a token.
    SellerSales,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Self::HosterEarnings,
        Self::ImpressionsServed,
        Self::WitnessWork,
        Self::AdvertiserSpend,
        Self::QualifiedReferrals,
        Self::SellerSales,
    ];

    /// Whether its scores are amounts of a token (a board per token) or counts.
    pub fn is_money(self) -> bool {
        matches!(self, Self::HosterEarnings | Self::AdvertiserSpend | Self::SellerSales)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::HosterEarnings => "hoster_earnings",
            Self::ImpressionsServed => "impressions_served",
            Self::WitnessWork => "witness_work",
            Self::AdvertiserSpend => "advertiser_spend",
            Self::QualifiedReferrals => "qualified_referrals",
            Self::SellerSales => "seller_sales",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|category| category.label() == text)
    }
}

/// One board: a category in a zone, for a token (money) or none (counts), over a period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Board {
    pub category: Category,
    pub zone: String,
    /// The zero address for counts.
    pub token: Address,
    pub period: Period,
}

/// The zones boards are kept in: UTC unless the platform declares others. Each score is
/// added once per declared zone, since a day in one zone is not a day in another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zones(Vec<(String, jiff::tz::TimeZone)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not an IANA time zone")]
pub struct UnknownZone(pub String);

impl Zones {
    /// The declared zones by IANA name; none means UTC alone.
    pub fn parse(names: &[String]) -> Result<Self, UnknownZone> {
        let mut zones: Vec<(String, jiff::tz::TimeZone)> = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let zone = crate::adserver::schedule::zone(name).ok_or_else(|| UnknownZone(name.to_owned()))?;
            if !zones.iter().any(|(declared, _)| declared == name) {
                zones.push((name.to_owned(), zone));
            }
        }
        if zones.is_empty() {
            zones.push(("UTC".to_owned(), jiff::tz::TimeZone::UTC));
        }
        Ok(Self(zones))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &jiff::tz::TimeZone)> {
        self.0.iter().map(|(name, zone)| (name.as_str(), zone))
    }

    /// The declared zone of this name.
    pub fn get(&self, name: &str) -> Option<&jiff::tz::TimeZone> {
        self.0
            .iter()
            .find(|(declared, _)| declared == name)
            .map(|(_, zone)| zone)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(name, _)| name.clone()).collect()
    }
}

impl Default for Zones {
    fn default() -> Self {
        Self(vec![("UTC".to_owned(), jiff::tz::TimeZone::UTC)])
    }
}

/// Why a board cannot be named so, naming the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("no such category: {0}")]
    UnknownCategory(String),
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error(transparent)]
    Zone(#[from] UnknownZone),
    #[error("boards are kept in {0}")]
    ZoneNotKept(String),
    #[error("this board is per token: name one")]
    TokenMissing,
    #[error("counts have no token")]
    TokenNotTaken,
}

impl BoardError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::UnknownCategory(_) => "category",
            Self::Period(PeriodError::UnknownKind) => "period",
            Self::Period(PeriodError::BadDate) => "date",
            Self::Zone(_) | Self::ZoneNotKept(_) => "zone",
            Self::TokenMissing | Self::TokenNotTaken => "token",
        }
    }
}

/// A board as a request names it: a category, a period kind and any date in it (today
/// when none), a declared zone (the first declared when none) and, for money, a token.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoardName<'a> {
    pub category: &'a str,
    pub period: Option<&'a str>,
    pub date: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub token: Option<Address>,
}

impl BoardName<'_> {
    pub fn resolve(&self, zones: &Zones, now: jiff::Timestamp) -> Result<Board, BoardError> {
        let category =
            Category::parse(self.category).ok_or_else(|| BoardError::UnknownCategory(self.category.to_owned()))?;
        let (zone_name, zone) = match self.zone {
            Some(name) => {
                crate::adserver::schedule::zone(name).ok_or_else(|| UnknownZone(name.to_owned()))?;
                let zone = zones
                    .get(name)
                    .ok_or_else(|| BoardError::ZoneNotKept(zones.names().join(", ")))?;
                (name.to_owned(), zone.clone())
            }
            None => zones
                .iter()
                .next()
                .map(|(name, zone)| (name.to_owned(), zone.clone()))
                .unwrap_or_else(|| ("UTC".to_owned(), jiff::tz::TimeZone::UTC)),
        };
        let token = match (category.is_money(), self.token) {
            (true, Some(token)) => token,
            (true, None) => return Err(BoardError::TokenMissing),
            (false, Some(_)) => return Err(BoardError::TokenNotTaken),
            (false, None) => Address::ZERO,
        };
        let period = Period::parse(self.period.unwrap_or("all"), self.date, now, &zone)?;
        Ok(Board {
            category,
            zone: zone_name,
            token,
            period,
        })
    }
}

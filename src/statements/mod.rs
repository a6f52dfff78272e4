//! Earnings statements: for every payee and calendar period (a month unless it asks for a
//! day or an ISO week) in the IANA zone it chooses, what it earned line by line (ad revenue
//! per node and placement, witness fees per node, viewer rewards, referral bonuses, commissions, sales,
//! refunds, adjustments), in base units per token, between an opening and a closing
//! balance; and where that money stands now (held, released, in an epoch, claimable,
//! claimed). The platform gets the same per token: its fees, what it moved to affiliates,
//! what its program budgets paid out, and the net.
//!
//! The ledger is the truth. The [`roller`] follows it by posting id into quarter-hour
//! buckets (every zone's offset is a whole number of quarter hours, so a local period is a
//! whole number of buckets) and UTC month totals, so a month's statement reads a few
//! thousand rows whatever the payee's volume; postings the roller has not reached yet are
//! read from the ledger itself, so a statement is never behind. Billing pays nothing for it.
//!
//! A posting counts in the period it was booked in. Once no posting can still be booked in
//! a period (the roller's *sealed* mark has passed its end), the period is closed: the first
//! read freezes its statement (the exact JSON served, with its keccak256) and every later
//! read serves those bytes. Corrections are postings of their own, so they appear in the
//! period they were booked in; one found booked in a closed period anyway is counted at the
//! sealed mark, in the next open period. The states are not frozen: they follow the ledger
//! and the chain.

pub mod csv;
pub mod read;
pub mod roller;
pub mod states;

use std::fmt;

use alloy::primitives::Address;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::leaderboards::{Period, PeriodError, PeriodKind};
use crate::money::escrow::EscrowKind;
use crate::money::ledger::{Party, Source};

/// A line of a statement: where money came from or went.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[sqlx(type_name = "statement_line", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// A hoster's share of billed events, per node.
    AdRevenue,
    /// A witness's share of the events it confirmed, per node.
    WitnessFees,
    /// A viewer's share of the events it saw holding consent.
    ViewerRewards,
    /// Bonuses for qualified referrals, from the referral program's budget.
    ReferralBonuses,
    /// Other payouts from a program budget (prizes, credits).
    ProgramRewards,
    /// An affiliate's commissions, moved out of the platform's share.
    Commissions,
    /// A reseller's markups, moved out of the platform's share of its advertisers' spend.
    ResellerMarkups,
    /// A seller's share of its sales.
    MarketplaceSales,
    /// What a buyer or an advertiser got back.
    Refunds,
    /// The platform's share of spend and sales.
    PlatformFees,
    /// What the platform moved to affiliates and resellers (negative).
    CommissionsPaid,
    /// What program budgets paid out: the platform's cost, kept under the zero address.
    ProgramSpend,
    /// Clawbacks, billing adjustments and reversed holds.
    Adjustments,
}

impl Line {
    pub fn label(self) -> &'static str {
        match self {
            Self::AdRevenue => "ad_revenue",
            Self::WitnessFees => "witness_fees",
            Self::ViewerRewards => "viewer_rewards",
            Self::ReferralBonuses => "referral_bonuses",
            Self::ProgramRewards => "program_rewards",
            Self::Commissions => "commissions",
            Self::ResellerMarkups => "reseller_markups",
            Self::MarketplaceSales => "marketplace_sales",
            Self::Refunds => "refunds",
            Self::PlatformFees => "platform_fees",
            Self::CommissionsPaid => "commissions_paid",
            Self::ProgramSpend => "program_spend",
            Self::Adjustments => "adjustments",
        }
    }
}

/// An amount of base units that may be negative (a clawback, what the platform paid out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Signed(pub i128);

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Signed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map(Signed).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Signed {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^-?[0-9]{1,39}$"))
            .description(Some(
                "Base units of the token, as a decimal string; negative when money went out.",
            ))
            .examples(["-2500000"])
            .into()
    }
}

impl utoipa::ToSchema for Signed {}

/// One ledger entry as the roller and the statement's tail read it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub source: Source,
    pub party: Party,
    pub payee: Option<Address>,
    pub escrow: Option<EscrowKind>,
    pub amount: i128,
    /// The batch's nodes, for postings of receipt batches.
    pub hoster_node: Option<Uuid>,
    pub witness_node: Option<Uuid>,
    /// The placement of a hoster's share of a receipt batch (its share is split by the
    /// placements of the batch's billed events).
    pub placement: Option<Uuid>,
}

/// Where an entry goes on statements: whose, which line, which node and placement (nil for
/// none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub payee: Address,
    pub line: Line,
    pub node: Uuid,
    pub placement: Uuid,
    pub amount: i128,
}

/// The statement line of a ledger entry, or none for the escrow side of spend (campaigns
/// and orders are their owners' money, not earnings). A hold's release moves an amount from
/// held to released within one line and nets to nothing; its reversal is an adjustment.
pub fn place(entry: &Entry) -> Option<Placed> {
    let Some(payee) = entry.payee else {
        return (entry.party == Party::Escrow && entry.escrow == Some(EscrowKind::Program)).then(|| Placed {
            payee: Address::ZERO,
            line: Line::ProgramSpend,
            node: Uuid::nil(),
            placement: Uuid::nil(),
            amount: -entry.amount,
        });
    };
    let (line, node) = match (entry.source, entry.party) {
        (Source::Adjustment | Source::Clawback | Source::Hold, _) => (Line::Adjustments, None),
        (_, Party::Hoster) => (Line::AdRevenue, entry.hoster_node),
        (_, Party::Witness) => (Line::WitnessFees, entry.witness_node),
        (_, Party::Viewer) => (Line::ViewerRewards, None),
        (_, Party::Referrer) => (Line::ReferralBonuses, None),
        (Source::Program, _) | (_, Party::Winner | Party::Treasury) => (Line::ProgramRewards, None),
        (_, Party::Affiliate) => (Line::Commissions, None),
        (_, Party::Reseller) => (Line::ResellerMarkups, None),
        (_, Party::Seller) => (Line::MarketplaceSales, None),
        (_, Party::Buyer | Party::Advertiser) => (Line::Refunds, None),
        (Source::Transfer, Party::Platform) => (Line::CommissionsPaid, None),
        (_, Party::Platform) => (Line::PlatformFees, None),
        // An escrow entry never names a payee (a table constraint).
        (_, Party::Escrow) => return None,
    };
    let placement = if line == Line::AdRevenue { entry.placement } else { None };
    Some(Placed {
        payee,
        line,
        node: node.unwrap_or_else(Uuid::nil),
        placement: placement.unwrap_or_else(Uuid::nil),
        amount: entry.amount,
    })
}

/// A statement's period: a local day, ISO week or calendar month in an IANA zone.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementPeriod {
    pub period: Period,
    pub zone_name: String,
    pub zone: TimeZone,
}

/// Why a period cannot be named so, naming the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodNameError {
    #[error("a statement's period is day, week or month")]
    Kind,
    #[error("a date is YYYY-MM-DD")]
    Date,
    #[error("{0} is not an IANA time zone")]
    Zone(String),
}

impl PeriodNameError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::Kind => "period",
            Self::Date => "date",
            Self::Zone(_) => "zone",
        }
    }
}

impl StatementPeriod {
    /// A period as the API names it: a kind (`month` when none), any local date in it
    /// (today when none) and an IANA zone (UTC when none).
    pub fn parse(
        kind: Option<&str>,
        date: Option<&str>,
        zone: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<Self, PeriodNameError> {
        let zone_name = zone.unwrap_or("UTC");
        let tz =
            crate::adserver::schedule::zone(zone_name).ok_or_else(|| PeriodNameError::Zone(zone_name.to_owned()))?;
        let kind = kind.unwrap_or("month");
        if PeriodKind::parse(kind) == Some(PeriodKind::All) {
            return Err(PeriodNameError::Kind);
        }
        let period = Period::parse(kind, date, now, &tz).map_err(|error| match error {
            PeriodError::UnknownKind => PeriodNameError::Kind,
            PeriodError::BadDate => PeriodNameError::Date,
        })?;
        Ok(Self {
            period,
            // The zone's canonical name, so `utc` and `UTC` are one statement.
            zone_name: tz.iana_name().unwrap_or(zone_name).to_owned(),
            zone: tz,
        })
    }

    /// Its first instant.
    pub fn starts_at(&self) -> jiff::Timestamp {
        crate::adserver::schedule::start_of_day(self.period.starts_on, &self.zone)
    }

    /// The first instant after it.
    pub fn ends_at(&self) -> jiff::Timestamp {
        self.period.ends_at(&self.zone).unwrap_or(jiff::Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: Source, party: Party, amount: i128) -> Entry {
        Entry {
            source,
            party,
            payee: Some(Address::repeat_byte(7)),
            escrow: None,
            amount,
            hoster_node: Some(Uuid::from_u128(1)),
            witness_node: Some(Uuid::from_u128(2)),
            placement: Some(Uuid::from_u128(3)),
        }
    }

    #[test]
    fn entries_go_to_the_line_of_their_source_and_party() {
        let hoster = place(&entry(Source::ReceiptBatch, Party::Hoster, 10)).unwrap();
        assert_eq!(
            (hoster.line, hoster.node, hoster.placement),
            (Line::AdRevenue, Uuid::from_u128(1), Uuid::from_u128(3))
        );
        let witness = place(&entry(Source::ReceiptBatch, Party::Witness, 10)).unwrap();
        assert_eq!(
            (witness.line, witness.node, witness.placement),
            (Line::WitnessFees, Uuid::from_u128(2), Uuid::nil()),
            "only ad revenue is per placement"
        );
        let paid = place(&entry(Source::Transfer, Party::Platform, -5)).unwrap();
        assert_eq!((paid.line, paid.amount), (Line::CommissionsPaid, -5));
        let clawed = place(&entry(Source::Clawback, Party::Referrer, -5)).unwrap();
        assert_eq!((clawed.line, clawed.node), (Line::Adjustments, Uuid::nil()));
        assert_eq!(
            place(&entry(Source::Program, Party::Viewer, 3)).unwrap().line,
            Line::ViewerRewards
        );
        assert_eq!(
            place(&entry(Source::Program, Party::Seller, 3)).unwrap().line,
            Line::ProgramRewards
        );
    }

    #[test]
    fn only_program_budgets_of_the_escrow_side_are_placed() {
        let mut spend = entry(Source::Program, Party::Escrow, -40);
        spend.payee = None;
        assert_eq!(place(&spend), None, "an escrow of unknown kind is no statement's");
        spend.escrow = Some(EscrowKind::Campaign);
        assert_eq!(place(&spend), None);
        spend.escrow = Some(EscrowKind::Program);
        let placed = place(&spend).unwrap();
        assert_eq!(
            (placed.payee, placed.line, placed.amount),
            (Address::ZERO, Line::ProgramSpend, 40)
        );
    }

    #[test]
    fn periods_default_to_a_utc_month_and_refuse_all_time() {
        let now: jiff::Timestamp = "2026-03-15T12:00:00Z".parse().unwrap();
        let month = StatementPeriod::parse(None, None, None, now).unwrap();
        assert_eq!(month.period.kind, PeriodKind::Month);
        assert_eq!(month.starts_at().to_string(), "2026-03-01T00:00:00Z");
        assert_eq!(
            StatementPeriod::parse(Some("all"), None, None, now),
            Err(PeriodNameError::Kind)
        );
        assert_eq!(
            StatementPeriod::parse(None, Some("2026-02-30"), None, now),
            Err(PeriodNameError::Date)
        );
        assert_eq!(
            StatementPeriod::parse(None, None, Some("Mars/Olympus"), now)
                .unwrap_err()
                .field(),
            "zone"
        );
    }

    #[test]
    fn a_month_across_a_dst_change_is_bounded_by_local_midnights() {
        let now: jiff::Timestamp = "2026-03-15T12:00:00Z".parse().unwrap();
        let march = StatementPeriod::parse(Some("month"), Some("2026-03-29"), Some("Europe/Berlin"), now).unwrap();
        // Berlin is UTC+1 on 1 March and UTC+2 from 29 March.
        assert_eq!(march.starts_at().to_string(), "2026-02-28T23:00:00Z");
        assert_eq!(march.ends_at().to_string(), "2026-03-31T22:00:00Z");
    }
}

//! Badges: a catalog of badges in tiers, each judged on one measure of authoritative state
//! (billing's counts, the ledger, the marketplace, the chain mirror), awarded and revoked
//! by the badge job ([`job`]) and shown publicly per user.
//!
//! A measure is a count, so thresholds mean the same in every token. A tier is held while
//! its measure is at or above its threshold: the job awards it (once: unique per user,
//! badge and tier) and revokes it with the reason when the measure falls below again (a
//! refund, a reversed bonus, a revoked consent), and awards it again if the measure comes
//! back. The catalog is versioned: a change of thresholds is a new [`RULE_VERSION`], and
//! each award records the version it was judged under.

pub mod job;
pub mod reads;

use serde::Serialize;
use utoipa::ToSchema;

/// The catalog's version: raise it with any change to the thresholds below.
pub const RULE_VERSION: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "badge", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Badge {
    Serving,
    Witnessing,
    Spend,
    Referrals,
    Sales,
    Consent,
    Rewards,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "badge_tier", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
    Platinum,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Self::Bronze, Self::Silver, Self::Gold, Self::Platinum];
}

/// One badge of the catalog: what it counts and the threshold of each tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub badge: Badge,
    /// What the measure counts.
    pub measure: &'static str,
    /// Bronze, silver, gold and platinum.
    pub thresholds: [i64; 4],
}

pub const CATALOG: [Definition; 7] = [
    Definition {
        badge: Badge::Serving,
        measure: "billed impressions served on your nodes, all time",
        thresholds: [1_000, 10_000, 100_000, 1_000_000],
    },
    Definition {
        badge: Badge::Witnessing,
        measure: "billed receipts your witness nodes confirmed, all time",
        thresholds: [1_000, 10_000, 100_000, 1_000_000],
    },
    Definition {
        badge: Badge::Spend,
        measure: "your campaigns that have billed spend",
        thresholds: [1, 5, 20, 100],
    },
    Definition {
        badge: Badge::Referrals,
        measure: "qualified referrals your standing referral bonuses were paid for",
        thresholds: [1, 5, 25, 100],
    },
    Definition {
        badge: Badge::Sales,
        measure: "your marketplace sales paid and not refunded",
        thresholds: [1, 10, 100, 1_000],
    },
    Definition {
        badge: Badge::Consent,
        measure: "consent scopes your wallet holds on chain now",
        thresholds: [1, 2, 4, 8],
    },
    Definition {
        badge: Badge::Rewards,
        measure: "days on which you earned viewer rewards",
        thresholds: [1, 7, 30, 180],
    },
];

impl Badge {
    pub fn definition(self) -> &'static Definition {
        // The catalog lists every badge once, in declaration order.
        &CATALOG[self as usize]
    }
}

impl Definition {
    /// The tiers a measure earns, lowest first.
    pub fn tiers_held(&self, value: i64) -> impl Iterator<Item = Tier> + '_ {
        Tier::ALL
            .into_iter()
            .zip(self.thresholds)
            .filter(move |(_, threshold)| value >= *threshold)
            .map(|(tier, _)| tier)
    }

    /// The next tier and its threshold, if any is left.
    pub fn next(&self, value: i64) -> Option<(Tier, i64)> {
        Tier::ALL
            .into_iter()
            .zip(self.thresholds)
            .find(|(_, threshold)| value < *threshold)
    }

    pub fn threshold(&self, tier: Tier) -> i64 {
        self.thresholds[tier as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_each_badge_once_with_rising_thresholds() {
        for (index, definition) in CATALOG.iter().enumerate() {
            assert_eq!(definition.badge as usize, index);
            assert!(definition.thresholds.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(definition.thresholds[0] > 0, "a measure of zero holds nothing");
        }
    }

    #[test]
    fn a_measure_holds_the_tiers_it_reaches_and_names_the_next() {
        let sales = Badge::Sales.definition();
        assert_eq!(sales.tiers_held(0).count(), 0);
        assert_eq!(sales.tiers_held(10).collect::<Vec<_>>(), [Tier::Bronze, Tier::Silver]);
        assert_eq!(sales.next(10), Some((Tier::Gold, 100)));
        assert_eq!(sales.next(1_000), None);
    }
}

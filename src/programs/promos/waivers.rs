//! Fee waivers as billing applies them: a redeemed fee discount or free trial lowers the
//! price an advertiser's billed event costs by the part of the platform's fee it waives.
//! The platform's fee here is what the platform keeps of the event (its share after the
//! viewer's reward), so the hoster, the witness and the viewer are paid as without it.
//!
//! Billing loads the live waivers of a batch's advertisers ([`Waivers::load`]), asks for
//! each event what is waived ([`Waivers::quote`]), takes it once the event is billed
//! ([`Waivers::take`]), records it with the batch ([`Waivers::record`]) and counts the
//! trials' impressions last ([`Waivers::count_trials`]). A trial's
//! impressions are counted with one conditional update per redemption, so concurrent
//! batches never waive more impressions than it gives: a batch that finds them taken starts
//! over, as it does when another batch spent a budget it counted on.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::Address;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::adserver::pricing::EventType;
use crate::billing::split::WHOLE;
use crate::money::Amount;

/// One live waiver of an advertiser.
#[derive(Debug, Clone)]
struct Live {
    redemption: Uuid,
    kind: LiveKind,
}

#[derive(Debug, Clone)]
enum LiveKind {
    /// `bps` of the fee, on events from `from` until `until` (unix seconds).
    Discount { bps: u32, from: i64, until: i64 },
    /// The whole fee, on this many more impressions.
    Trial { left: u32 },
}

/// What one event's waiver comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waived {
    pub redemption: Uuid,
    pub amount: Amount,
    trial: bool,
}

/// What a batch waived under one redemption in one token.
#[derive(Debug, Clone, Copy, Default)]
struct Used {
    events: i32,
    impressions: i32,
    waived: u128,
}

/// The live waivers of a batch's advertisers, and what the batch took of them.
#[derive(Debug, Default)]
pub struct Waivers {
    by_advertiser: HashMap<Uuid, Vec<Live>>,
    used: BTreeMap<(Uuid, Address), Used>,
}

impl Waivers {
    /// The waivers of `advertisers` that can apply to events at or after `since`: discounts
    /// not over by then, trials with impressions left.
    pub async fn load(
        conn: &mut PgConnection,
        advertisers: &[Uuid],
        since: OffsetDateTime,
    ) -> Result<Self, sqlx::Error> {
        let rows = sqlx::query!(
            r#"SELECT id, user_id, discount_bps, redeemed_at, discount_until,
                      trial_impressions - trial_used AS "trial_left"
               FROM promo_redemptions
               WHERE user_id = ANY($1) AND offer <> 'ad_credit'
                 AND (discount_until > $2 OR trial_used < trial_impressions)
               ORDER BY redeemed_at, id"#,
            advertisers,
            since
        )
        .fetch_all(conn)
        .await?;
        let mut by_advertiser: HashMap<Uuid, Vec<Live>> = HashMap::new();
        for row in rows {
            let kind = match (row.discount_bps, row.discount_until, row.trial_left) {
                (Some(bps), Some(until), _) => LiveKind::Discount {
                    bps: u32::try_from(bps).unwrap_or_default().min(WHOLE),
                    from: row.redeemed_at.unix_timestamp(),
                    until: until.unix_timestamp(),
                },
                (_, _, Some(left)) => LiveKind::Trial {
                    left: u32::try_from(left).unwrap_or_default(),
                },
                _ => continue,
            };
            by_advertiser.entry(row.user_id).or_default().push(Live {
                redemption: row.id,
                kind,
            });
        }
        Ok(Self {
            by_advertiser,
            used: BTreeMap::new(),
        })
    }

    /// What is waived on `advertiser`'s `event` at `at` (unix seconds), whose platform fee
    /// is `fee`, of a `price`: a trial's whole fee on an impression while it has some left,
    /// else the best discount running at `at`. Never the whole price: a billed event costs
    /// at least one base unit.
    pub fn quote(&self, advertiser: Uuid, event: EventType, at: i64, fee: Amount, price: Amount) -> Option<Waived> {
        let live = self.by_advertiser.get(&advertiser)?;
        let ceiling = Amount(fee.0.min(price.0.saturating_sub(1)));
        let trial = live
            .iter()
            .find(|w| event == EventType::Impression && matches!(w.kind, LiveKind::Trial { left } if left > 0));
        let (redemption, amount, trial) = match trial {
            Some(waiver) => (waiver.redemption, ceiling, true),
            None => {
                let (redemption, bps) = live
                    .iter()
                    .filter_map(|w| match w.kind {
                        LiveKind::Discount { bps, from, until } if from <= at && at < until => {
                            Some((w.redemption, bps))
                        }
                        _ => None,
                    })
                    .max_by_key(|(_, bps)| *bps)?;
                let share = Amount(
                    fee.0 / u128::from(WHOLE) * u128::from(bps)
                        + fee.0 % u128::from(WHOLE) * u128::from(bps) / u128::from(WHOLE),
                );
                (redemption, share.min(ceiling), false)
            }
        };
        (!amount.is_zero() || trial).then_some(Waived {
            redemption,
            amount,
            trial,
        })
    }

    /// Takes a quoted waiver of a billed event in `token`.
    pub fn take(&mut self, advertiser: Uuid, token: Address, waived: Waived) {
        if waived.trial
            && let Some(live) = self
                .by_advertiser
                .get_mut(&advertiser)
                .and_then(|live| live.iter_mut().find(|w| w.redemption == waived.redemption))
            && let LiveKind::Trial { left } = &mut live.kind
        {
            *left = left.saturating_sub(1);
        }
        let used = self.used.entry((waived.redemption, token)).or_default();
        used.events += 1;
        used.impressions += i32::from(waived.trial);
        used.waived += waived.amount.0;
    }

    /// Records what batch `batch_id` waived, per redemption and token. No other batch
    /// writes these rows, so this goes before the rows batches contend for.
    pub async fn record(&self, conn: &mut PgConnection, batch_id: i64) -> Result<(), sqlx::Error> {
        if self.used.is_empty() {
            return Ok(());
        }
        let mut redemptions = Vec::with_capacity(self.used.len());
        let mut tokens = Vec::with_capacity(self.used.len());
        let mut events = Vec::with_capacity(self.used.len());
        let mut impressions = Vec::with_capacity(self.used.len());
        let mut waived = Vec::with_capacity(self.used.len());
        for ((redemption, token), used) in &self.used {
            redemptions.push(*redemption);
            tokens.push(token.to_vec());
            events.push(used.events);
            impressions.push(used.impressions);
            waived.push(Amount(used.waived));
        }
        sqlx::query!(
            "INSERT INTO promo_waivers (batch_id, redemption_id, token, events, impressions, waived)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::bytea[], $4::int[], $5::int[], $6::numeric[])",
            batch_id,
            &redemptions,
            &tokens,
            &events,
            &impressions,
            &waived as &[Amount]
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Counts the trials' impressions the batch took, each trial by one conditional update.
    /// `false` when a concurrent batch took impressions this one counted on (the caller
    /// starts over). Concurrent batches of one advertiser share its trial's row, so this
    /// goes last, holding the row for no longer than the commit.
    pub async fn count_trials(&self, conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
        let mut trials: BTreeMap<Uuid, i32> = BTreeMap::new();
        for ((redemption, _), used) in &self.used {
            if used.impressions > 0 {
                *trials.entry(*redemption).or_default() += used.impressions;
            }
        }
        if trials.is_empty() {
            return Ok(true);
        }
        // In id order, because rows are locked in the order they are updated.
        let (ids, counts): (Vec<Uuid>, Vec<i32>) = trials.into_iter().unzip();
        let counted = sqlx::query!(
            "UPDATE promo_redemptions r SET trial_used = r.trial_used + u.n
             FROM UNNEST($1::uuid[], $2::int[]) AS u(id, n)
             WHERE r.id = u.id AND r.trial_used + u.n <= r.trial_impressions",
            &ids,
            &counts
        )
        .execute(conn)
        .await?;
        Ok(counted.rows_affected() == ids.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waivers(advertiser: Uuid, live: Vec<Live>) -> Waivers {
        Waivers {
            by_advertiser: HashMap::from([(advertiser, live)]),
            used: BTreeMap::new(),
        }
    }

    #[test]
    fn a_trial_waives_the_whole_fee_on_impressions_only_while_it_lasts() {
        let (advertiser, redemption) = (Uuid::new_v4(), Uuid::new_v4());
        let mut w = waivers(
            advertiser,
            vec![Live {
                redemption,
                kind: LiveKind::Trial { left: 2 },
            }],
        );
        let fee = Amount(100);
        let price = Amount(1_000);
        assert_eq!(
            w.quote(advertiser, EventType::Click, 0, fee, price),
            None,
            "clicks are not impressions"
        );
        for _ in 0..2 {
            let waived = w.quote(advertiser, EventType::Impression, 0, fee, price).unwrap();
            assert_eq!(waived.amount, fee);
            w.take(advertiser, Address::ZERO, waived);
        }
        assert_eq!(
            w.quote(advertiser, EventType::Impression, 0, fee, price),
            None,
            "used up"
        );
        let used = w.used[&(redemption, Address::ZERO)];
        assert_eq!((used.events, used.impressions, used.waived), (2, 2, 200));
        assert_eq!(
            w.quote(Uuid::new_v4(), EventType::Impression, 0, fee, price),
            None,
            "another advertiser"
        );
    }

    #[test]
    fn the_best_running_discount_applies_and_never_the_whole_price() {
        let advertiser = Uuid::new_v4();
        let discount = |bps, from, until| Live {
            redemption: Uuid::new_v4(),
            kind: LiveKind::Discount { bps, from, until },
        };
        let w = waivers(advertiser, vec![discount(2_500, 0, 100), discount(5_000, 50, 200)]);
        let quote = |at, fee, price| {
            w.quote(advertiser, EventType::Click, at, Amount(fee), Amount(price))
                .map(|w| w.amount.0)
        };
        assert_eq!(quote(10, 1_000, 10_000), Some(250));
        assert_eq!(quote(60, 1_000, 10_000), Some(500), "the larger of two running");
        assert_eq!(quote(150, 999, 10_000), Some(499), "rounded down");
        assert_eq!(quote(200, 1_000, 10_000), None, "over");
        assert_eq!(quote(-1, 1_000, 10_000), None, "before its redemption");
        assert_eq!(quote(60, 10, 10), Some(5));
        let all = waivers(advertiser, vec![discount(10_000, 0, 100)]);
        assert_eq!(
            all.quote(advertiser, EventType::Click, 0, Amount(7), Amount(7))
                .map(|w| w.amount.0),
            Some(6),
            "a billed event costs at least one unit"
        );
    }
}

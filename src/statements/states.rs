//! Where a period's earnings stand now, derived from the ledger and the chain mirror, never
//! stored: held (why, until when), released (in no epoch yet), in epoch N (waiting for its
//! challenge window), claimable, claimed (and by which transaction).
//!
//! Leaves are cumulative, so money is paid first earned, first paid: a payee's released
//! earnings line up in the order they were booked, and the marks of the chain (what its
//! claims took, the activated leaf, a newer leaf in its window) cut that line. A period's
//! released earnings are the stretch of the line after everything released before it.

use std::collections::BTreeMap;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256};
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::roller::parse_signed;
use crate::money::Amount;
use crate::money::holds::HoldReason;

/// One token's states of a period's earnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenStates {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Earned in the period and still held: how much, why, until when.
    pub held: Vec<HeldAmount>,
    /// Released, but in no epoch yet.
    pub released: Amount,
    /// In an epoch whose challenge window has not passed.
    pub in_epoch: Option<EpochAmount>,
    /// In the chain's current root and not claimed yet.
    pub claimable: Amount,
    /// Claimed on chain.
    pub claimed: Amount,
    /// The payee's latest claim.
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub claimed_tx: Option<B256>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldAmount {
    pub amount: Amount,
    pub reason: HoldReason,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpochAmount {
    pub epoch: u64,
    pub amount: Amount,
    /// Unix seconds from which claims may use it; none until the settlement is on chain.
    pub claimable_at: Option<i64>,
}

/// The chain's marks on one token's line of a payee's cumulative earnings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// What its claims took.
    pub claimed: u128,
    pub claimed_tx: Option<B256>,
    /// The leaf of the chain's current root.
    pub claimable: u128,
    /// The leaf of a newer epoch still in its window.
    pub pending: Option<(u64, u128, Option<i64>)>,
}

/// How much of the stretch `[start, start + len)` of the line lies in `[lo, hi)`.
fn overlap(start: i128, len: i128, lo: u128, hi: u128) -> Amount {
    let (lo, hi) = (lo.min(i128::MAX as u128) as i128, hi.min(i128::MAX as u128) as i128);
    let end = start.saturating_add(len);
    Amount((end.min(hi) - start.max(lo)).max(0) as u128)
}

/// Splits a period's released earnings (`released`, after `before` released earlier) by the
/// chain's marks. Nothing is split when the period's released earnings are not positive (a
/// period of clawbacks).
pub fn split(token: Address, before: i128, released: i128, marks: &Marks, held: Vec<HeldAmount>) -> TokenStates {
    let before = before.max(0);
    let len = released.max(0);
    let claimable_mark = marks.claimable.max(marks.claimed);
    let claimed = overlap(before, len, 0, marks.claimed);
    let claimable = overlap(before, len, marks.claimed, claimable_mark);
    let in_epoch = marks.pending.and_then(|(epoch, leaf, claimable_at)| {
        let amount = overlap(before, len, claimable_mark, leaf.max(claimable_mark));
        (!amount.is_zero()).then_some(EpochAmount {
            epoch,
            amount,
            claimable_at,
        })
    });
    let placed = claimed.0 + claimable.0 + in_epoch.map_or(0, |e| e.amount.0);
    TokenStates {
        token,
        held,
        released: Amount((len as u128).saturating_sub(placed)),
        in_epoch,
        claimable,
        claimed,
        claimed_tx: marks.claimed_tx.filter(|_| !claimed.is_zero()),
    }
}

/// A payee's open holds per token, with when the posting that created each was booked.
pub(super) struct OpenHold {
    pub posted_at: OffsetDateTime,
    pub held: HeldAmount,
}

pub(super) async fn open_holds(
    conn: &mut PgConnection,
    payee: Address,
) -> Result<BTreeMap<Address, Vec<OpenHold>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.token AS "token: SqlAddress", p.posted_at, sum(e.amount)::text AS "amount!",
                  h.reason AS "reason: HoldReason", h.until, h.note
           FROM ledger_entries e
           JOIN ledger_holds h ON h.id = e.hold_id
           JOIN ledger_postings p ON p.id = h.posting_id
           WHERE e.payee = $1 AND e.hold_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id)
           GROUP BY p.token, h.id, p.posted_at
           HAVING sum(e.amount) > 0
           ORDER BY h.id"#,
        payee.as_slice()
    )
    .fetch_all(conn)
    .await?;
    let mut holds: BTreeMap<Address, Vec<OpenHold>> = BTreeMap::new();
    for row in rows {
        holds.entry(row.token.0).or_default().push(OpenHold {
            posted_at: row.posted_at,
            held: HeldAmount {
                amount: Amount(parse_signed(&row.amount)?.max(0) as u128),
                reason: row.reason,
                until: row.until,
                note: row.note,
            },
        });
    }
    Ok(holds)
}

/// The chain's marks for each token of a payee: its latest claim, its leaf in the current
/// root, and its leaf in a newer epoch still in its challenge window.
pub(super) async fn marks(
    conn: &mut PgConnection,
    chain_id: u64,
    payee: Address,
) -> Result<BTreeMap<Address, Marks>, sqlx::Error> {
    let chain = chain_id as i64;
    let leaves = sqlx::query!(
        r#"WITH current AS (
               SELECT epoch FROM settlement_epochs
               WHERE chain_id = $1 AND activated_at IS NOT NULL ORDER BY epoch DESC LIMIT 1
           ), waiting AS (
               SELECT s.epoch, m.claimable_at FROM settlement_epochs s
               LEFT JOIN mirror_settlements m ON m.chain_id = s.chain_id AND m.epoch = s.epoch AND m.root = s.root
               WHERE s.chain_id = $1 AND s.root IS NOT NULL AND s.activated_at IS NULL
               ORDER BY s.epoch DESC LIMIT 1
           )
           SELECT l.token AS "token: SqlAddress", l.epoch, l.cumulative::text AS "cumulative!",
                  coalesce(l.epoch = (SELECT epoch FROM current), false) AS "current!", w.claimable_at AS "claimable_at?"
           FROM payout_leaves l
           LEFT JOIN waiting w ON w.epoch = l.epoch
           WHERE l.chain_id = $1 AND l.account = $2
             AND (l.epoch = (SELECT epoch FROM current) OR l.epoch = (SELECT epoch FROM waiting))"#,
        chain,
        payee.as_slice()
    )
    .fetch_all(&mut *conn)
    .await?;
    let claims = sqlx::query!(
        r#"SELECT i.token AS "token: SqlAddress", c.cumulative_amount::text AS "cumulative!",
                  c.tx_hash AS "tx: SqlB256"
           FROM payout_indexes i
           JOIN LATERAL (
               SELECT cumulative_amount, tx_hash FROM mirror_claims
               WHERE chain_id = $1 AND leaf_index = i.leaf_index
               ORDER BY block_number DESC, log_index DESC LIMIT 1) c ON true
           WHERE i.chain_id = $1 AND i.account = $2"#,
        chain,
        payee.as_slice()
    )
    .fetch_all(conn)
    .await?;
    let mut marks: BTreeMap<Address, Marks> = BTreeMap::new();
    for row in leaves {
        let cumulative = parse_signed(&row.cumulative)?.max(0) as u128;
        let mark = marks.entry(row.token.0).or_default();
        if row.current {
            mark.claimable = cumulative;
        } else {
            mark.pending = Some((row.epoch as u64, cumulative, row.claimable_at));
        }
    }
    for row in claims {
        let mark = marks.entry(row.token.0).or_default();
        mark.claimed = parse_signed(&row.cumulative)?.max(0) as u128;
        mark.claimed_tx = Some(row.tx.0);
    }
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_split_where_the_chain_marks_fall() {
        let token = Address::repeat_byte(1);
        let marks = Marks {
            claimed: 150,
            claimed_tx: Some(B256::repeat_byte(9)),
            claimable: 220,
            pending: Some((4, 260, Some(1_000))),
        };
        // Earlier periods released 100; this one released 200: [100, 300).
        let states = split(token, 100, 200, &marks, Vec::new());
        assert_eq!(states.claimed, Amount(50));
        assert_eq!(states.claimable, Amount(70));
        assert_eq!(
            states.in_epoch,
            Some(EpochAmount {
                epoch: 4,
                amount: Amount(40),
                claimable_at: Some(1_000)
            })
        );
        assert_eq!(states.released, Amount(40));
        assert_eq!(states.claimed_tx, Some(B256::repeat_byte(9)));
    }

    #[test]
    fn a_period_past_every_mark_is_only_released_and_a_negative_one_is_not_split() {
        let token = Address::repeat_byte(1);
        let marks = Marks {
            claimed: 100,
            claimed_tx: Some(B256::repeat_byte(9)),
            claimable: 100,
            pending: None,
        };
        let states = split(token, 100, 30, &marks, Vec::new());
        assert_eq!(
            (states.claimed, states.claimable, states.released),
            (Amount::ZERO, Amount::ZERO, Amount(30))
        );
        assert_eq!(states.claimed_tx, None, "no claim took this period's money");
        let clawed = split(token, 100, -30, &marks, Vec::new());
        assert_eq!(clawed.released, Amount::ZERO);
    }
}

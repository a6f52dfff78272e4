//! Release: held commissions whose hold is over and whose spend is settled on chain, once
//! the affiliate's due commissions in a token reach the minimum payout.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;

use crate::money::Amount;
use crate::money::holds::{self, Ending, HoldError};
use crate::programs::affiliates::{AffiliateError, Terms};

/// Releases the commissions that are due: past their hold, their spend settled and past
/// its challenge window, and the affiliate's due ones in the token at least the minimum
/// payout. Each in its own transaction; returns how many were released.
pub async fn release_due(
    db: &PgPool,
    chain_id: u64,
    terms: &Terms,
    now: OffsetDateTime,
) -> Result<usize, AffiliateError> {
    let due = sqlx::query!(
        r#"SELECT h.id, p.token AS "token: SqlAddress", e.payee AS "payee!: SqlAddress", e.amount AS "amount!: Amount"
           FROM ledger_holds h
           JOIN ledger_postings p ON p.id = h.posting_id
           JOIN ledger_entries e ON e.hold_id = h.id AND e.posting_id = h.posting_id AND e.role = 'affiliate'
           WHERE h.reason = 'commission_hold' AND h.until <= $1
             AND NOT EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id)
             AND EXISTS (SELECT 1 FROM settlement_epochs s
                         WHERE s.chain_id = $2 AND s.last_posting >= h.settled_after AND s.activated_at IS NOT NULL)
           ORDER BY h.id"#,
        now,
        chain_id as i64
    )
    .fetch_all(db)
    .await?;
    let mut groups: BTreeMap<(Address, Address), (Amount, Vec<i64>)> = BTreeMap::new();
    for row in due {
        let group = groups.entry((row.payee.0, row.token.0)).or_default();
        group.0 = group.0.checked_add(row.amount).unwrap_or(Amount(u128::MAX));
        group.1.push(row.id);
    }
    let ending = Ending {
        by: None,
        reason: "hold period over and spend settled".to_owned(),
    };
    let mut released = 0;
    for ((_, token), (total, ids)) in groups {
        if total < terms.min_payout(token) {
            continue;
        }
        for id in ids {
            let mut conn = db.acquire().await?;
            let mut tx = conn.begin().await?;
            match holds::release(&mut tx, chain_id, id, &ending, now).await {
                Ok(_) => {
                    tx.commit().await?;
                    released += 1;
                }
                Err(HoldError::Database(error)) => return Err(error.into()),
                // Ended meanwhile by someone else, or waiting for a debt.
                Err(_) => tx.rollback().await?,
            }
        }
    }
    Ok(released)
}

//! Ad credits on chain: the treasury wallet funds the redeemed campaign's escrow with
//! `fund`, sent through the outbox by the treasury role ([`crate::money::treasury`]), once
//! per redemption (its id is the outbox key). The budget's debit that repays the treasury
//! is held meanwhile; [`CreditFollowup`] releases it in the transaction that records the
//! funding confirmed, or reverses it when the funding failed, so the budget pays for
//! exactly the credits that landed.

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::contracts::AdEscrow;
use crate::money::Amount;
use crate::money::holds::{self, Ending, HoldError};
use crate::platform::outbox::{BoxFuture, Finished, Followup, Kind, NewTransaction, Outcome};

/// A credit's funding of its campaign (key: the redemption).
pub const PROMO_CREDIT: Kind = Kind::new("promo_credit");

/// The ledger source id of a redemption's credit.
pub fn source_id(redemption: Uuid) -> String {
    format!("promo:{redemption}")
}

/// A credit whose funding has not been queued yet.
#[derive(Debug, Clone)]
pub struct Unsent {
    pub redemption: Uuid,
    pub token: Address,
    /// The wallet the budget repays, which must send the funding.
    pub treasury: Address,
    pub campaign: B256,
    pub amount: Amount,
}

impl Unsent {
    /// `fund` of the campaign, to the escrow at `escrow`.
    pub fn transaction(&self, escrow: Address) -> NewTransaction {
        NewTransaction {
            kind: PROMO_CREDIT,
            key: self.redemption.to_string(),
            target: escrow,
            calldata: AdEscrow::fundCall {
                campaignId: self.campaign,
                amount: U256::from(self.amount.0),
            }
            .abi_encode()
            .into(),
            gas_limit: None,
        }
    }
}

/// Credits not queued yet, oldest first.
pub async fn unsent(conn: &mut PgConnection, chain_id: u64) -> Result<Vec<Unsent>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT r.id, c.token AS "token: SqlAddress", c.chain_campaign_id AS "campaign: SqlB256",
                  r.credit AS "credit!: Amount", a.owner AS "treasury!: SqlAddress"
           FROM promo_redemptions r
           JOIN campaigns c ON c.id = r.campaign_id
           JOIN promotions p ON p.id = r.promotion_id
           JOIN escrow_accounts a ON a.id = p.budget_id
           WHERE r.offer = 'ad_credit'
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.chain_id = $1 AND o.kind = 'promo_credit'
                             AND o.key = r.id::text)
           ORDER BY r.redeemed_at, r.id"#,
        chain_id as i64
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Unsent {
            redemption: row.id,
            token: row.token.0,
            treasury: row.treasury.0,
            campaign: row.campaign.0,
            amount: row.credit,
        })
        .collect())
}

/// Ends a credit's held debit as its funding ended: released once confirmed (the next
/// epoch repays the treasury), reversed when it failed (the budget gets it back).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreditFollowup;

impl Followup for CreditFollowup {
    fn finished<'a>(&'a self, conn: &'a mut PgConnection, row: &'a Finished) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let Ok(redemption) = row.key.parse::<Uuid>() else {
                tracing::warn!(key = %row.key, "a promo credit's outbox key is no redemption");
                return Ok(());
            };
            let hold = sqlx::query_scalar!(
                "SELECT h.id FROM promo_redemptions r JOIN ledger_holds h ON h.posting_id = r.posting_id
                 WHERE r.id = $1",
                redemption
            )
            .fetch_optional(&mut *conn)
            .await?;
            let Some(hold) = hold else {
                tracing::warn!(%redemption, "a promo credit has no held debit to end");
                return Ok(());
            };
            let ended = match &row.outcome {
                Outcome::Confirmed { tx_hash } => {
                    let ending = Ending {
                        by: None,
                        reason: format!("the credit's funding {tx_hash} is confirmed"),
                    };
                    holds::release(conn, row.chain_id, hold, &ending, OffsetDateTime::now_utc())
                        .await
                        .map(drop)
                }
                Outcome::Failed { reason } => {
                    let ending = Ending {
                        by: None,
                        reason: format!("the credit's funding failed: {reason}"),
                    };
                    holds::reverse(conn, hold, &ending).await.map(drop)
                }
            };
            match ended {
                Ok(()) | Err(HoldError::Ended { .. }) => Ok(()),
                Err(HoldError::Database(error)) => Err(error),
                // A credit's hold waits for nothing else; anything more is a bug to see,
                // and the row stays unfinished until it is fixed.
                Err(error) => Err(sqlx::Error::Protocol(error.to_string())),
            }
        })
    }
}

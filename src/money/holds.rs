//! Holds: entries owed but not due yet. A held posting's escrow debits and payee credits
//! stay out of epochs until its hold ends, once, by a posting of its own:
//!
//! - **released**: each held entry moves to the released side (a negative held entry and a
//!   positive released one), so the next epoch pays it and debits its escrow;
//! - **reversed**: every entry of the posting that created the hold is undone (an order
//!   refunded inside its window is never debited; a payer gets back what was moved out).
//!
//! Rows are never edited: a hold's state is whether an end row exists, and the end row's
//! primary key refuses a second end.

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;
use crate::money::escrow::{self, EscrowError};
use crate::money::ledger::{self, NewHold, Source};

/// Why an entry is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "hold_reason", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// An order's refund window: released when it ends.
    RefundWindow,
    /// A commission's hold period and the spend's settlement: released by the affiliate
    /// program once both have passed and the affiliate's due commissions reach its minimum
    /// payout.
    CommissionHold,
    /// The spend it came from must be final on chain: released by whoever sees it final.
    SpendFinal,
    /// A person must clear it.
    Review,
    /// The program budget it is paid from cannot cover it: released once it can.
    BudgetEmpty,
    /// The payer it was moved from owes what its payouts already included: released once
    /// the payer's later earnings have repaid it.
    Recovery,
    /// A promo credit's repayment of the treasury: released when the treasury's funding
    /// of the campaign is confirmed on chain, reversed when it fails.
    CreditPending,
}

impl HoldReason {
    /// Whether [`release_due`] releases it by itself (the others wait for an event, or for
    /// the program that owns them).
    fn released_by_job(self) -> bool {
        !matches!(
            self,
            Self::SpendFinal | Self::Review | Self::CommissionHold | Self::CreditPending
        )
    }
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "hold_outcome", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum HoldOutcome {
    Released,
    Reversed,
}

/// Who ends a hold, and why, for the record.
#[derive(Debug, Clone)]
pub struct Ending {
    /// The user who ended it; none for a job.
    pub by: Option<Uuid>,
    /// 1 to 500 characters.
    pub reason: String,
}

/// Why a hold could not end. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("no hold {0}")]
    NotFound(i64),
    #[error("hold {hold} was already {outcome:?}")]
    Ended { hold: i64, outcome: HoldOutcome },
    #[error("hold {hold} is not due before {until}")]
    NotDue { hold: i64, until: OffsetDateTime },
    #[error(
        "hold {hold} waits until the spend it came from (posting {posting}) is settled and past its challenge window"
    )]
    NotSettled { hold: i64, posting: i64 },
    #[error("hold {hold} waits until {debtor} has repaid the {owes} it owes")]
    DebtOutstanding { hold: i64, debtor: Address, owes: Amount },
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Records the hold a posting asked for.
pub(crate) async fn create(conn: &mut PgConnection, posting_id: i64, hold: &NewHold) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO ledger_holds (posting_id, reason, until, note, debtor, settled_after)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        posting_id,
        hold.reason as HoldReason,
        hold.until,
        hold.note,
        hold.debtor.map(SqlAddress) as Option<SqlAddress>,
        hold.settled_after
    )
    .fetch_one(conn)
    .await
}

/// An open hold, locked for the caller's transaction.
struct OpenHold {
    id: i64,
    posting_id: i64,
    token: Address,
    reason: HoldReason,
    until: Option<OffsetDateTime>,
    debtor: Option<Address>,
    settled_after: Option<i64>,
}

async fn lock_open(conn: &mut PgConnection, hold: i64) -> Result<OpenHold, HoldError> {
    let row = sqlx::query!(
        r#"SELECT h.id, h.posting_id, p.token AS "token: SqlAddress", h.reason AS "reason: HoldReason", h.until,
                  h.debtor AS "debtor?: SqlAddress", h.settled_after, x.outcome AS "outcome?: HoldOutcome"
           FROM ledger_holds h
           JOIN ledger_postings p ON p.id = h.posting_id
           LEFT JOIN ledger_hold_ends x ON x.hold_id = h.id
           WHERE h.id = $1
           FOR UPDATE OF h"#,
        hold
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(HoldError::NotFound(hold))?;
    if let Some(outcome) = row.outcome {
        return Err(HoldError::Ended { hold, outcome });
    }
    Ok(OpenHold {
        id: row.id,
        posting_id: row.posting_id,
        token: row.token.0,
        reason: row.reason,
        until: row.until,
        debtor: row.debtor.map(|d| d.0),
        settled_after: row.settled_after,
    })
}

/// Releases hold `hold` in the caller's transaction, if it is due: its time has come, a
/// recovery's debtor owes nothing, an empty budget can now cover it. Returns the posting.
pub async fn release(
    conn: &mut PgConnection,
    chain_id: u64,
    hold: i64,
    ending: &Ending,
    now: OffsetDateTime,
) -> Result<i64, HoldError> {
    let open = lock_open(conn, hold).await?;
    if let Some(until) = open.until.filter(|until| *until > now) {
        return Err(HoldError::NotDue { hold, until });
    }
    if let Some(posting) = open.settled_after
        && !settled(conn, chain_id, posting).await?
    {
        return Err(HoldError::NotSettled { hold, posting });
    }
    if let Some(debtor) = open.debtor {
        let standing = ledger::standing(conn, chain_id, debtor, open.token).await?;
        if !standing.owes().is_zero() {
            return Err(HoldError::DebtOutstanding {
                hold,
                debtor,
                owes: standing.owes(),
            });
        }
    }
    if open.reason == HoldReason::BudgetEmpty {
        // Its debits were left out of what the budget owes; now they must fit.
        let spent = sqlx::query!(
            r#"SELECT escrow_id AS "escrow_id!", -sum(amount) AS "amount!: Amount" FROM ledger_entries
               WHERE hold_id = $1 AND escrow_id IS NOT NULL GROUP BY escrow_id"#,
            open.id
        )
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<Uuid> = spent.iter().map(|row| row.escrow_id).collect();
        for funds in escrow::lock_funds(conn, chain_id, &ids).await? {
            let wanted = spent
                .iter()
                .find(|row| row.escrow_id == funds.id)
                .map_or(Amount::ZERO, |row| row.amount);
            funds.cover(wanted)?;
        }
    }
    let posting = end_posting(conn, &open, HoldOutcome::Released, ending).await?;
    // Each held entry leaves the hold and lands on the released side.
    sqlx::query!(
        "INSERT INTO ledger_entries (posting_id, role, escrow_id, payee, amount, hold_id)
         SELECT $1, e.role, e.escrow_id, e.payee, m.amount, m.hold_id
         FROM ledger_entries e
         CROSS JOIN LATERAL (VALUES (-e.amount, e.hold_id), (e.amount, NULL::bigint)) AS m(amount, hold_id)
         WHERE e.posting_id = $2 AND e.hold_id = $3",
        posting,
        open.posting_id,
        open.id
    )
    .execute(&mut *conn)
    .await?;
    Ok(posting)
}

/// Whether an epoch covering `posting` is the chain's current root (or an earlier one of
/// the roots it replaced): settled on chain and past its challenge window.
pub async fn settled(conn: &mut PgConnection, chain_id: u64, posting: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM settlement_epochs
                          WHERE chain_id = $1 AND last_posting >= $2 AND activated_at IS NOT NULL) AS "settled!""#,
        chain_id as i64,
        posting
    )
    .fetch_one(conn)
    .await
}

/// Reverses hold `hold` in the caller's transaction: every entry of the posting that created
/// it is undone (held ones on the held side). Returns the posting.
pub async fn reverse(conn: &mut PgConnection, hold: i64, ending: &Ending) -> Result<i64, HoldError> {
    let open = lock_open(conn, hold).await?;
    let posting = end_posting(conn, &open, HoldOutcome::Reversed, ending).await?;
    sqlx::query!(
        "INSERT INTO ledger_entries (posting_id, role, escrow_id, payee, amount, hold_id)
         SELECT $1, role, escrow_id, payee, -amount, hold_id FROM ledger_entries WHERE posting_id = $2",
        posting,
        open.posting_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(posting)
}

/// The posting that ends `open`, and the end row that says so.
async fn end_posting(
    conn: &mut PgConnection,
    open: &OpenHold,
    outcome: HoldOutcome,
    ending: &Ending,
) -> Result<i64, sqlx::Error> {
    let verb = match outcome {
        HoldOutcome::Released => "release",
        HoldOutcome::Reversed => "reverse",
    };
    let posting = sqlx::query_scalar!(
        "INSERT INTO ledger_postings (token, source, source_id) VALUES ($1, $2, $3) RETURNING id",
        open.token.as_slice(),
        Source::Hold as Source,
        format!("{verb}:{}", open.id)
    )
    .fetch_one(&mut *conn)
    .await?;
    let reason: String = ending.reason.chars().take(500).collect();
    sqlx::query!(
        "INSERT INTO ledger_hold_ends (hold_id, outcome, posting_id, ended_by, reason) VALUES ($1, $2, $3, $4, $5)",
        open.id,
        outcome as HoldOutcome,
        posting,
        ending.by,
        if reason.is_empty() { verb.to_owned() } else { reason }
    )
    .execute(&mut *conn)
    .await?;
    tracing::info!(hold = open.id, reason = ?open.reason, ?outcome, posting, "hold ended");
    Ok(posting)
}

/// Releases every open hold that is due by itself (time holds whose time has come,
/// recoveries repaid, empty budgets funded), oldest first, each in its own transaction so
/// that one that cannot go yet does not keep the others. Returns how many were released.
pub async fn release_due(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<usize, sqlx::Error> {
    let ending = Ending {
        by: None,
        reason: "due".to_owned(),
    };
    let mut released = 0;
    // In pages by id, so that holds that must keep waiting (a debt, an empty budget) never
    // crowd out the due ones behind them.
    let mut after = 0;
    loop {
        let candidates = sqlx::query!(
            r#"SELECT h.id, h.reason AS "reason: HoldReason" FROM ledger_holds h
               WHERE h.id > $2 AND NOT EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id)
                 AND (h.until <= $1 OR (h.until IS NULL AND h.reason IN ('budget_empty', 'recovery')))
               ORDER BY h.id
               LIMIT 500"#,
            now,
            after
        )
        .fetch_all(db)
        .await?;
        let Some(last) = candidates.last() else { break };
        after = last.id;
        for hold in candidates.into_iter().filter(|h| h.reason.released_by_job()) {
            let mut conn = db.acquire().await?;
            let mut tx = conn.begin().await?;
            match release(&mut tx, chain_id, hold.id, &ending, now).await {
                Ok(_) => {
                    tx.commit().await?;
                    released += 1;
                }
                Err(HoldError::Database(error)) => return Err(error),
                // Not yet (a debt, an empty budget), or ended meanwhile by someone else.
                Err(_) => tx.rollback().await?,
            }
        }
    }
    if released > 0 {
        metrics::counter!("ledger_holds_released_total").increment(released as u64);
    }
    Ok(released)
}

/// A held amount as its payee sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub hold_id: i64,
    pub amount: Amount,
    pub reason: HoldReason,
    /// Not released before this time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// What it waits for, in words.
    pub note: String,
}

/// `payee`'s open holds in `token`, oldest first.
pub async fn held(db: impl sqlx::PgExecutor<'_>, payee: Address, token: Address) -> Result<Vec<Held>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT h.id, sum(e.amount) AS "amount!: Amount", h.reason AS "reason: HoldReason", h.until, h.note
           FROM ledger_entries e
           JOIN ledger_holds h ON h.id = e.hold_id
           JOIN ledger_postings p ON p.id = h.posting_id
           WHERE e.payee = $1 AND p.token = $2
             AND NOT EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id)
           GROUP BY h.id
           HAVING sum(e.amount) > 0
           ORDER BY h.id"#,
        payee.as_slice(),
        token.as_slice()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Held {
            hold_id: row.id,
            amount: row.amount,
            reason: row.reason,
            until: row.until,
            note: row.note,
        })
        .collect())
}

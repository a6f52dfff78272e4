//! Prizes for the top N of a board's period, paid from a program budget through the ledger.
//!
//! An admin declares a prize for a board that has not ended: a program budget and the amount
//! for the first, second, ... entry. Once the board is frozen, the freezer pays it from the
//! frozen ranking in its listed order (ties are broken by address, as the page lists them):
//! one posting debiting the budget and crediting each winner, under the board's key as its
//! source id, so it is paid once whatever runs it. A budget that cannot cover it holds the
//! posting (`budget_empty`) until it is topped up, like a referral bonus.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Board, Category, Period, PeriodKind, store};
use crate::money::Amount;
use crate::money::escrow::{self, EscrowKind};
use crate::money::holds::HoldReason;
use crate::money::ledger::{self, LedgerError, NewHold, Party, Posting, Source};

/// The most winners a prize pays.
pub const MAX_WINNERS: usize = 100;

/// Prizes paid per run at most.
pub const PAY_BATCH: usize = 16;

/// A declared prize.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prize {
    pub category: Category,
    pub period: PeriodKind,
    pub starts_on: String,
    pub zone: String,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub board_token: Address,
    /// The program budget that pays it.
    pub budget: Uuid,
    /// For the first, second, ... entry of the frozen ranking.
    pub amounts: Vec<Amount>,
    /// The ledger posting that paid it, once the board is frozen.
    pub posting_id: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrizeError {
    #[error("prizes are for a day, a week or a month, not all time")]
    AllTime,
    #[error("a prize pays 1 to {MAX_WINNERS} winners, each more than zero")]
    Amounts,
    #[error("this board's period has ended")]
    Ended,
    #[error("no program budget with this id")]
    NoBudget,
    #[error("this board has a prize already")]
    Declared,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl PrizeError {
    /// The request field at fault, for those that are the request's.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::AllTime | Self::Ended => Some("period"),
            Self::Amounts => Some("amounts"),
            _ => None,
        }
    }
}

/// Declares a prize for `board`, paid from program budget `budget`.
pub async fn declare(
    db: &PgPool,
    board: &Board,
    budget: Uuid,
    amounts: Vec<Amount>,
    by: Uuid,
    now: OffsetDateTime,
) -> Result<Prize, PrizeError> {
    if board.period.kind == PeriodKind::All {
        return Err(PrizeError::AllTime);
    }
    if amounts.is_empty() || amounts.len() > MAX_WINNERS || amounts.iter().any(|a| a.is_zero()) {
        return Err(PrizeError::Amounts);
    }
    let zone = crate::adserver::schedule::zone(&board.zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let ends_at = board
        .period
        .ends_at(&zone)
        .map(crate::adserver::schedule::offset_date_time);
    if ends_at.is_some_and(|end| end <= now) {
        return Err(PrizeError::Ended);
    }
    let kind = sqlx::query_scalar!(
        r#"SELECT kind AS "kind: EscrowKind" FROM escrow_accounts WHERE id = $1"#,
        budget
    )
    .fetch_optional(db)
    .await?;
    if kind != Some(EscrowKind::Program) {
        return Err(PrizeError::NoBudget);
    }
    let inserted = sqlx::query!(
        "INSERT INTO leaderboard_prizes (category, zone, token, period, starts_on, ends_at, budget_id, amounts, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        board.category as Category,
        board.zone,
        board.token.as_slice(),
        board.period.kind as PeriodKind,
        board.period.starts_on_db(),
        ends_at,
        budget,
        &amounts as &[Amount],
        by
    )
    .execute(db)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(PrizeError::Declared);
    }
    Ok(Prize {
        category: board.category,
        period: board.period.kind,
        starts_on: board.period.starts_on.to_string(),
        zone: board.zone.clone(),
        board_token: board.token,
        budget,
        amounts,
        posting_id: None,
    })
}

/// Pays every prize not paid yet whose board is frozen (or, nobody having scored, has no
/// board), from the frozen ranking. Returns how many it settled.
pub async fn pay_frozen(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<usize, LedgerError> {
    let due = sqlx::query!(
        r#"SELECT p.category AS "category: Category", p.zone, p.token AS "token: SqlAddress",
                  p.period AS "period: PeriodKind", p.starts_on, p.budget_id, p.amounts AS "amounts: Vec<Amount>",
                  a.token AS "budget_token: SqlAddress"
           FROM leaderboard_prizes p
           LEFT JOIN leaderboard_boards b USING (category, zone, token, period, starts_on)
           JOIN escrow_accounts a ON a.id = p.budget_id
           WHERE p.paid_at IS NULL
             AND (b.frozen_at IS NOT NULL OR (b.category IS NULL AND p.ends_at <= $1))
           ORDER BY p.starts_on LIMIT $2"#,
        now - store::FREEZE_AFTER,
        PAY_BATCH as i64
    )
    .fetch_all(db)
    .await?;
    let mut paid = 0;
    for row in due {
        let board = Board {
            category: row.category,
            zone: row.zone,
            token: row.token.0,
            period: Period {
                kind: row.period,
                starts_on: super::periods::from_db(row.starts_on),
            },
        };
        let ranked = store::load(db, &board).await?;
        // Paid from the ranking that was frozen and published: a score booked after the
        // freeze (a transaction past every timeout) must not change who wins.
        if ranked
            .frozen
            .as_ref()
            .is_some_and(|frozen| frozen.hash != ranked.hash())
        {
            tracing::error!(
                category = board.category.label(),
                zone = %board.zone,
                starts_on = %board.period.starts_on,
                "a frozen board's scores changed after its freeze: its prize is not paid"
            );
            metrics::counter!("adescrow_leaderboard_prizes_withheld_total").increment(1);
            continue;
        }
        let winners: Vec<(Address, Amount)> = ranked
            .page(0, row.amounts.len())
            .into_iter()
            .map(|entry| entry.subject)
            .zip(row.amounts.iter().copied())
            .collect();
        let mut tx = db.begin().await?;
        let posting_id = pay(&mut tx, chain_id, &board, row.budget_id, row.budget_token.0, &winners).await?;
        let updated = sqlx::query!(
            "UPDATE leaderboard_prizes SET posting_id = $6, paid_at = now()
             WHERE category = $1 AND zone = $2 AND token = $3 AND period = $4 AND starts_on = $5 AND paid_at IS NULL",
            board.category as Category,
            board.zone,
            board.token.as_slice(),
            board.period.kind as PeriodKind,
            row.starts_on,
            posting_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        paid += updated.rows_affected() as usize;
    }
    Ok(paid)
}

/// Posts one prize: the budget pays each winner, held when it cannot cover it all. A board
/// nobody scored on pays nothing (and records no posting: `None`).
async fn pay(
    conn: &mut PgConnection,
    chain_id: u64,
    board: &Board,
    budget: Uuid,
    token: Address,
    winners: &[(Address, Amount)],
) -> Result<Option<i64>, LedgerError> {
    if winners.is_empty() {
        return Ok(None);
    }
    let total = winners
        .iter()
        .try_fold(Amount::ZERO, |sum, (_, amount)| sum.checked_add(*amount))
        .ok_or(LedgerError::Unbalanced)?;
    let mut posting = Posting::default();
    posting.spend(budget, total);
    for (winner, amount) in winners {
        posting.earn(Party::Winner, *winner, *amount);
    }
    let funds = escrow::lock_funds(conn, chain_id, &[budget]).await?;
    if let Some(Err(why)) = funds.first().map(|funds| funds.cover(total)) {
        posting = posting.hold(NewHold {
            reason: HoldReason::BudgetEmpty,
            until: None,
            debtor: None,
            settled_after: None,
            note: format!("waits for the prize budget: {why}").chars().take(500).collect(),
        });
    }
    let source_id = format!(
        "prize:{}:{}:{:#x}:{}:{}",
        board.category.label(),
        board.zone,
        board.token,
        board.period.kind.label(),
        board.period.starts_on
    );
    let posted = ledger::post(
        conn,
        chain_id,
        Source::Program,
        &source_id,
        &BTreeMap::from([(token, posting)]),
    )
    .await?;
    Ok(posted.first().map(|p| p.posting_id))
}

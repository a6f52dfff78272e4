//! Reading a board, and freezing the boards whose period has ended.

use std::time::Duration;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::ranking::{Frozen, Ranked};
use super::{Board, Category, Period, PeriodKind};
use crate::money::Amount;
use crate::platform::worker::{Leadership, Role, StepError};

/// How long after its end a board is frozen: longer than any transaction that may still
/// book a score in it (billing takes its clock when a batch arrives and commits within
/// the request timeout).
pub const FREEZE_AFTER: Duration = Duration::from_secs(600);

/// Boards frozen per run at most: each is read whole.
const FREEZE_BATCH: i64 = 16;

/// Every subject's score on a board, ranked, with its freeze if it has one.
pub async fn load(db: &PgPool, board: &Board) -> Result<Ranked, sqlx::Error> {
    let key = Key::of(board);
    let scores = sqlx::query!(
        r#"SELECT subject AS "subject!: SqlAddress", score AS "score!: Amount" FROM leaderboard_scores
           WHERE category = $1 AND zone = $2 AND token = $3 AND period = $4 AND starts_on = $5"#,
        key.category as Category,
        key.zone,
        key.token as SqlAddress,
        key.period as PeriodKind,
        key.starts_on
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|row| (row.subject.0, row.score.0))
    .collect();
    let frozen = sqlx::query!(
        r#"SELECT frozen_at AS "frozen_at!", frozen_hash AS "frozen_hash!: SqlB256", frozen_entries AS "frozen_entries!"
           FROM leaderboard_boards
           WHERE category = $1 AND zone = $2 AND token = $3 AND period = $4 AND starts_on = $5 AND frozen_at IS NOT NULL"#,
        key.category as Category,
        key.zone,
        key.token as SqlAddress,
        key.period as PeriodKind,
        key.starts_on
    )
    .fetch_optional(db)
    .await?
    .map(|row| Frozen {
        hash: row.frozen_hash.0,
        entries: u64::try_from(row.frozen_entries).unwrap_or_default(),
        frozen_at: row.frozen_at,
    });
    Ok(Ranked::new(scores, frozen))
}

/// Freezes boards that ended at least [`FREEZE_AFTER`] before `now`: records the hash and
/// size of their final ranking. Returns how many it froze.
pub async fn freeze_ended(db: &PgPool, now: OffsetDateTime) -> Result<usize, sqlx::Error> {
    let ended = sqlx::query!(
        r#"SELECT category AS "category!: Category", zone, token AS "token!: SqlAddress",
                  period AS "period!: PeriodKind", starts_on
           FROM leaderboard_boards
           WHERE frozen_at IS NULL AND ends_at IS NOT NULL AND ends_at <= $1
           ORDER BY ends_at LIMIT $2"#,
        now - FREEZE_AFTER,
        FREEZE_BATCH
    )
    .fetch_all(db)
    .await?;
    let mut frozen = 0;
    for row in ended {
        let board = Board {
            category: row.category,
            zone: row.zone,
            token: row.token.0,
            period: Period {
                kind: row.period,
                starts_on: super::periods::from_db(row.starts_on),
            },
        };
        let ranked = load(db, &board).await?;
        let (key, hash, entries) = (Key::of(&board), ranked.hash(), ranked.len() as i64);
        frozen += sqlx::query!(
            "UPDATE leaderboard_boards SET frozen_at = $6, frozen_hash = $7, frozen_entries = $8
             WHERE category = $1 AND zone = $2 AND token = $3 AND period = $4 AND starts_on = $5 AND frozen_at IS NULL",
            key.category as Category,
            key.zone,
            key.token as SqlAddress,
            key.period as PeriodKind,
            key.starts_on,
            now,
            hash.as_slice(),
            entries
        )
        .execute(db)
        .await?
        .rows_affected() as usize;
    }
    Ok(frozen)
}

/// A board's key as the tables hold it.
struct Key<'a> {
    category: Category,
    zone: &'a str,
    token: SqlAddress,
    period: PeriodKind,
    starts_on: time::Date,
}

impl<'a> Key<'a> {
    fn of(board: &'a Board) -> Self {
        Self {
            category: board.category,
            zone: &board.zone,
            token: SqlAddress(board.token),
            period: board.period.kind,
            starts_on: board.period.starts_on_db(),
        }
    }
}

/// The freezer: freezes ended boards every minute, then pays the prizes of frozen boards,
/// one process at a time.
#[derive(Debug, Clone)]
pub struct Freezer {
    pub db: PgPool,
    pub chain_id: u64,
}

const LOCK_KEY: i64 = 0x6164_6573_6c62_6672; // "adeslbfr"
const FREEZE_EVERY: Duration = Duration::from_secs(60);

impl Role for Freezer {
    fn name(&self) -> &'static str {
        "leaderboard-freezer"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LOCK_KEY,
            poll: FREEZE_EVERY,
        })
    }

    fn longest_quiet(&self) -> Duration {
        FREEZE_EVERY
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let frozen = freeze_ended(&self.db, OffsetDateTime::now_utc())
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        metrics::counter!("adescrow_leaderboards_frozen_total").increment(frozen as u64);
        let paid = super::prizes::pay_frozen(&self.db, self.chain_id, OffsetDateTime::now_utc())
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        metrics::counter!("adescrow_leaderboard_prizes_paid_total").increment(paid as u64);
        // A full run leaves more to do: go on at once.
        Ok(if frozen as i64 == FREEZE_BATCH || paid == super::prizes::PAY_BATCH {
            Duration::ZERO
        } else {
            FREEZE_EVERY
        })
    }
}

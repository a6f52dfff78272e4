//! The roller: follows the ledger by posting id and adds each posting's entries to the
//! statement buckets, in one transaction with its progress, so a step that dies is done
//! again from where the last one committed and nothing is counted twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Entry, Line, Placed, place};
use crate::leaderboards::store::FREEZE_AFTER;
use crate::money::escrow::EscrowKind;
use crate::money::ledger::{self, Party, Source};
use crate::platform::worker::{Leadership, Role, StepError};

/// Postings rolled per step at most.
const ROLL_BATCH: i64 = 5_000;

/// A quarter hour: every zone's offset from UTC is a whole number of them.
const BUCKET_SECS: i64 = 900;

/// Where the roller stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Every posting up to this id is in the buckets.
    pub rolled_through: i64,
    /// No posting can still be booked before this: periods that ended by then are closed.
    pub sealed_before: OffsetDateTime,
}

pub async fn progress(db: impl sqlx::PgExecutor<'_>) -> Result<Progress, sqlx::Error> {
    let row = sqlx::query!("SELECT rolled_through, sealed_before FROM statement_progress")
        .fetch_one(db)
        .await?;
    Ok(Progress {
        rolled_through: row.rolled_through,
        sealed_before: row.sealed_before,
    })
}

/// The quarter hour an entry booked at `posted_at` counts in: its own, or the sealed mark's
/// when it was booked before it (a correction, counted in the next open period).
pub fn bucket_of(posted_at: OffsetDateTime, sealed_before: OffsetDateTime) -> OffsetDateTime {
    let at = posted_at.max(sealed_before).unix_timestamp();
    OffsetDateTime::from_unix_timestamp(at - at.rem_euclid(BUCKET_SECS)).unwrap_or(posted_at)
}

/// The first day of `day`'s month.
pub(super) fn month_of(day: time::Date) -> time::Date {
    day.replace_day(1).unwrap_or(day)
}

/// An entry as read with its posting.
pub(super) struct Booked {
    pub posted_at: OffsetDateTime,
    pub token: Address,
    pub entry: Entry,
}

/// What a roll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolled {
    pub postings: usize,
    /// Whether it reached the ledger's committed watermark.
    pub caught_up: bool,
}

/// Rolls up to [`ROLL_BATCH`] postings past the progress, below the ledger's committed
/// watermark (so no posting that commits later can have a lower id); once it reaches the
/// watermark, moves the sealed mark to [`FREEZE_AFTER`] before the watermark was taken.
pub async fn roll(db: &PgPool, now: OffsetDateTime) -> Result<Rolled, sqlx::Error> {
    let watermark = ledger::committed_watermark_now(db).await?;
    let mut tx = db.begin().await?;
    let before = sqlx::query!("SELECT rolled_through, sealed_before FROM statement_progress FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let next = sqlx::query!(
        r#"SELECT max(id) AS last, count(*) AS "postings!"
           FROM (SELECT id FROM ledger_postings WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3) p"#,
        before.rolled_through,
        watermark,
        ROLL_BATCH
    )
    .fetch_one(&mut *tx)
    .await?;
    let Some(last) = next.last else {
        // Everything committed by the watermark is rolled, and a posting committed later was
        // booked at most FREEZE_AFTER before it (`now` is earlier still). A run whose
        // watermark is older than another run's progress seals nothing new.
        let sealed = if before.rolled_through <= watermark {
            (now - FREEZE_AFTER).max(before.sealed_before)
        } else {
            before.sealed_before
        };
        sqlx::query!(
            "UPDATE statement_progress SET rolled_through = greatest(rolled_through, $1), sealed_before = $2",
            watermark,
            sealed
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rolled {
            postings: 0,
            caught_up: true,
        });
    };
    let booked = between(&mut tx, before.rolled_through, last).await?;
    let postings = usize::try_from(next.postings).unwrap_or_default();
    add(&mut tx, &booked, before.sealed_before).await?;
    sqlx::query!("UPDATE statement_progress SET rolled_through = $1", last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Rolled {
        postings,
        caught_up: false,
    })
}

/// Rolls until it reaches the ledger's committed watermark (for tests, which read the
/// buckets right after posting).
pub async fn catch_up(db: &PgPool, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    while !roll(db, now).await?.caught_up {}
    Ok(())
}

/// The entries of postings `(after, through]`.
pub(super) async fn between(conn: &mut PgConnection, after: i64, through: i64) -> Result<Vec<Booked>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.posted_at AS "posted_at!", p.token AS "token!: SqlAddress", p.source AS "source!: Source",
                  e.role AS "party!: Party",
                  e.payee AS "payee: SqlAddress", a.kind AS "escrow?: EscrowKind", e.amount::text AS "amount!",
                  b.id AS "batch?", b.hoster_node_id AS "hoster_node?", b.witness_node_id AS "witness_node?"
           FROM ledger_postings p
           JOIN ledger_entries e ON e.posting_id = p.id
           LEFT JOIN escrow_accounts a ON a.id = e.escrow_id
           -- Billing names its batch by id; any other text names no batch (and stops nothing).
           LEFT JOIN receipt_batches b
             ON b.id = CASE WHEN p.source = 'receipt_batch' AND p.source_id ~ '^[0-9]{1,18}$'
                            THEN p.source_id::bigint END
           WHERE p.id > $1 AND p.id <= $2"#,
        after,
        through
    )
    .fetch_all(&mut *conn)
    .await?;
    let batches: Vec<i64> = rows
        .iter()
        .filter(|row| row.party == Party::Hoster)
        .filter_map(|row| row.batch)
        .collect();
    let splits = placement_splits(&mut *conn, &batches).await?;
    let mut booked = Vec::with_capacity(rows.len());
    for row in rows {
        let entry = Entry {
            source: row.source,
            party: row.party,
            payee: row.payee.map(|p| p.0),
            escrow: row.escrow,
            amount: parse_signed(&row.amount)?,
            hoster_node: row.hoster_node,
            witness_node: row.witness_node,
            placement: None,
        };
        let split = row
            .batch
            .filter(|_| row.party == Party::Hoster)
            .and_then(|batch| splits.get(&(batch, row.token.0)));
        // A hoster's share of a batch, split by the placements its billed events were
        // decided for; whatever the split does not cover (none: the shares are the entry)
        // stays without a placement.
        let mut rest = entry.amount;
        for &(placement, share) in split.into_iter().flatten() {
            rest -= share;
            booked.push(Booked {
                posted_at: row.posted_at,
                token: row.token.0,
                entry: Entry {
                    amount: share,
                    placement,
                    ..entry
                },
            });
        }
        if rest != 0 {
            booked.push(Booked {
                posted_at: row.posted_at,
                token: row.token.0,
                entry: Entry { amount: rest, ..entry },
            });
        }
    }
    Ok(booked)
}

/// Hoster shares by (batch, token), then placement.
type Splits = HashMap<(i64, Address), Vec<(Option<Uuid>, i128)>>;

/// The hoster shares of `batches`' billed events by token (a batch posts once per token)
/// and placement. The batches are a run of consecutive postings, so one range of the BRIN
/// index covers them.
async fn placement_splits(conn: &mut PgConnection, batches: &[i64]) -> Result<Splits, sqlx::Error> {
    let (Some(first), Some(last)) = (batches.iter().min(), batches.iter().max()) else {
        return Ok(HashMap::new());
    };
    let rows = sqlx::query!(
        r#"SELECT e.batch_id AS "batch!", c.token AS "token: SqlAddress", e.placement_id,
                  sum(e.hoster_share)::text AS "amount!"
           FROM billed_events e JOIN campaigns c ON c.id = e.campaign_id
           WHERE e.batch_id BETWEEN $1 AND $2 AND e.batch_id = ANY($3)
           GROUP BY e.batch_id, c.token, e.placement_id"#,
        first,
        last,
        batches
    )
    .fetch_all(conn)
    .await?;
    let mut splits: Splits = HashMap::new();
    for row in rows {
        splits
            .entry((row.batch, row.token.0))
            .or_default()
            .push((row.placement_id, parse_signed(&row.amount)?));
    }
    Ok(splits)
}

/// A `numeric` Postgres wrote as text; ledger amounts fit 128 bits (the column holds 40
/// digits, but each posting's entries are bounded by `Amount`).
pub(super) fn parse_signed(text: &str) -> Result<i128, sqlx::Error> {
    text.parse().map_err(|_| sqlx::Error::ColumnDecode {
        index: "amount".into(),
        source: format!("{text} does not fit 128 bits").into(),
    })
}

/// Adds booked entries to the quarter hours, days and months, one statement each.
async fn add(conn: &mut PgConnection, booked: &[Booked], sealed_before: OffsetDateTime) -> Result<(), sqlx::Error> {
    let mut buckets: BTreeMap<(Address, OffsetDateTime, Address, Line, Uuid, Uuid), i128> = BTreeMap::new();
    for b in booked {
        if let Some(Placed {
            payee,
            line,
            node,
            placement,
            amount,
        }) = place(&b.entry)
        {
            *buckets
                .entry((
                    payee,
                    bucket_of(b.posted_at, sealed_before),
                    b.token,
                    line,
                    node,
                    placement,
                ))
                .or_default() += amount;
        }
    }
    buckets.retain(|_, amount| *amount != 0);
    let mut days: BTreeMap<(Address, time::Date, Address, Line, Uuid, Uuid), i128> = BTreeMap::new();
    let mut months: BTreeMap<(Address, time::Date, Address), i128> = BTreeMap::new();
    for (&(payee, bucket, token, line, node, placement), amount) in &buckets {
        *days
            .entry((payee, bucket.date(), token, line, node, placement))
            .or_default() += amount;
        *months.entry((payee, month_of(bucket.date()), token)).or_default() += amount;
    }
    let (mut payees, mut times, mut tokens, mut lines, mut nodes, mut placements, mut amounts) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((payee, bucket, token, line, node, placement), amount) in buckets {
        payees.push(SqlAddress(payee));
        times.push(bucket);
        tokens.push(SqlAddress(token));
        lines.push(line);
        nodes.push(node);
        placements.push(placement);
        amounts.push(amount.to_string());
    }
    // The amounts go as text: Postgres' numeric takes the sign, and nothing here loses digits.
    sqlx::query!(
        "INSERT INTO statement_buckets (payee, bucket, token, line, node, placement, amount)
         SELECT payee, bucket, token, line, node, placement, amount::numeric
         FROM UNNEST($1::bytea[], $2::timestamptz[], $3::bytea[], $4::statement_line[], $5::uuid[], $6::uuid[],
                     $7::text[])
             AS r(payee, bucket, token, line, node, placement, amount)
         ON CONFLICT (payee, bucket, token, line, node, placement)
         DO UPDATE SET amount = statement_buckets.amount + EXCLUDED.amount",
        &payees as &[SqlAddress],
        &times,
        &tokens as &[SqlAddress],
        &lines as &[Line],
        &nodes,
        &placements,
        &amounts
    )
    .execute(&mut *conn)
    .await?;
    let (mut payees, mut dates, mut tokens, mut lines, mut nodes, mut placements, mut amounts) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((payee, day, token, line, node, placement), amount) in days {
        payees.push(SqlAddress(payee));
        dates.push(day);
        tokens.push(SqlAddress(token));
        lines.push(line);
        nodes.push(node);
        placements.push(placement);
        amounts.push(amount.to_string());
    }
    sqlx::query!(
        "INSERT INTO statement_days (payee, day, token, line, node, placement, amount)
         SELECT payee, day, token, line, node, placement, amount::numeric
         FROM UNNEST($1::bytea[], $2::date[], $3::bytea[], $4::statement_line[], $5::uuid[], $6::uuid[], $7::text[])
             AS r(payee, day, token, line, node, placement, amount)
         ON CONFLICT (payee, day, token, line, node, placement)
         DO UPDATE SET amount = statement_days.amount + EXCLUDED.amount",
        &payees as &[SqlAddress],
        &dates,
        &tokens as &[SqlAddress],
        &lines as &[Line],
        &nodes,
        &placements,
        &amounts
    )
    .execute(&mut *conn)
    .await?;
    let (mut payees, mut dates, mut tokens, mut amounts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((payee, month, token), amount) in months {
        payees.push(SqlAddress(payee));
        dates.push(month);
        tokens.push(SqlAddress(token));
        amounts.push(amount.to_string());
    }
    sqlx::query!(
        "INSERT INTO statement_months (payee, month, token, amount)
         SELECT payee, month, token, amount::numeric
         FROM UNNEST($1::bytea[], $2::date[], $3::bytea[], $4::text[]) AS r(payee, month, token, amount)
         ON CONFLICT (payee, month, token) DO UPDATE SET amount = statement_months.amount + EXCLUDED.amount",
        &payees as &[SqlAddress],
        &dates,
        &tokens as &[SqlAddress],
        &amounts
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The roller as a background role, one process at a time.
#[derive(Debug, Clone)]
pub struct Roller {
    pub db: PgPool,
}

const LOCK_KEY: i64 = 0x6164_6573_7374_726c; // "adesstrl"
const ROLL_EVERY: Duration = Duration::from_secs(5);

impl Role for Roller {
    fn name(&self) -> &'static str {
        "statement-roller"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LOCK_KEY,
            poll: ROLL_EVERY,
        })
    }

    fn longest_quiet(&self) -> Duration {
        ROLL_EVERY
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let rolled = roll(&self.db, OffsetDateTime::now_utc())
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        metrics::counter!("adescrow_statement_postings_rolled_total").increment(rolled.postings as u64);
        Ok(if rolled.caught_up { ROLL_EVERY } else { Duration::ZERO })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_in_their_quarter_hour_or_at_the_sealed_mark() {
        let at = |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        let sealed = at("2026-03-01T00:00:00Z");
        assert_eq!(
            bucket_of(at("2026-03-01T05:44:59Z"), sealed),
            at("2026-03-01T05:30:00Z")
        );
        assert_eq!(
            bucket_of(at("2026-02-28T23:59:00Z"), sealed),
            sealed,
            "booked before the sealed mark: a correction in the next period"
        );
    }
}

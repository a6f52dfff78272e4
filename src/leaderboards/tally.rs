//! What one transaction earned toward the boards, added in that transaction: billing adds
//! a batch's earnings, impressions, witness work and spend; the programs add qualified
//! referrals and sales. One statement per transaction whatever its size, since a batch of a
//! thousand receipts comes to a handful of subjects.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::{Category, Period, PeriodKind, Zones};
use crate::adserver::schedule;
use crate::money::Amount;

/// Scores by (category, token, subject); the token is the zero address for counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<(Category, Address, Address), u128>);

impl Tally {
    /// Adds `score` to `subject` on `category`'s board for `token` (ignored for counts).
    pub fn add(&mut self, category: Category, token: Address, subject: Address, score: u128) {
        if score == 0 {
            return;
        }
        let token = if category.is_money() { token } else { Address::ZERO };
        let entry = self.0.entry((category, token, subject)).or_default();
        *entry = entry.saturating_add(score);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The score a subject got in this tally.
    pub fn get(&self, category: Category, token: Address, subject: Address) -> u128 {
        let token = if category.is_money() { token } else { Address::ZERO };
        self.0.get(&(category, token, subject)).copied().unwrap_or(0)
    }
}

/// The zones the platform declared (`leaderboard_zones`). One this binary's zone database
/// does not know is skipped, loudly: its boards stop growing rather than billing failing.
pub async fn declared(conn: &mut PgConnection) -> Result<Zones, sqlx::Error> {
    let names = sqlx::query_scalar!("SELECT zone FROM leaderboard_zones ORDER BY zone")
        .fetch_all(conn)
        .await?;
    let known: Vec<String> = names
        .into_iter()
        .filter(|name| {
            let known = crate::adserver::schedule::zone(name).is_some();
            if !known {
                tracing::error!(zone = %name, "a declared leaderboard zone is not in this binary's zone database");
            }
            known
        })
        .collect();
    Ok(Zones::parse(&known).unwrap_or_default())
}

/// Declares the zones boards are kept in, replacing the ones declared before.
pub async fn declare(db: &sqlx::PgPool, zones: &Zones) -> Result<(), sqlx::Error> {
    let names = zones.names();
    let mut tx = db.begin().await?;
    sqlx::query!("DELETE FROM leaderboard_zones WHERE zone <> ALL($1)", &names)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "INSERT INTO leaderboard_zones SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING",
        &names
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// One row to add, in the order of the table's key, so that concurrent transactions lock
/// shared rows in the same order and never deadlock.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Row<'a> {
    category: Category,
    zone: &'a str,
    token: Address,
    period: PeriodKind,
    starts_on: jiff::civil::Date,
    subject: Address,
}

/// Adds `tally` to the day, week, month and all-time boards of `at` in every zone the
/// platform declared (read from the database: for the programs, which book rarely).
pub async fn record_declared(conn: &mut PgConnection, at: OffsetDateTime, tally: &Tally) -> Result<(), sqlx::Error> {
    if tally.is_empty() {
        return Ok(());
    }
    let zones = declared(&mut *conn).await?;
    record(conn, &zones, at, tally).await
}

/// Adds `tally` to the day, week, month and all-time boards of `at` in each of `zones`
/// (billing passes the zones the API declared, saving a read per batch).
pub async fn record(
    conn: &mut PgConnection,
    zones: &Zones,
    at: OffsetDateTime,
    tally: &Tally,
) -> Result<(), sqlx::Error> {
    if tally.is_empty() {
        return Ok(());
    }
    let at = schedule::timestamp(at);
    let mut rows: BTreeMap<Row<'_>, (Option<OffsetDateTime>, u128)> = BTreeMap::new();
    for (zone_name, zone) in zones.iter() {
        for period in Period::all_at(at, zone) {
            let ends_at = period.ends_at(zone).map(schedule::offset_date_time);
            for (&(category, token, subject), &score) in &tally.0 {
                let row = Row {
                    category,
                    zone: zone_name,
                    token,
                    period: period.kind,
                    starts_on: period.starts_on,
                    subject,
                };
                rows.insert(row, (ends_at, score));
            }
        }
    }
    let mut categories = Vec::with_capacity(rows.len());
    let mut zone_names = Vec::with_capacity(rows.len());
    let mut tokens = Vec::with_capacity(rows.len());
    let mut periods = Vec::with_capacity(rows.len());
    let mut starts = Vec::with_capacity(rows.len());
    let mut ends = Vec::with_capacity(rows.len());
    let mut subjects = Vec::with_capacity(rows.len());
    let mut scores = Vec::with_capacity(rows.len());
    for (row, (ends_at, score)) in rows {
        categories.push(row.category);
        zone_names.push(row.zone.to_owned());
        tokens.push(SqlAddress(row.token));
        periods.push(row.period);
        starts.push(schedule::civil_date(row.starts_on));
        ends.push(ends_at);
        subjects.push(SqlAddress(row.subject));
        scores.push(Amount(score));
    }
    sqlx::query!(
        "WITH rows AS (
             SELECT * FROM UNNEST($1::leaderboard_category[], $2::text[], $3::bytea[], $4::leaderboard_period[],
                                  $5::date[], $6::timestamptz[], $7::bytea[], $8::numeric[])
                 AS r(category, zone, token, period, starts_on, ends_at, subject, score)
         ), boards AS (
             INSERT INTO leaderboard_boards (category, zone, token, period, starts_on, ends_at)
             SELECT DISTINCT category, zone, token, period, starts_on, ends_at FROM rows
             ON CONFLICT DO NOTHING
         )
         INSERT INTO leaderboard_scores (category, zone, token, period, starts_on, subject, score)
         SELECT category, zone, token, period, starts_on, subject, score FROM rows
         ON CONFLICT (category, zone, token, period, starts_on, subject)
         DO UPDATE SET score = leaderboard_scores.score + EXCLUDED.score",
        &categories as &[Category],
        &zone_names,
        &tokens as &[SqlAddress],
        &periods as &[PeriodKind],
        &starts,
        &ends as &[Option<OffsetDateTime>],
        &subjects as &[SqlAddress],
        &scores as &[Amount],
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_no_token_and_zero_scores_are_left_out() {
        let mut tally = Tally::default();
        let (token, subject) = (Address::repeat_byte(1), Address::repeat_byte(2));
        tally.add(Category::ImpressionsServed, token, subject, 2);
        tally.add(Category::ImpressionsServed, Address::ZERO, subject, 3);
        tally.add(Category::HosterEarnings, token, subject, 0);
        assert_eq!(tally.get(Category::ImpressionsServed, Address::ZERO, subject), 5);
        assert_eq!(tally.0.len(), 1);
    }
}

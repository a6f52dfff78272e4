//! Reading a statement: its lines and balances from the rolled-up grains (and the ledger's
//! tail the roller has not reached), frozen once its period is closed; its states from the
//! ledger's holds and the chain's marks.

use std::collections::{BTreeMap, BTreeSet};

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256, keccak256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::roller::{self, Booked, Progress, bucket_of, parse_signed};
use super::states::{self, TokenStates};
use super::{Line, Signed, StatementPeriod, place};
use crate::adserver::schedule;
use crate::leaderboards::PeriodKind;

/// What a payee's statement says: the part that is frozen and hashed once closed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub payee: Address,
    pub zone: String,
    pub period: PeriodKind,
    /// The period's first local day.
    pub starts_on: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Each token the payee held or earned anything in.
    pub tokens: Vec<TokenLines>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenLines {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Everything earned before the period, net.
    pub opening: Signed,
    /// By line, then node.
    pub lines: Vec<LineAmount>,
    /// `opening` plus the lines.
    pub closing: Signed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineAmount {
    pub line: Line,
    /// The node, for ad revenue and witness fees.
    pub node: Option<Uuid>,
    pub node_name: Option<String>,
    /// The placement, for ad revenue (none for events billed on tickets that named none).
    pub placement: Option<Uuid>,
    pub placement_name: Option<String>,
    pub amount: Signed,
}

/// The platform's statement: the part that is frozen and hashed once closed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformBody {
    pub zone: String,
    pub period: PeriodKind,
    pub starts_on: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub tokens: Vec<PlatformToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformToken {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// The platform's share of spend and sales.
    pub gross_fees: Signed,
    /// Commissions and markups moved out of its share (negative).
    pub commissions_paid: Signed,
    /// What program budgets paid out (referral bonuses, credits, prizes).
    pub program_spend: Signed,
    /// Clawbacks returned to it and other adjustments.
    pub adjustments: Signed,
    /// Fees, less what was paid out and spent, with adjustments.
    pub net: Signed,
}

/// A statement as served: its body, exactly the frozen bytes once closed, and their hash.
#[derive(Debug, Clone)]
pub struct Served<B> {
    pub body: B,
    pub json: Box<RawValue>,
    /// keccak256 of `json`, once the period is closed.
    pub hash: Option<B256>,
}

/// A payee's statement with where its earnings stand now.
#[derive(Debug, Clone)]
pub struct PayeeStatement {
    pub statement: Served<Body>,
    pub states: Vec<TokenStates>,
}

/// Sums per (token, line, node, placement).
type Sums = BTreeMap<(Address, Line, Uuid, Uuid), i128>;

/// What is read to build a statement: the roller's progress and the ledger's tail past it.
struct Snapshot {
    progress: Progress,
    tail: Vec<Booked>,
}

impl Snapshot {
    /// Reads in the caller's repeatable-read transaction, so that the buckets it reads next
    /// and the tail never both hold a posting the roller moved in between.
    async fn take(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let progress = roller::progress(&mut *conn).await?;
        let tail = roller::between(conn, progress.rolled_through, i64::MAX).await?;
        Ok(Self { progress, tail })
    }

    /// The tail's sums for `payees` in `[from, to)`.
    fn tail_sums(&self, payees: &[Address], from: OffsetDateTime, to: OffsetDateTime, sums: &mut Sums) {
        for booked in &self.tail {
            let at = bucket_of(booked.posted_at, self.progress.sealed_before);
            if at < from || at >= to {
                continue;
            }
            if let Some(placed) = place(&booked.entry).filter(|p| payees.contains(&p.payee)) {
                *sums
                    .entry((booked.token, placed.line, placed.node, placed.placement))
                    .or_default() += placed.amount;
            }
        }
    }

    fn closed(&self, period: &StatementPeriod) -> bool {
        schedule::offset_date_time(period.ends_at()) <= self.progress.sealed_before
    }
}

/// `[from, to)` cut at UTC midnights: the whole days inside it, and the quarter hours at its
/// edges (before the first midnight, after the last), each `[start, end)`.
struct Cut {
    head: (OffsetDateTime, OffsetDateTime),
    days: (time::Date, time::Date),
    tail: (OffsetDateTime, OffsetDateTime),
}

fn cut(from: OffsetDateTime, to: OffsetDateTime) -> Cut {
    let first = if from.time() == time::Time::MIDNIGHT {
        from.date()
    } else {
        from.date().next_day().unwrap_or(from.date())
    };
    let last = to.date();
    if first >= last {
        // Inside one UTC day, or across one midnight: quarter hours only.
        return Cut {
            head: (from, to),
            days: (first, first),
            tail: (to, to),
        };
    }
    Cut {
        head: (from, first.midnight().assume_utc()),
        days: (first, last),
        tail: (last.midnight().assume_utc(), to),
    }
}

/// The lines of `payees` in `[from, to)`.
async fn sums(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    payees: &[Address],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Sums, sqlx::Error> {
    let payees_sql: Vec<SqlAddress> = payees.iter().copied().map(SqlAddress).collect();
    let Cut { head, days, tail } = cut(from, to);
    let rows = sqlx::query!(
        r#"SELECT token AS "token!: SqlAddress", line AS "line!: Line", node AS "node!", placement AS "placement!",
                  sum(amount)::text AS "amount!"
           FROM (
               SELECT token, line, node, placement, amount FROM statement_buckets
               WHERE payee = ANY($1) AND ((bucket >= $2 AND bucket < $3) OR (bucket >= $4 AND bucket < $5))
               UNION ALL
               SELECT token, line, node, placement, amount FROM statement_days
               WHERE payee = ANY($1) AND day >= $6 AND day < $7
           ) period
           GROUP BY token, line, node, placement"#,
        &payees_sql as &[SqlAddress],
        head.0,
        head.1,
        tail.0,
        tail.1,
        days.0,
        days.1
    )
    .fetch_all(conn)
    .await?;
    let mut sums = Sums::new();
    for row in rows {
        *sums
            .entry((row.token.0, row.line, row.node, row.placement))
            .or_default() += parse_signed(&row.amount)?;
    }
    snapshot.tail_sums(payees, from, to, &mut sums);
    sums.retain(|_, amount| *amount != 0);
    Ok(sums)
}

/// A payee's balance per token before `at`: the UTC months before `at`'s, the days of its
/// month before `at`'s day, and the quarter hours of that day up to `at`.
async fn opening(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    payee: Address,
    at: OffsetDateTime,
) -> Result<BTreeMap<Address, i128>, sqlx::Error> {
    let (day, month) = (at.date(), roller::month_of(at.date()));
    let rows = sqlx::query!(
        r#"SELECT token AS "token!: SqlAddress", sum(amount)::text AS "amount!" FROM (
               SELECT token, amount FROM statement_months WHERE payee = $1 AND month < $2
               UNION ALL
               SELECT token, amount FROM statement_days WHERE payee = $1 AND day >= $2 AND day < $3
               UNION ALL
               SELECT token, amount FROM statement_buckets WHERE payee = $1 AND bucket >= $4 AND bucket < $5
           ) o GROUP BY token"#,
        payee.as_slice(),
        month,
        day,
        day.midnight().assume_utc(),
        at
    )
    .fetch_all(conn)
    .await?;
    let mut balances = BTreeMap::new();
    for row in rows {
        balances.insert(row.token.0, parse_signed(&row.amount)?);
    }
    let mut tail = Sums::new();
    snapshot.tail_sums(&[payee], OffsetDateTime::UNIX_EPOCH, at, &mut tail);
    for ((token, ..), amount) in tail {
        *balances.entry(token).or_default() += amount;
    }
    Ok(balances)
}

/// The names of the nodes and placements the lines name.
async fn names(conn: &mut PgConnection, sums: &Sums) -> Result<BTreeMap<Uuid, String>, sqlx::Error> {
    let ids: Vec<Uuid> = sums
        .keys()
        .flat_map(|(_, _, node, placement)| [*node, *placement])
        .filter(|id| !id.is_nil())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(sqlx::query!(
        r#"SELECT id AS "id!", name AS "name!" FROM nodes WHERE id = ANY($1)
           UNION ALL SELECT id, name FROM placements WHERE id = ANY($1)"#,
        &ids
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| (row.id, row.name))
    .collect())
}

fn bounds(period: &StatementPeriod) -> (OffsetDateTime, OffsetDateTime) {
    (
        schedule::offset_date_time(period.starts_at()),
        schedule::offset_date_time(period.ends_at()),
    )
}

async fn payee_body(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    payee: Address,
    period: &StatementPeriod,
) -> Result<Body, sqlx::Error> {
    let (from, to) = bounds(period);
    let sums = sums(&mut *conn, snapshot, &[payee], from, to).await?;
    let opening = opening(&mut *conn, snapshot, payee, from).await?;
    let names = names(conn, &sums).await?;
    let tokens: BTreeSet<Address> = sums
        .keys()
        .map(|(token, ..)| *token)
        .chain(
            opening
                .iter()
                .filter(|(_, amount)| **amount != 0)
                .map(|(token, _)| *token),
        )
        .collect();
    let tokens = tokens
        .into_iter()
        .map(|token| {
            let lines: Vec<LineAmount> = sums
                .range((token, Line::AdRevenue, Uuid::nil(), Uuid::nil())..)
                .take_while(|((t, ..), _)| *t == token)
                .map(|(&(_, line, node, placement), &amount)| LineAmount {
                    line,
                    node: (!node.is_nil()).then_some(node),
                    node_name: names.get(&node).cloned(),
                    placement: (!placement.is_nil()).then_some(placement),
                    placement_name: names.get(&placement).cloned(),
                    amount: Signed(amount),
                })
                .collect();
            let opening = opening.get(&token).copied().unwrap_or_default();
            let closing = opening + lines.iter().map(|line| line.amount.0).sum::<i128>();
            TokenLines {
                token,
                opening: Signed(opening),
                lines,
                closing: Signed(closing),
            }
        })
        .collect();
    Ok(Body {
        payee,
        zone: period.zone_name.clone(),
        period: period.period.kind,
        starts_on: period.period.starts_on.to_string(),
        starts_at: from,
        ends_at: to,
        tokens,
    })
}

async fn platform_body(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    platform: Address,
    period: &StatementPeriod,
) -> Result<PlatformBody, sqlx::Error> {
    let (from, to) = bounds(period);
    let sums = sums(conn, snapshot, &[platform, Address::ZERO], from, to).await?;
    let mut tokens: BTreeMap<Address, PlatformToken> = BTreeMap::new();
    for (&(token, line, ..), &amount) in &sums {
        let entry = tokens.entry(token).or_insert_with(|| PlatformToken {
            token,
            gross_fees: Signed(0),
            commissions_paid: Signed(0),
            program_spend: Signed(0),
            adjustments: Signed(0),
            net: Signed(0),
        });
        match line {
            Line::PlatformFees => entry.gross_fees.0 += amount,
            Line::CommissionsPaid => entry.commissions_paid.0 += amount,
            Line::ProgramSpend => entry.program_spend.0 += amount,
            _ => entry.adjustments.0 += amount,
        }
    }
    for token in tokens.values_mut() {
        token.net = Signed(token.gross_fees.0 + token.commissions_paid.0 + token.adjustments.0 - token.program_spend.0);
    }
    Ok(PlatformBody {
        zone: period.zone_name.clone(),
        period: period.period.kind,
        starts_on: period.period.starts_on.to_string(),
        starts_at: from,
        ends_at: to,
        tokens: tokens.into_values().collect(),
    })
}

/// Serves `body`: as computed while the period is open; once closed, the bytes frozen by
/// the first read (stored under `owner`), whoever computed them, and the body they say.
async fn serve<B: Serialize + DeserializeOwned>(
    db: &PgPool,
    owner: Address,
    period: &StatementPeriod,
    closed: bool,
    body: B,
) -> Result<Served<B>, sqlx::Error> {
    let json = serde_json::to_string(&body).map_err(|error| sqlx::Error::Encode(error.into()))?;
    if !closed {
        return Ok(Served {
            json: raw(json)?,
            body,
            hash: None,
        });
    }
    let starts_on = period.period.starts_on_db();
    let hash = keccak256(json.as_bytes());
    sqlx::query!(
        "INSERT INTO statements (payee, zone, period, starts_on, body, hash) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
        owner.as_slice(),
        period.zone_name,
        period.period.kind as PeriodKind,
        starts_on,
        json,
        hash.as_slice()
    )
    .execute(db)
    .await?;
    let frozen = sqlx::query!(
        r#"SELECT body, hash AS "hash: SqlB256" FROM statements
           WHERE payee = $1 AND zone = $2 AND period = $3 AND starts_on = $4"#,
        owner.as_slice(),
        period.zone_name,
        period.period.kind as PeriodKind,
        starts_on
    )
    .fetch_one(db)
    .await?;
    // What was frozen, not what was computed now: the CSV and the states follow the bytes
    // whose hash is served, even if a node or placement has been renamed since.
    let body = serde_json::from_str(&frozen.body).map_err(|error| sqlx::Error::Decode(error.into()))?;
    Ok(Served {
        json: raw(frozen.body)?,
        body,
        hash: Some(frozen.hash.0),
    })
}

/// A transaction that sees one snapshot of the database for all its reads.
async fn read_only(db: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

fn raw(json: String) -> Result<Box<RawValue>, sqlx::Error> {
    RawValue::from_string(json).map_err(|error| sqlx::Error::Decode(error.into()))
}

/// `payee`'s statement for `period`, with the states of each token's earnings in it.
pub async fn payee_statement(
    db: &PgPool,
    chain_id: u64,
    payee: Address,
    period: &StatementPeriod,
) -> Result<PayeeStatement, sqlx::Error> {
    let mut tx = read_only(db).await?;
    let snapshot = Snapshot::take(&mut tx).await?;
    let body = payee_body(&mut tx, &snapshot, payee, period).await?;
    let holds = states::open_holds(&mut tx, payee).await?;
    let marks = states::marks(&mut tx, chain_id, payee).await?;
    tx.commit().await?;
    let (from, to) = (body.starts_at, body.ends_at);
    let states = body
        .tokens
        .iter()
        .map(|token| {
            let holds = holds.get(&token.token).map(Vec::as_slice).unwrap_or_default();
            let held_before: i128 = holds
                .iter()
                .filter(|h| h.posted_at < from)
                .map(|h| h.held.amount.0 as i128)
                .sum();
            let held: Vec<_> = holds
                .iter()
                .filter(|h| h.posted_at >= from && h.posted_at < to)
                .map(|h| h.held.clone())
                .collect();
            let held_now: i128 = held.iter().map(|h| h.amount.0 as i128).sum();
            let earned = token.closing.0 - token.opening.0;
            states::split(
                token.token,
                token.opening.0 - held_before,
                earned - held_now,
                &marks.get(&token.token).copied().unwrap_or_default(),
                held,
            )
        })
        .collect();
    let closed = snapshot.closed(period);
    Ok(PayeeStatement {
        statement: serve(db, payee, period, closed, body).await?,
        states,
    })
}

/// The platform's statement for `period`: its own payee (`platform`) and the program
/// budgets' spend.
pub async fn platform_statement(
    db: &PgPool,
    platform: Address,
    period: &StatementPeriod,
) -> Result<Served<PlatformBody>, sqlx::Error> {
    let mut tx = read_only(db).await?;
    let snapshot = Snapshot::take(&mut tx).await?;
    let body = platform_body(&mut tx, &snapshot, platform, period).await?;
    tx.commit().await?;
    serve(db, Address::ZERO, period, snapshot.closed(period), body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn a_period_is_cut_at_utc_midnights_into_edges_and_whole_days() {
        // March in Berlin: from 23:00 on 28 February to 22:00 on 31 March (UTC).
        let march = cut(at("2026-02-28T23:00:00Z"), at("2026-03-31T22:00:00Z"));
        assert_eq!(march.head, (at("2026-02-28T23:00:00Z"), at("2026-03-01T00:00:00Z")));
        assert_eq!(
            (march.days.0.to_string(), march.days.1.to_string()),
            ("2026-03-01".into(), "2026-03-31".into())
        );
        assert_eq!(march.tail, (at("2026-03-31T00:00:00Z"), at("2026-03-31T22:00:00Z")));
        // A UTC month is whole days only.
        let utc = cut(at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"));
        assert_eq!(utc.head.0, utc.head.1);
        assert_eq!(utc.tail.0, utc.tail.1);
        assert_eq!(
            (utc.days.0.to_string(), utc.days.1.to_string()),
            ("2026-03-01".into(), "2026-04-01".into())
        );
        // A Kolkata day spans one UTC midnight: quarter hours on both sides, no whole day.
        let day = cut(at("2026-03-14T18:30:00Z"), at("2026-03-15T18:30:00Z"));
        assert_eq!(day.days.0, day.days.1);
        assert_eq!(day.head, (at("2026-03-14T18:30:00Z"), at("2026-03-15T18:30:00Z")));
    }
}

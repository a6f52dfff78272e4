//! Milestone bonuses and the referrer's snapshot. [`recompute`] brings a referrer's bonuses
//! in line with its qualified referrals now, under the rules in force: a bonus for every
//! block of `milestone` qualified referrals, once per block and token whatever the rule
//! version (a bonus row is unique on referrer, milestone, rule version and token, and the
//! referrer's lock serializes recomputations); a bonus whose block no longer qualifies is
//! reversed by a posting. Idempotent: run it as often as you like, concurrently too.

use std::collections::{BTreeMap, HashSet};

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ReferralError;
use super::assess::{self, Reason, Referral, Status};
use super::rules::{self, Rules};
use crate::leaderboards::Category;
use crate::leaderboards::tally::{Tally, record_declared as record_scores};
use crate::money::Amount;
use crate::money::escrow;
use crate::money::holds::{self, Ending, HoldReason};
use crate::money::ledger::{self, NewHold, Party, Posting, Source};

/// Qualified referrals for the `verified_referrer` badge.
pub const VERIFIED_REFERRER: i64 = 3;
/// Qualified referrals for the `elite_referrer` badge.
pub const ELITE_REFERRER: i64 = 10;

/// A referrer's badge, from its qualified referrals now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ReferrerBadge)]
#[serde(rename_all = "snake_case")]
pub enum Badge {
    VerifiedReferrer,
    EliteReferrer,
}

impl Badge {
    pub fn for_qualified(qualified: i64) -> Option<Self> {
        match qualified {
            ELITE_REFERRER.. => Some(Self::EliteReferrer),
            VERIFIED_REFERRER.. => Some(Self::VerifiedReferrer),
            _ => None,
        }
    }
}

/// Where a bonus stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BonusState {
    /// Waiting for the budget to cover it (see `note`).
    Held,
    /// In the referrer's released balance: the next epoch pays it.
    Released,
    /// Its referrals stopped qualifying; taken back by a posting.
    Reversed,
}

/// One bonus.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReferralBonus)]
#[serde(rename_all = "camelCase")]
pub struct Bonus {
    /// The k-th block of qualified referrals.
    pub milestone: i32,
    /// The qualified referrals it needs.
    pub threshold: i32,
    pub rule_version: i32,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub amount: Amount,
    pub state: BonusState,
    /// Why it is held.
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub awarded_at: OffsetDateTime,
}

/// How many referrals stand for one reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    pub reason: Reason,
    pub status: Status,
    pub count: i64,
}

/// A referrer's standing at a time.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReferralSnapshot)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub rule_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub referrals: i64,
    pub qualified: i64,
    pub pending: i64,
    pub disqualified: i64,
    /// The referrals that do not qualify, counted by reason.
    pub by_reason: Vec<ReasonCount>,
    /// Qualified referrals the next bonus needs.
    pub next_milestone: i64,
    pub badge: Option<Badge>,
    pub bonuses: Vec<Bonus>,
}

/// Counts assessments into a snapshot (bonuses apart).
fn tally(facts: &[assess::Facts], rules: &Rules, at: OffsetDateTime) -> Snapshot {
    let mut by_reason: BTreeMap<Reason, i64> = BTreeMap::new();
    let (mut qualified, mut pending, mut disqualified) = (0, 0, 0);
    for facts in facts {
        match assess::assess(facts, rules, at) {
            Ok(()) => qualified += 1,
            Err(reason) => {
                match reason.status() {
                    Status::Pending => pending += 1,
                    _ => disqualified += 1,
                }
                *by_reason.entry(reason).or_default() += 1;
            }
        }
    }
    let block = i64::from(rules.milestone);
    Snapshot {
        rule_version: rules.version,
        at,
        referrals: facts.len() as i64,
        qualified,
        pending,
        disqualified,
        by_reason: by_reason
            .into_iter()
            .map(|(reason, count)| ReasonCount {
                reason,
                status: reason.status(),
                count,
            })
            .collect(),
        next_milestone: (qualified / block + 1) * block,
        badge: Badge::for_qualified(qualified),
        bonuses: Vec::new(),
    }
}

/// `referrer`'s referrals assessed at `at` under the rules in force, oldest first.
pub async fn referrals(
    conn: &mut PgConnection,
    referrer: Uuid,
    at: OffsetDateTime,
) -> Result<(Rules, Vec<Referral>), sqlx::Error> {
    let rules = rules::current(conn).await?;
    let facts = assess::facts(conn, referrer, &rules, at).await?;
    let referrals = facts.iter().map(|facts| Referral::of(facts, &rules, at)).collect();
    Ok((rules, referrals))
}

/// `referrer`'s snapshot at `at`, computed from authoritative state (nothing is written).
pub async fn snapshot(conn: &mut PgConnection, referrer: Uuid, at: OffsetDateTime) -> Result<Snapshot, sqlx::Error> {
    let rules = rules::current(conn).await?;
    let facts = assess::facts(conn, referrer, &rules, at).await?;
    let mut snapshot = tally(&facts, &rules, at);
    snapshot.bonuses = bonuses(conn, referrer).await?;
    Ok(snapshot)
}

/// A bonus row with where its posting stands.
struct Awarded {
    milestone: i32,
    rule_version: i32,
    token: Address,
    threshold: i32,
    amount: Amount,
    posting_id: i64,
    open_hold: Option<i64>,
    note: Option<String>,
    reversed: bool,
    awarded_at: OffsetDateTime,
}

async fn awarded(conn: &mut PgConnection, referrer: Uuid) -> Result<Vec<Awarded>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT b.milestone, b.rule_version, b.token AS "token: SqlAddress", b.threshold, b.amount AS "amount: Amount",
                  b.posting_id, b.awarded_at, h.id AS "hold_id?", h.note AS "note?",
                  EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id) AS "hold_ended!",
                  EXISTS (SELECT 1 FROM referral_bonus_reversals r
                          WHERE (r.referrer_id, r.milestone, r.rule_version, r.token)
                              = (b.referrer_id, b.milestone, b.rule_version, b.token)) AS "reversed!"
           FROM referral_bonuses b LEFT JOIN ledger_holds h ON h.posting_id = b.posting_id
           WHERE b.referrer_id = $1
           ORDER BY b.milestone, b.token, b.rule_version"#,
        referrer
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let open_hold = row.hold_id.filter(|_| !row.hold_ended);
            Awarded {
                milestone: row.milestone,
                rule_version: row.rule_version,
                token: row.token.0,
                threshold: row.threshold,
                amount: row.amount,
                posting_id: row.posting_id,
                note: open_hold.and(row.note),
                open_hold,
                reversed: row.reversed,
                awarded_at: row.awarded_at,
            }
        })
        .collect())
}

async fn bonuses(conn: &mut PgConnection, referrer: Uuid) -> Result<Vec<Bonus>, sqlx::Error> {
    Ok(awarded(conn, referrer)
        .await?
        .into_iter()
        .map(|row| Bonus {
            milestone: row.milestone,
            threshold: row.threshold,
            rule_version: row.rule_version,
            token: row.token,
            amount: row.amount,
            state: if row.reversed {
                BonusState::Reversed
            } else if row.open_hold.is_some() {
                BonusState::Held
            } else {
                BonusState::Released
            },
            note: row.note,
            awarded_at: row.awarded_at,
        })
        .collect())
}

/// What a recomputation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recomputed {
    pub awarded: usize,
    pub reversed: usize,
}

/// Counts on the qualified-referrals boards the referrals that qualified since the last
/// count: the count only rises to the most ever qualified (see `leaderboard_referral_marks`).
async fn count_for_leaderboards(
    conn: &mut PgConnection,
    referrer: Uuid,
    address: Address,
    qualified: i64,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let counted = sqlx::query_scalar!(
        "SELECT counted FROM leaderboard_referral_marks WHERE referrer_id = $1",
        referrer
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or(0);
    if qualified <= counted {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO leaderboard_referral_marks (referrer_id, counted) VALUES ($1, $2)
         ON CONFLICT (referrer_id) DO UPDATE SET counted = EXCLUDED.counted",
        referrer,
        qualified
    )
    .execute(&mut *conn)
    .await?;
    let mut scores = Tally::default();
    scores.add(
        Category::QualifiedReferrals,
        Address::ZERO,
        address,
        (qualified - counted) as u128,
    );
    record_scores(conn, now, &scores).await
}

/// Brings `referrer`'s bonuses in line with its qualified referrals at `now`, in one
/// transaction under the referrer's lock; returns what changed and the snapshot after.
pub async fn recompute(
    db: &PgPool,
    chain_id: u64,
    platform: Address,
    referrer: Uuid,
    now: OffsetDateTime,
) -> Result<(Recomputed, Snapshot), ReferralError> {
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('referrals:' || $1::text, 0))",
        referrer.to_string()
    )
    .execute(&mut *tx)
    .await?;
    let address = sqlx::query_scalar!(
        r#"SELECT address AS "address: SqlAddress" FROM users WHERE id = $1"#,
        referrer
    )
    .fetch_one(&mut *tx)
    .await?
    .0;
    let rules = rules::current(&mut tx).await?;
    let facts = assess::facts(&mut tx, referrer, &rules, now).await?;
    let snapshot = tally(&facts, &rules, now);
    let qualified = snapshot.qualified;
    let mut changed = Recomputed::default();
    count_for_leaderboards(&mut tx, referrer, address, qualified, now).await?;

    let existing = awarded(&mut tx, referrer).await?;
    for bonus in existing
        .iter()
        .filter(|b| !b.reversed && i64::from(b.threshold) > qualified)
    {
        reverse(&mut tx, chain_id, platform, referrer, address, bonus, qualified).await?;
        changed.reversed += 1;
    }
    // One live bonus per block and token, under whichever version paid it; a block whose
    // bonus was reversed under this version is not paid again under it.
    let live: HashSet<(i32, Address)> = existing
        .iter()
        .filter(|b| !b.reversed && i64::from(b.threshold) <= qualified)
        .map(|b| (b.milestone, b.token))
        .collect();
    let taken: HashSet<(i32, Address)> = existing
        .iter()
        .filter(|b| b.rule_version == rules.version)
        .map(|b| (b.milestone, b.token))
        .collect();
    let blocks = qualified / i64::from(rules.milestone);
    for milestone in 1..=i32::try_from(blocks).unwrap_or(i32::MAX) {
        for rule in &rules.tokens {
            let key = (milestone, rule.token);
            if live.contains(&key) || taken.contains(&key) {
                continue;
            }
            let threshold = milestone.saturating_mul(rules.milestone);
            award(&mut tx, chain_id, referrer, address, &rules, rule, milestone, threshold).await?;
            changed.awarded += 1;
        }
    }
    let mut snapshot = snapshot;
    snapshot.bonuses = bonuses(&mut tx, referrer).await?;
    sqlx::query!(
        "INSERT INTO referral_sweeps (referrer_id, swept_at) VALUES ($1, $2)
         ON CONFLICT (referrer_id) DO UPDATE SET swept_at = EXCLUDED.swept_at",
        referrer,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if changed != Recomputed::default() {
        tracing::info!(%referrer, awarded = changed.awarded, reversed = changed.reversed, "referral bonuses recomputed");
    }
    Ok((changed, snapshot))
}

#[allow(clippy::too_many_arguments, reason = "one bonus's terms, each distinct")]
async fn award(
    conn: &mut PgConnection,
    chain_id: u64,
    referrer: Uuid,
    address: Address,
    rules: &Rules,
    rule: &rules::TokenRule,
    milestone: i32,
    threshold: i32,
) -> Result<(), ReferralError> {
    let mut posting = Posting::default();
    posting.spend(rule.budget_id, rule.bonus);
    posting.earn(Party::Referrer, address, rule.bonus);
    let funds = escrow::lock_funds(conn, chain_id, &[rule.budget_id]).await?;
    let short = funds.first().map(|funds| funds.cover(rule.bonus));
    if let Some(Err(why)) = short {
        // An empty budget makes the bonus wait, saying why; topping it up releases it.
        posting = posting.hold(NewHold {
            reason: HoldReason::BudgetEmpty,
            until: None,
            debtor: None,
            settled_after: None,
            note: format!("waits for the referral budget: {why}")
                .chars()
                .take(500)
                .collect(),
        });
    }
    let source_id = format!("bonus:{referrer}:{milestone}:{}", rules.version);
    let postings = BTreeMap::from([(rule.token, posting)]);
    let posted = ledger::post(conn, chain_id, Source::Referral, &source_id, &postings).await?;
    let Some(posted) = posted.first() else {
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO referral_bonuses (referrer_id, milestone, rule_version, token, threshold, amount, posting_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        referrer,
        milestone,
        rules.version,
        rule.token.as_slice(),
        threshold,
        rule.bonus as Amount,
        posted.posting_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes a bonus back: a held one's hold is reversed (the budget was never debited); a
/// released one moves back out of the referrer's balance to the platform, whose treasury
/// funded the budget (the budget's escrow stays debited, so every leaf stays backed).
async fn reverse(
    conn: &mut PgConnection,
    chain_id: u64,
    platform: Address,
    referrer: Uuid,
    address: Address,
    bonus: &Awarded,
    qualified: i64,
) -> Result<(), ReferralError> {
    let reason = format!(
        "{qualified} referrals qualify now, below the {} this bonus needs",
        bonus.threshold
    );
    let posting_id = match bonus.open_hold {
        Some(hold) => {
            let ending = Ending { by: None, reason };
            holds::reverse(conn, hold, &ending).await?
        }
        None => {
            let mut posting = Posting::default();
            posting.transfer((Party::Referrer, address), (Party::Platform, platform), bonus.amount);
            let source_id = format!("bonus:{referrer}:{}:{}", bonus.milestone, bonus.rule_version);
            let postings = BTreeMap::from([(bonus.token, posting)]);
            let posted = ledger::post(conn, chain_id, Source::Clawback, &source_id, &postings).await?;
            posted.first().map_or(bonus.posting_id, |posted| posted.posting_id)
        }
    };
    sqlx::query!(
        "INSERT INTO referral_bonus_reversals (referrer_id, milestone, rule_version, token, posting_id, qualified)
         VALUES ($1, $2, $3, $4, $5, $6)",
        referrer,
        bonus.milestone,
        bonus.rule_version,
        bonus.token.as_slice(),
        posting_id,
        i32::try_from(qualified).unwrap_or(i32::MAX)
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Recomputes the bonuses of the `page` referrers least recently recomputed (never first):
/// the scheduled job, which so goes round every referrer, a page a pass, however many there
/// are. One referrer that cannot be recomputed (a reversal its balance cannot take yet) is
/// logged and the others go on.
pub async fn recompute_due(
    db: &PgPool,
    chain_id: u64,
    platform: Address,
    now: OffsetDateTime,
    page: i64,
) -> Result<Recomputed, sqlx::Error> {
    let referrers = sqlx::query_scalar!(
        r#"SELECT r.referrer_id AS "referrer_id!" FROM (SELECT DISTINCT referrer_id FROM referrals) r
           LEFT JOIN referral_sweeps s ON s.referrer_id = r.referrer_id
           ORDER BY s.swept_at NULLS FIRST, r.referrer_id
           LIMIT $1"#,
        page
    )
    .fetch_all(db)
    .await?;
    let mut total = Recomputed::default();
    for referrer in referrers {
        match recompute(db, chain_id, platform, referrer, now).await {
            Ok((changed, _)) => {
                total.awarded += changed.awarded;
                total.reversed += changed.reversed;
            }
            Err(ReferralError::Database(error)) => return Err(error),
            Err(error) => tracing::warn!(%referrer, %error, "referral bonuses not recomputed"),
        }
    }
    Ok(total)
}

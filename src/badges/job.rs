//! The badge job: measures every user, then awards the tiers now held and revokes the tiers
//! no longer held, each change logged once. Safe to run twice at once: an award is an
//! insert on the (user, badge, tier) key and a revocation an update of a row still
//! awarded, so the second run finds nothing left to do.

use std::time::Duration;

use sqlx::PgPool;

use super::{Badge, CATALOG, RULE_VERSION, Tier};
use crate::platform::worker::{Leadership, Role, StepError};

/// What a run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    pub awarded: u64,
    pub revoked: u64,
}

/// Measures every user's badges from authoritative state into `badge_progress`:
///
/// - serving, witnessing: billing's all-time impression and witness counts (the leaderboard
///   rows booked with the money; the same in every declared zone, so the largest);
/// - spend: the user's campaigns with billed spend;
/// - referrals: the highest threshold among the user's referral bonuses not reversed;
/// - sales: the user's orders paid and not refunded;
/// - consent: scopes whose latest event on chain for the user's wallet is an unexpired grant;
/// - rewards: days with viewer rewards in the user's statement buckets.
pub async fn measure(db: &PgPool, chain_id: u64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"WITH counted AS (
               SELECT subject, category, max(score) AS score FROM leaderboard_scores
               WHERE period = 'all' AND category IN ('impressions_served', 'witness_work')
               GROUP BY subject, category
           ), consent AS (
               SELECT user_address, count(*) AS scopes FROM (
                   SELECT DISTINCT ON (user_address, scope) user_address, expiry FROM mirror_consent_events
                   WHERE chain_id = $1 ORDER BY user_address, scope, block_number DESC, log_index DESC) latest
               WHERE expiry > extract(epoch FROM now()) GROUP BY user_address
           ), measures AS (
               SELECT u.id AS user_id, 'serving'::badge AS badge, c.score::bigint AS value
               FROM counted c JOIN users u ON u.address = c.subject WHERE c.category = 'impressions_served'
               UNION ALL
               SELECT u.id, 'witnessing', c.score::bigint
               FROM counted c JOIN users u ON u.address = c.subject WHERE c.category = 'witness_work'
               UNION ALL
               SELECT b.owner_id, 'spend', count(*)
               FROM campaign_spend s JOIN campaigns c ON c.id = s.campaign_id JOIN brands b ON b.id = c.brand_id
               WHERE s.billed > 0 GROUP BY b.owner_id
               UNION ALL
               SELECT b.referrer_id, 'referrals', max(b.threshold)
               FROM referral_bonuses b
               WHERE NOT EXISTS (
                   SELECT 1 FROM referral_bonus_reversals r
                   WHERE (r.referrer_id, r.milestone, r.rule_version, r.token) = (b.referrer_id, b.milestone, b.rule_version, b.token))
               GROUP BY b.referrer_id
               UNION ALL
               SELECT seller_id, 'sales', count(*) FROM market_orders WHERE state = 'paid' GROUP BY seller_id
               UNION ALL
               SELECT u.id, 'consent', c.scopes FROM consent c JOIN users u ON u.address = c.user_address
               UNION ALL
               SELECT u.id, 'rewards', count(DISTINCT date_trunc('day', s.bucket, 'UTC'))
               FROM statement_buckets s JOIN users u ON u.address = s.payee
               WHERE s.line = 'viewer_rewards' AND s.amount > 0 GROUP BY u.id
           ), changed AS (
               INSERT INTO badge_progress (user_id, badge, value)
               SELECT user_id, badge, value FROM measures WHERE value > 0
               ON CONFLICT (user_id, badge) DO UPDATE SET value = EXCLUDED.value, computed_at = now()
               WHERE badge_progress.value <> EXCLUDED.value
           )
           UPDATE badge_progress p SET value = 0, computed_at = now()
           WHERE p.value > 0
             AND NOT EXISTS (SELECT 1 FROM measures m WHERE m.user_id = p.user_id AND m.badge = p.badge AND m.value > 0)"#,
        chain_id as i64
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The catalog as three parallel arrays, for SQL.
fn catalog() -> (Vec<Badge>, Vec<Tier>, Vec<i64>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for definition in &CATALOG {
        for (tier, threshold) in Tier::ALL.into_iter().zip(definition.thresholds) {
            columns.0.push(definition.badge);
            columns.1.push(tier);
            columns.2.push(threshold);
        }
    }
    columns
}

/// Awards every tier a measure reaches and revokes every tier it no longer does.
pub async fn judge(db: &PgPool) -> Result<Judged, sqlx::Error> {
    let (badges, tiers, thresholds) = catalog();
    let awarded = sqlx::query!(
        r#"WITH catalog AS (
               SELECT * FROM UNNEST($1::badge[], $2::badge_tier[], $3::bigint[]) AS c(badge, tier, threshold)
           ), awarded AS (
               INSERT INTO badge_awards (user_id, badge, tier, basis, rule_version)
               SELECT p.user_id, c.badge, c.tier, p.value, $4
               FROM badge_progress p JOIN catalog c ON c.badge = p.badge AND p.value >= c.threshold
               ON CONFLICT (user_id, badge, tier) DO UPDATE
                   SET basis = EXCLUDED.basis, rule_version = EXCLUDED.rule_version, awarded_at = now(),
                       revoked_at = NULL, revoked_reason = NULL
               WHERE badge_awards.revoked_at IS NOT NULL
               RETURNING user_id, badge, tier, basis
           )
           INSERT INTO badge_events (user_id, badge, tier, kind, basis)
           SELECT user_id, badge, tier, 'awarded', basis FROM awarded"#,
        &badges as &[Badge],
        &tiers as &[Tier],
        &thresholds,
        RULE_VERSION
    )
    .execute(db)
    .await?
    .rows_affected();
    let revoked = sqlx::query!(
        r#"WITH catalog AS (
               SELECT * FROM UNNEST($1::badge[], $2::badge_tier[], $3::bigint[]) AS c(badge, tier, threshold)
           ), lost AS (
               SELECT a.user_id, a.badge, a.tier, coalesce(p.value, 0) AS value, c.threshold
               FROM badge_awards a
               JOIN catalog c ON c.badge = a.badge AND c.tier = a.tier
               LEFT JOIN badge_progress p ON p.user_id = a.user_id AND p.badge = a.badge
               WHERE a.revoked_at IS NULL AND coalesce(p.value, 0) < c.threshold
           ), revoked AS (
               UPDATE badge_awards a
               SET revoked_at = now(),
                   revoked_reason = format('%s fell to %s, below the %s tier''s %s', l.badge, l.value, l.tier, l.threshold)
               FROM lost l
               WHERE a.user_id = l.user_id AND a.badge = l.badge AND a.tier = l.tier AND a.revoked_at IS NULL
               RETURNING a.user_id, a.badge, a.tier, l.value, a.revoked_reason
           )
           INSERT INTO badge_events (user_id, badge, tier, kind, basis, reason)
           SELECT user_id, badge, tier, 'revoked', value, revoked_reason FROM revoked"#,
        &badges as &[Badge],
        &tiers as &[Tier],
        &thresholds
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(Judged { awarded, revoked })
}

/// The badge job as a background role, one process at a time.
#[derive(Debug, Clone)]
pub struct Awarder {
    pub db: PgPool,
    pub chain_id: u64,
}

const LOCK_KEY: i64 = 0x6164_6573_6264_6767; // "adesbdgg"
const JUDGE_EVERY: Duration = Duration::from_secs(60);

impl Role for Awarder {
    fn name(&self) -> &'static str {
        "badge-awarder"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LOCK_KEY,
            poll: JUDGE_EVERY,
        })
    }

    fn longest_quiet(&self) -> Duration {
        JUDGE_EVERY
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        measure(&self.db, self.chain_id)
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        let judged = judge(&self.db).await.map_err(|error| StepError::Retry(error.into()))?;
        metrics::counter!("adescrow_badges_awarded_total").increment(judged.awarded);
        metrics::counter!("adescrow_badges_revoked_total").increment(judged.revoked);
        Ok(JUDGE_EVERY)
    }
}

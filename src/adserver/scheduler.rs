//! The campaign scheduler: every minute (by default) it moves campaigns through the status
//! machine as time passes and budgets are spent.
//!
//! - Campaigns past their end date complete.
//! - A running campaign whose brand is over its daily or monthly budget (billed spend in the
//!   brand's zone), or whose escrow is exhausted or unfunded, becomes BUDGET_REACHED; when a
//!   new day or month (or a top-up) brings it back under, it returns to SCHEDULED.
//! - A scheduled campaign inside its dates and daypart, with budget, starts; a running one
//!   outside them goes back to SCHEDULED.
//!
//! [`tick`] takes the time as an argument so tests can put the clock anywhere. A campaign
//! whose row the scheduler cannot make sense of is logged and left where it is; the others
//! move on. [`Scheduler`] is the role that ticks, one active instance across processes.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::adserver::campaigns::{self, CampaignError, CampaignStatus, Change, StatusCause};
use crate::adserver::schedule::{self, Schedule};
use crate::money::Amount;
use crate::platform::worker::{Backoff, Leadership, Role, StepError};

/// `pg_advisory_lock` key of the scheduler ("adsched" in ASCII).
const LOCK_KEY: i64 = 0x0061_6473_6368_6564;

/// A status change the scheduler made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub campaign: Uuid,
    pub from: CampaignStatus,
    pub to: CampaignStatus,
    pub reason: &'static str,
}

/// What the scheduler knows about one campaign at `now`.
struct Facts {
    status: CampaignStatus,
    ended: bool,
    live: bool,
    brand_active: bool,
    /// Why the budget stops it, if it does.
    over_budget: Option<&'static str>,
}

/// The next step for a campaign, if any. Applied repeatedly: a campaign whose budget came
/// back moves BUDGET_REACHED -> SCHEDULED -> RUNNING in one tick when inside its window.
fn next(facts: &Facts) -> Option<(CampaignStatus, StatusCause, &'static str)> {
    use CampaignStatus::*;
    if facts.ended {
        return (facts.status != Completed).then_some((Completed, StatusCause::Scheduler, "end date reached"));
    }
    match facts.status {
        Running => {
            if let Some(reason) = facts.over_budget {
                Some((BudgetReached, StatusCause::Budget, reason))
            } else if !facts.brand_active {
                Some((Scheduled, StatusCause::Scheduler, "brand deactivated"))
            } else if !facts.live {
                Some((Scheduled, StatusCause::Scheduler, "outside its dates or daypart"))
            } else {
                None
            }
        }
        BudgetReached => {
            facts
                .over_budget
                .is_none()
                .then_some((Scheduled, StatusCause::Budget, "budget available again"))
        }
        Scheduled => (facts.live && facts.brand_active && facts.over_budget.is_none()).then_some((
            Running,
            StatusCause::Scheduler,
            "inside its dates and daypart",
        )),
        Draft | Paused | Completed => None,
    }
}

/// One pass over every campaign that may need to move. Returns what moved.
pub async fn tick(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<Vec<Moved>, sqlx::Error> {
    let campaigns = sqlx::query!(
        r#"SELECT c.id AS "id!", c.brand_id AS "brand_id!", c.status AS "status!: CampaignStatus",
                  schedule_instant(c.starts_at) AS "starts_at!", schedule_instant(c.ends_at) AS "ends_at!", c.daypart_start_hour, c.daypart_end_hour,
                  b.time_zone AS "time_zone!", b.active AS "brand_active!",
                  b.daily_budget AS "daily_budget!: Amount", b.monthly_budget AS "monthly_budget!: Amount",
                  cb.available AS "available!: Amount"
           FROM campaigns c JOIN brands b ON b.id = c.brand_id
           JOIN campaign_budgets($1) cb ON cb.campaign_id = c.id
           WHERE c.status <> 'completed'"#,
        i64::try_from(chain_id).unwrap_or(i64::MAX)
    )
    .fetch_all(db)
    .await?;

    let now_ts = schedule::timestamp(now);
    // Each brand's local day and month, in its own zone.
    let mut periods: HashMap<Uuid, (time::Date, time::Date)> = HashMap::new();
    for row in &campaigns {
        if let Some(zone) = schedule::zone(&row.time_zone) {
            periods
                .entry(row.brand_id)
                .or_insert_with(|| schedule::local_day_and_month(now_ts, &zone));
        }
    }
    let spend = brand_spend(db, &periods).await?;

    let mut moved = Vec::new();
    for row in campaigns {
        let Some(zone) = schedule::zone(&row.time_zone) else {
            tracing::warn!(campaign = %row.id, zone = row.time_zone, "unknown time zone; campaign not scheduled");
            continue;
        };
        let campaign_schedule =
            match Schedule::from_db(row.starts_at, row.ends_at, row.daypart_start_hour, row.daypart_end_hour) {
                Ok(campaign_schedule) => campaign_schedule,
                Err(error) => {
                    tracing::warn!(campaign = %row.id, %error, "campaign not scheduled");
                    continue;
                }
            };
        let (daily, monthly) = spend.get(&row.brand_id).copied().unwrap_or_default();
        let over_budget = if daily >= row.daily_budget {
            Some("brand daily budget reached")
        } else if monthly >= row.monthly_budget {
            Some("brand monthly budget reached")
        } else if row.available.is_zero() {
            Some("escrow unfunded or exhausted")
        } else {
            None
        };
        let mut facts = Facts {
            status: row.status,
            ended: campaign_schedule.has_ended(now_ts),
            live: campaign_schedule.is_live(now_ts, &zone),
            brand_active: row.brand_active,
            over_budget,
        };
        while let Some((to, cause, reason)) = next(&facts) {
            let change = Change {
                to,
                cause,
                actor: None,
                reason,
                at: now,
            };
            match campaigns::request_status(db, row.id, None, change).await {
                Ok(from) => {
                    tracing::info!(campaign = %row.id, %from, %to, reason, "campaign status changed");
                    moved.push(Moved {
                        campaign: row.id,
                        from,
                        to,
                        reason,
                    });
                    facts.status = to;
                }
                // Someone (an advertiser pausing, say) moved it since we read it: next tick.
                Err(CampaignError::Refused { .. } | CampaignError::NotFound) => break,
                Err(CampaignError::Database(error)) => return Err(error),
                // Refusals of settings do not arise from a status change.
                Err(other) => {
                    tracing::warn!(campaign = %row.id, error = %other, "campaign not moved");
                    break;
                }
            }
        }
    }
    Ok(moved)
}

/// Billed spend of each brand on its local day and in its local month so far.
pub async fn brand_spend(
    db: impl sqlx::PgExecutor<'_>,
    periods: &HashMap<Uuid, (time::Date, time::Date)>,
) -> Result<HashMap<Uuid, (Amount, Amount)>, sqlx::Error> {
    let (brands, (days, months)): (Vec<Uuid>, (Vec<_>, Vec<_>)) = periods
        .iter()
        .map(|(brand, (day, month))| (*brand, (*day, *month)))
        .unzip();
    let rows = sqlx::query!(
        r#"SELECT p.brand AS "brand!",
                  coalesce(sum(s.spend) FILTER (WHERE s.day = p.today), 0) AS "daily!: Amount",
                  coalesce(sum(s.spend), 0) AS "monthly!: Amount"
           FROM UNNEST($1::uuid[], $2::date[], $3::date[]) AS p(brand, today, month_start)
           JOIN brand_daily_spend s ON s.brand_id = p.brand AND s.day >= p.month_start AND s.day <= p.today
           GROUP BY p.brand"#,
        &brands,
        &days,
        &months
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.brand, (row.daily, row.monthly)))
        .collect())
}

/// The scheduler role: [`tick`] every `interval` in the one process that holds its lock.
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub db: PgPool,
    pub chain_id: u64,
    pub interval: Duration,
}

impl Role for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LOCK_KEY,
            poll: self.interval,
        })
    }

    fn longest_quiet(&self) -> Duration {
        self.interval
    }

    fn retry(&self) -> Backoff {
        Backoff::new(self.interval.min(Duration::from_secs(1)), self.interval)
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let moved = tick(&self.db, self.chain_id, OffsetDateTime::now_utc())
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        metrics::counter!("adescrow_scheduler_status_changes_total").increment(moved.len() as u64);
        Ok(self.interval)
    }
}

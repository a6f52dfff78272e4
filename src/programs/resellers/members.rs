//! End advertisers joining a reseller, and the reseller's monthly quotas.
//!
//! Usage is one row per reseller and calendar month (UTC), and each count is one
//! conditional upsert: it adds one unless that would pass the hard quota, so concurrent
//! joins or calls never pass it. Past the soft quota a call still goes, with a warning.

use serde::Serialize;
use sqlx::PgPool;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ResellerError, branding};
use crate::programs::codes;

/// Which monthly quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerQuota)]
pub enum Quota {
    EndUsers,
    ApiCalls,
}

impl Quota {
    /// The name problems and warnings give it.
    pub fn label(self) -> &'static str {
        match self {
            Self::EndUsers => "endUsers",
            Self::ApiCalls => "apiCalls",
        }
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A count past a soft quota: the call went, and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftWarning {
    pub quota: Quota,
    pub used: i64,
    pub soft: i64,
}

impl SoftWarning {
    /// The warning header's value.
    pub fn header(&self) -> String {
        format!("{}; used={}; soft={}", self.quota, self.used, self.soft)
    }
}

/// How an advertiser joined.
#[derive(Debug, Clone)]
pub enum JoinBy {
    Code(String),
    /// The host name the request came to.
    Domain(String),
}

/// An advertiser's membership.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerMembership)]
pub struct Membership {
    pub reseller_id: Uuid,
    pub reseller: String,
    pub via: String,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// The first day of `now`'s calendar month (UTC), and the seconds until the next one.
fn month(now: OffsetDateTime) -> (Date, u64) {
    let now = now.to_offset(time::UtcOffset::UTC);
    let first = now.date().replace_day(1).unwrap_or(now.date());
    let next = if first.month() == time::Month::December {
        Date::from_calendar_date(first.year() + 1, time::Month::January, 1)
    } else {
        Date::from_calendar_date(first.year(), first.month().next(), 1)
    }
    .unwrap_or(first);
    let left = next.midnight().assume_utc() - now;
    (first, left.whole_seconds().max(1) as u64)
}

/// Joins `user` to the reseller with this code or proven domain, if it is in business and
/// its end-user quota for the month allows.
pub async fn join(
    db: &PgPool,
    user: Uuid,
    by: &JoinBy,
    now: OffsetDateTime,
) -> Result<(Membership, Option<SoftWarning>), ResellerError> {
    let (column, value, via) = match by {
        JoinBy::Code(code) => (
            "code",
            codes::normalize(code, super::CODE_PREFIX).ok_or(ResellerError::UnknownCode)?,
            "code",
        ),
        JoinBy::Domain(host) => (
            "domain",
            branding::normalize(host).ok_or(ResellerError::UnknownCode)?,
            "domain",
        ),
    };
    let mut tx = db.begin().await?;
    let reseller = sqlx::query!(
        r#"SELECT r.id, r.name, r.end_users_soft, r.end_users_hard,
                  EXISTS (SELECT 1 FROM reseller_contracts c WHERE c.reseller_id = r.id AND c.status = 'active'
                          AND c.starts_at <= $3 AND c.ends_at > $3) AS "active!"
           FROM resellers r
           WHERE ($1 = 'code' AND r.code = $2) OR ($1 = 'domain' AND r.domain = $2 AND r.domain_verified_at IS NOT NULL)"#,
        column,
        value,
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ResellerError::UnknownCode)?;
    if !reseller.active {
        return Err(ResellerError::NotInBusiness);
    }
    let joined = sqlx::query!(
        "INSERT INTO reseller_members (user_id, reseller_id, via, joined_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO NOTHING",
        user,
        reseller.id,
        via,
        now
    )
    .execute(&mut *tx)
    .await?;
    if joined.rows_affected() == 0 {
        return Err(ResellerError::AlreadyJoined);
    }
    let (first, retry_after_secs) = month(now);
    let hard = reseller.end_users_hard.map(i64::from);
    let used = sqlx::query_scalar!(
        "INSERT INTO reseller_usage (reseller_id, month, end_users) SELECT $1, $2, 1 WHERE $3::bigint IS NULL OR $3 >= 1
         ON CONFLICT (reseller_id, month) DO UPDATE SET end_users = reseller_usage.end_users + 1
         WHERE $3::bigint IS NULL OR reseller_usage.end_users < $3
         RETURNING end_users",
        reseller.id,
        first,
        hard
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ResellerError::QuotaExceeded {
        quota: Quota::EndUsers,
        limit: hard.unwrap_or_default(),
        retry_after_secs,
    })?;
    tx.commit().await?;
    let warning = reseller
        .end_users_soft
        .map(i64::from)
        .filter(|soft| i64::from(used) > *soft)
        .map(|soft| SoftWarning {
            quota: Quota::EndUsers,
            used: i64::from(used),
            soft,
        });
    Ok((
        Membership {
            reseller_id: reseller.id,
            reseller: reseller.name,
            via: via.to_owned(),
            joined_at: now,
        },
        warning,
    ))
}

/// The reseller `user` joined, if any.
pub async fn membership(db: &PgPool, user: Uuid) -> Result<Option<Membership>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT m.reseller_id, r.name, m.via, m.joined_at FROM reseller_members m
         JOIN resellers r ON r.id = m.reseller_id WHERE m.user_id = $1",
        user
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Membership {
        reseller_id: row.reseller_id,
        reseller: row.name,
        via: row.via,
        joined_at: row.joined_at,
    }))
}

/// Counts an API call by `user` against its reseller's quota, if it joined one: refused
/// past the hard quota, warned past the soft one. Callers who joined none cost one
/// primary-key lookup.
pub async fn count_call(db: &PgPool, user: Uuid, now: OffsetDateTime) -> Result<Option<SoftWarning>, ResellerError> {
    let Some(reseller) = sqlx::query!(
        "SELECT r.id, r.api_calls_soft, r.api_calls_hard FROM reseller_members m JOIN resellers r ON r.id = m.reseller_id
         WHERE m.user_id = $1",
        user
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let (first, retry_after_secs) = month(now);
    let used = sqlx::query_scalar!(
        "INSERT INTO reseller_usage (reseller_id, month, api_calls) SELECT $1, $2, 1 WHERE $3::bigint IS NULL OR $3 >= 1
         ON CONFLICT (reseller_id, month) DO UPDATE SET api_calls = reseller_usage.api_calls + 1
         WHERE $3::bigint IS NULL OR reseller_usage.api_calls < $3
         RETURNING api_calls",
        reseller.id,
        first,
        reseller.api_calls_hard
    )
    .fetch_optional(db)
    .await?
    .ok_or(ResellerError::QuotaExceeded {
        quota: Quota::ApiCalls,
        limit: reseller.api_calls_hard.unwrap_or_default(),
        retry_after_secs,
    })?;
    Ok(reseller
        .api_calls_soft
        .filter(|soft| used > *soft)
        .map(|soft| SoftWarning {
            quota: Quota::ApiCalls,
            used,
            soft,
        }))
}

/// A reseller's usage for one month, against its quotas.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerUsage)]
pub struct Usage {
    /// The calendar month (UTC), `YYYY-MM`.
    pub month: String,
    pub end_users: i64,
    pub api_calls: i64,
    pub quotas: super::Quotas,
    /// End users in all, whenever they joined.
    pub members: i64,
}

/// The reseller's usage in the last `months` calendar months, newest first.
pub async fn usage(db: &PgPool, reseller: Uuid, months: u32, now: OffsetDateTime) -> Result<Vec<Usage>, ResellerError> {
    let quotas = super::get(db, reseller, now).await?.quotas;
    let (this_month, _) = month(now);
    let mut firsts = vec![this_month];
    for _ in 1..months {
        let last = *firsts.last().unwrap_or(&this_month);
        let previous = last.previous_day().map(|d| d.replace_day(1).unwrap_or(d));
        match previous {
            Some(first) => firsts.push(first),
            None => break,
        }
    }
    let rows = sqlx::query!(
        r#"SELECT f.month AS "month!", coalesce(u.end_users, 0) AS "end_users!", coalesce(u.api_calls, 0) AS "api_calls!",
                  (SELECT count(*) FROM reseller_members m WHERE m.reseller_id = $1) AS "members!"
           FROM UNNEST($2::date[]) AS f(month)
           LEFT JOIN reseller_usage u ON u.reseller_id = $1 AND u.month = f.month
           ORDER BY f.month DESC"#,
        reseller,
        &firsts
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Usage {
            month: format!("{:04}-{:02}", row.month.year(), u8::from(row.month.month())),
            end_users: i64::from(row.end_users),
            api_calls: row.api_calls,
            quotas,
            members: row.members,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_starts_on_its_first_and_ends_at_the_next() {
        let now = time::macros::datetime!(2026-12-31 23:59:30 UTC);
        let (first, left) = month(now);
        assert_eq!(first, time::macros::date!(2026 - 12 - 01));
        assert_eq!(left, 30);
        let (first, left) = month(time::macros::datetime!(2027-02-01 00:00:00 UTC));
        assert_eq!(first, time::macros::date!(2027 - 02 - 01));
        assert_eq!(left, 28 * 86_400);
    }
}

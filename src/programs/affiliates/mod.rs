//! The affiliate program: partners who bring paying advertisers earn a commission out of
//! the platform's share of what those advertisers are billed. A user applies (pending), an
//! admin approves (active), suspends or terminates, each change recorded with who and why;
//! an active affiliate's codes (`AFF…`) attribute an advertiser at its first sign-in or when
//! it creates a campaign, once and for good. Commissions accrue from the ledger, are held,
//! released and clawed back in [`commissions`].

pub mod commissions;

use std::time::Duration;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{self, Role};
use crate::money::Amount;
use crate::money::holds::HoldError;
use crate::money::ledger::LedgerError;
use crate::programs::codes;

/// What affiliate codes start with.
pub const CODE_PREFIX: &str = "AFF";

/// Where an affiliate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[schema(as = AffiliateStatus)]
#[sqlx(type_name = "affiliate_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Active,
    Suspended,
    Terminated,
}

impl Status {
    /// The workflow: pending -> active; active <-> suspended; anything but terminated ->
    /// terminated (which is final).
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Active) | (Active, Suspended) | (Suspended, Active) | (Pending | Active | Suspended, Terminated)
        )
    }
}

/// Why an affiliate operation was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum AffiliateError {
    #[error("not an affiliate: apply first")]
    NotAnAffiliate,
    #[error("already applied (status {0:?})")]
    AlreadyApplied(Status),
    #[error("the affiliate is {current:?}, which cannot become {to:?}")]
    Workflow { current: Status, to: Status },
    #[error("only an active affiliate has codes (this one is {0:?})")]
    NotActive(Status),
    #[error("must be {min} to {max} basis points")]
    RateOutOfBounds { min: u32, max: u32 },
    #[error("no such affiliate code")]
    UnknownCode,
    #[error("this affiliate code's affiliate is not active, so it does not count")]
    CodeInactive,
    #[error("an affiliate does not attribute their own spend")]
    SelfReferral,
    #[error("this advertiser is already attributed to an affiliate")]
    AlreadyAttributed,
    #[error("this wallet has signed in before: an affiliate code counts at the first sign-in or with a campaign")]
    NotFirstSignIn,
    #[error(transparent)]
    Account(#[from] accounts::AccountError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The program's terms, from configuration.
#[derive(Debug, Clone)]
pub struct Terms {
    /// A new affiliate's rate, in basis points of the platform's share.
    pub default_rate_bps: u32,
    /// The highest rate an admin may set.
    pub max_rate_bps: u32,
    /// Commissions accrue for this many calendar months from the attribution.
    pub months: u8,
    /// Each commission is held at least this long.
    pub hold: Duration,
    /// Commissions are released once an affiliate's due ones reach this, per token.
    pub min_payout: Vec<(Address, Amount)>,
    /// Who the platform's share is paid to (commissions move out of it).
    pub platform: Address,
}

impl Terms {
    pub fn min_payout(&self, token: Address) -> Amount {
        self.min_payout
            .iter()
            .find(|(t, _)| *t == token)
            .map_or(Amount(1), |(_, amount)| *amount)
    }

    fn check_rate(&self, rate_bps: u32) -> Result<i32, AffiliateError> {
        if !(1..=self.max_rate_bps).contains(&rate_bps) {
            return Err(AffiliateError::RateOutOfBounds {
                min: 1,
                max: self.max_rate_bps,
            });
        }
        Ok(rate_bps as i32)
    }

    /// When an attribution made at `at` stops earning.
    pub fn attribution_end(&self, at: OffsetDateTime) -> OffsetDateTime {
        let months = jiff::Span::new().months(i64::from(self.months));
        // Calendar months in UTC, a day past the end of a shorter month landing on its last.
        jiff::Timestamp::from_second(at.unix_timestamp())
            .ok()
            .and_then(|ts| ts.to_zoned(jiff::tz::TimeZone::UTC).checked_add(months).ok())
            .and_then(|end| OffsetDateTime::from_unix_timestamp(end.timestamp().as_second()).ok())
            .map_or(at + time::Duration::days(31 * i64::from(self.months)), |end| {
                end + time::Duration::nanoseconds(i64::from(at.nanosecond()))
            })
    }
}

/// One change of an affiliate, for the record.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AffiliateChange)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub from: Option<Status>,
    pub to: Status,
    pub rate_bps: i32,
    pub by: Uuid,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An affiliate with its codes and history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Affiliate {
    pub user_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub address: Address,
    pub status: Status,
    pub rate_bps: i32,
    pub codes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub applied_at: OffsetDateTime,
    pub changes: Vec<Change>,
}

/// `user` applies to be an affiliate, at the default rate.
pub async fn apply(db: &PgPool, terms: &Terms, user: Uuid, reason: &str) -> Result<Affiliate, AffiliateError> {
    let mut tx = db.begin().await?;
    let rate = terms.check_rate(terms.default_rate_bps)?;
    let inserted = sqlx::query!(
        "INSERT INTO affiliates (user_id, rate_bps) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user,
        rate
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        let current = lock(&mut tx, user).await?;
        return Err(AffiliateError::AlreadyApplied(current.0));
    }
    record(&mut tx, user, None, Status::Pending, rate, user, reason).await?;
    tx.commit().await?;
    get(db, user).await
}

async fn lock(conn: &mut PgConnection, user: Uuid) -> Result<(Status, i32), AffiliateError> {
    let row = sqlx::query!(
        r#"SELECT status AS "status: Status", rate_bps FROM affiliates WHERE user_id = $1 FOR UPDATE"#,
        user
    )
    .fetch_optional(conn)
    .await?
    .ok_or(AffiliateError::NotAnAffiliate)?;
    Ok((row.status, row.rate_bps))
}

async fn record(
    conn: &mut PgConnection,
    user: Uuid,
    from: Option<Status>,
    to: Status,
    rate: i32,
    by: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO affiliate_changes (user_id, from_status, to_status, rate_bps, changed_by, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
        user,
        from as Option<Status>,
        to as Status,
        rate,
        by,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An admin moves an affiliate along the workflow. Approval grants the affiliate role (kept
/// afterwards, so that a suspended or terminated affiliate still sees its commissions).
pub async fn change_status(
    db: &PgPool,
    user: Uuid,
    to: Status,
    admin: Uuid,
    reason: &str,
) -> Result<Affiliate, AffiliateError> {
    let mut tx = db.begin().await?;
    let (current, rate) = lock(&mut tx, user).await?;
    if !current.may_become(to) {
        return Err(AffiliateError::Workflow { current, to });
    }
    sqlx::query!(
        "UPDATE affiliates SET status = $2 WHERE user_id = $1",
        user,
        to as Status
    )
    .execute(&mut *tx)
    .await?;
    if to == Status::Active {
        accounts::grant_role(&mut tx, user, Role::Affiliate).await?;
    }
    record(&mut tx, user, Some(current), to, rate, admin, reason).await?;
    tx.commit().await?;
    tracing::info!(affiliate = %user, ?current, ?to, %admin, "affiliate status changed");
    get(db, user).await
}

/// An admin sets an affiliate's rate; spend billed before keeps the rate in force when it was billed.
pub async fn set_rate(
    db: &PgPool,
    terms: &Terms,
    user: Uuid,
    rate_bps: u32,
    admin: Uuid,
    reason: &str,
) -> Result<Affiliate, AffiliateError> {
    let rate = terms.check_rate(rate_bps)?;
    let mut tx = db.begin().await?;
    let (status, _) = lock(&mut tx, user).await?;
    if status == Status::Terminated {
        return Err(AffiliateError::Workflow {
            current: status,
            to: status,
        });
    }
    sqlx::query!("UPDATE affiliates SET rate_bps = $2 WHERE user_id = $1", user, rate)
        .execute(&mut *tx)
        .await?;
    record(&mut tx, user, Some(status), status, rate, admin, reason).await?;
    tx.commit().await?;
    get(db, user).await
}

/// A new code for an active affiliate.
pub async fn create_code(db: &PgPool, user: Uuid) -> Result<String, AffiliateError> {
    let mut tx = db.begin().await?;
    let (status, _) = lock(&mut tx, user).await?;
    if status != Status::Active {
        return Err(AffiliateError::NotActive(status));
    }
    loop {
        let code = codes::generate(CODE_PREFIX);
        let inserted = sqlx::query!(
            "INSERT INTO affiliate_codes (code, affiliate_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            code,
            user
        )
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(code);
        }
    }
}

pub async fn find(db: &PgPool, user: Uuid) -> Result<Option<Affiliate>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT a.user_id, u.address AS "address: SqlAddress", a.status AS "status: Status", a.rate_bps, a.applied_at,
                  coalesce((SELECT array_agg(c.code ORDER BY c.created_at, c.code) FROM affiliate_codes c
                            WHERE c.affiliate_id = a.user_id), '{}') AS "codes!"
           FROM affiliates a JOIN users u ON u.id = a.user_id WHERE a.user_id = $1"#,
        user
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let changes = sqlx::query!(
        r#"SELECT from_status AS "from_status: Status", to_status AS "to_status: Status", rate_bps, changed_by, reason, changed_at
           FROM affiliate_changes WHERE user_id = $1 ORDER BY id"#,
        user
    )
    .fetch_all(db)
    .await?;
    Ok(Some(Affiliate {
        user_id: row.user_id,
        address: row.address.0,
        status: row.status,
        rate_bps: row.rate_bps,
        codes: row.codes,
        applied_at: row.applied_at,
        changes: changes
            .into_iter()
            .map(|c| Change {
                from: c.from_status,
                to: c.to_status,
                rate_bps: c.rate_bps,
                by: c.changed_by,
                reason: c.reason,
                at: c.changed_at,
            })
            .collect(),
    }))
}

pub async fn get(db: &PgPool, user: Uuid) -> Result<Affiliate, AffiliateError> {
    find(db, user).await?.ok_or(AffiliateError::NotAnAffiliate)
}

/// Every affiliate, pending ones first, then by application.
pub async fn list(db: &PgPool) -> Result<Vec<Affiliate>, sqlx::Error> {
    let ids = sqlx::query_scalar!(
        "SELECT user_id FROM affiliates ORDER BY status <> 'pending', applied_at, user_id LIMIT 1000"
    )
    .fetch_all(db)
    .await?;
    let mut affiliates = Vec::with_capacity(ids.len());
    for id in ids {
        affiliates.extend(find(db, id).await?);
    }
    Ok(affiliates)
}

/// How an attribution arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[schema(as = AttributionChannel)]
#[sqlx(type_name = "attribution_channel", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    SignIn,
    Campaign,
}

/// Attributes `advertiser` to the affiliate whose code it presented, in the caller's
/// transaction: once and for good, to an active affiliate other than itself.
pub async fn attribute(
    conn: &mut PgConnection,
    terms: &Terms,
    advertiser: Uuid,
    code: &str,
    channel: Channel,
    now: OffsetDateTime,
) -> Result<Uuid, AffiliateError> {
    let code = codes::normalize(code, CODE_PREFIX).ok_or(AffiliateError::UnknownCode)?;
    let affiliate = sqlx::query!(
        r#"SELECT c.affiliate_id, a.status AS "status: Status", (u.disabled_at IS NOT NULL) AS "disabled!"
           FROM affiliate_codes c JOIN affiliates a ON a.user_id = c.affiliate_id JOIN users u ON u.id = a.user_id
           WHERE c.code = $1"#,
        code
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AffiliateError::UnknownCode)?;
    if affiliate.affiliate_id == advertiser {
        return Err(AffiliateError::SelfReferral);
    }
    if affiliate.status != Status::Active || affiliate.disabled {
        return Err(AffiliateError::CodeInactive);
    }
    let inserted = sqlx::query!(
        "INSERT INTO affiliate_attributions (advertiser_id, affiliate_id, code, channel, attributed_at, ends_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        advertiser,
        affiliate.affiliate_id,
        code,
        channel as Channel,
        now,
        terms.attribution_end(now)
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AffiliateError::AlreadyAttributed);
    }
    Ok(affiliate.affiliate_id)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn terms() -> Terms {
        Terms {
            default_rate_bps: 2000,
            max_rate_bps: 5000,
            months: 3,
            hold: Duration::from_secs(30 * 86_400),
            min_payout: Vec::new(),
            platform: Address::ZERO,
        }
    }

    #[test]
    fn the_workflow_allows_only_its_moves() {
        use Status::*;
        let all = [Pending, Active, Suspended, Terminated];
        let allowed: Vec<(Status, Status)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.may_become(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Pending, Active),
                (Pending, Terminated),
                (Active, Suspended),
                (Active, Terminated),
                (Suspended, Active),
                (Suspended, Terminated)
            ]
        );
    }

    #[test]
    fn attribution_lasts_calendar_months_clamped_to_the_month_end() {
        let terms = terms();
        assert_eq!(
            terms.attribution_end(datetime!(2026-11-30 10:15:00.5 UTC)),
            datetime!(2027-02-28 10:15:00.5 UTC)
        );
        assert_eq!(
            terms.attribution_end(datetime!(2026-01-15 0:00 UTC)),
            datetime!(2026-04-15 0:00 UTC)
        );
    }

    #[test]
    fn rates_are_bounded() {
        let terms = terms();
        assert!(terms.check_rate(0).is_err());
        assert!(terms.check_rate(5001).is_err());
        assert_eq!(terms.check_rate(5000).unwrap(), 5000);
    }
}

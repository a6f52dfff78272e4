//! White-label resellers: agencies that resell the platform under their own brand.
//!
//! - An agency applies ([`apply`]) and gets a code its advertisers join with. Its contracts
//!   ([`contracts`]) go draft -> pending approval -> approved -> active -> expired (by its
//!   end) or terminated, each change recorded with who and why; it is in business while an
//!   active contract is within its dates.
//! - Its branding ([`branding`]) is served by host name once its custom domain is proven by
//!   a DNS TXT record.
//! - End advertisers join it by its code or domain ([`members`]), within its monthly quotas
//!   of end users and API calls, each counted by one conditional upsert.
//! - Its markup ([`pricing`]) is the platform's share of its advertisers' spend above the
//!   fee its volume tier sets, moved to it through the ledger and claimed like any earning;
//!   an adjustment that reverses receipts takes it back pro rata ([`clawback`]).

pub mod branding;
pub mod clawback;
pub mod contracts;
pub mod members;
pub mod pricing;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

pub use branding::Branding;
pub use contracts::Contract;

use crate::platform::values::ValueError;
use crate::programs::codes;

/// What a reseller's code begins with.
pub const CODE_PREFIX: &str = "RES";

/// Why a reseller request was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum ResellerError {
    #[error("{field}: {error}")]
    Invalid { field: &'static str, error: ValueError },
    #[error("you are not a reseller")]
    NotAReseller,
    #[error("no such reseller")]
    UnknownReseller,
    #[error("you have applied already")]
    AlreadyApplied,
    #[error("no such contract")]
    UnknownContract,
    #[error("the contract is {}: it cannot become {}{}", .from.label(), .to.label(), if *.admin { "" } else { " by its reseller" })]
    Workflow {
        from: contracts::Status,
        to: contracts::Status,
        admin: bool,
    },
    #[error("another contract of this reseller is approved or active; terminate it first")]
    AnotherLive,
    #[error("the contract has ended")]
    ContractEnded,
    #[error("no reseller has this code or a proven domain by this name")]
    UnknownCode,
    #[error("the reseller is not in business: it has no active contract")]
    NotInBusiness,
    #[error("you already joined a reseller")]
    AlreadyJoined,
    #[error("the domain {0} is taken")]
    DomainTaken(String),
    #[error("no domain was claimed; claim one first")]
    NoDomain,
    #[error("the domain is not proven: {0}")]
    Unproven(String),
    #[error("the reseller's {quota} quota for this month ({limit}) is used up")]
    QuotaExceeded {
        quota: members::Quota,
        limit: i64,
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Ledger(#[from] crate::money::ledger::LedgerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn invalid(field: &'static str, error: ValueError) -> ResellerError {
    ResellerError::Invalid { field, error }
}

/// Monthly quotas (UTC calendar months); none: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ResellerQuotas)]
pub struct Quotas {
    /// New end users a month: a warning past the soft one, refused past the hard one.
    #[schema(minimum = 1, maximum = 2147483647)]
    pub end_users_soft: Option<u32>,
    #[schema(minimum = 1, maximum = 2147483647)]
    pub end_users_hard: Option<u32>,
    /// API calls by its end users a month.
    #[schema(minimum = 1)]
    pub api_calls_soft: Option<u64>,
    #[schema(minimum = 1)]
    pub api_calls_hard: Option<u64>,
}

/// A reseller as it and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reseller {
    pub id: Uuid,
    /// Where its markups are paid.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub owner: Address,
    pub name: String,
    /// What its advertisers join with.
    pub code: String,
    pub application: String,
    #[serde(with = "time::serde::rfc3339")]
    pub applied_at: OffsetDateTime,
    pub branding: Branding,
    pub domain: Option<branding::Domain>,
    pub quotas: Quotas,
    /// In business: an active contract within its dates.
    pub active: bool,
}

/// Applies as a reseller named `name`.
pub async fn apply(
    db: &PgPool,
    owner: Uuid,
    name: &crate::platform::values::Name,
    application: &str,
    now: OffsetDateTime,
) -> Result<Reseller, ResellerError> {
    let application =
        crate::platform::values::Text::<1, 500>::parse(application).map_err(|error| invalid("application", error))?;
    let id = sqlx::query_scalar!(
        "INSERT INTO resellers (owner_id, name, code, application, applied_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (owner_id) DO NOTHING RETURNING id",
        owner,
        name.as_str(),
        codes::generate(CODE_PREFIX),
        application.as_str(),
        now
    )
    .fetch_optional(db)
    .await?
    .ok_or(ResellerError::AlreadyApplied)?;
    get(db, id, now).await
}

/// The reseller `owner` runs.
pub async fn of_owner(db: &PgPool, owner: Uuid, now: OffsetDateTime) -> Result<Reseller, ResellerError> {
    let id = sqlx::query_scalar!("SELECT id FROM resellers WHERE owner_id = $1", owner)
        .fetch_optional(db)
        .await?
        .ok_or(ResellerError::NotAReseller)?;
    get(db, id, now).await
}

/// Reseller `id`.
pub async fn get(db: &PgPool, id: Uuid, now: OffsetDateTime) -> Result<Reseller, ResellerError> {
    list_where(db, Some(id), now)
        .await?
        .pop()
        .ok_or(ResellerError::UnknownReseller)
}

/// Every reseller, by name.
pub async fn list(db: &PgPool, now: OffsetDateTime) -> Result<Vec<Reseller>, ResellerError> {
    list_where(db, None, now).await
}

async fn list_where(db: &PgPool, only: Option<Uuid>, now: OffsetDateTime) -> Result<Vec<Reseller>, ResellerError> {
    let rows = sqlx::query!(
        r#"SELECT r.id, u.address AS "owner: SqlAddress", r.name, r.code, r.application, r.applied_at, r.logo_url,
                  r.primary_colour, r.accent_colour, r.support_contact, r.domain, r.domain_token, r.domain_verified_at,
                  r.end_users_soft, r.end_users_hard, r.api_calls_soft, r.api_calls_hard,
                  EXISTS (SELECT 1 FROM reseller_contracts c WHERE c.reseller_id = r.id AND c.status = 'active'
                          AND c.starts_at <= $2 AND c.ends_at > $2) AS "active!"
           FROM resellers r JOIN users u ON u.id = r.owner_id
           WHERE $1::uuid IS NULL OR r.id = $1
           ORDER BY r.name, r.id"#,
        only,
        now
    )
    .fetch_all(db)
    .await?;
    let count = |value: Option<i32>| value.and_then(|v| u32::try_from(v).ok());
    let calls = |value: Option<i64>| value.and_then(|v| u64::try_from(v).ok());
    Ok(rows
        .into_iter()
        .map(|row| Reseller {
            id: row.id,
            owner: row.owner.0,
            name: row.name,
            code: row.code,
            application: row.application,
            applied_at: row.applied_at,
            branding: Branding {
                logo_url: row.logo_url,
                primary_colour: row.primary_colour,
                accent_colour: row.accent_colour,
                support_contact: row.support_contact,
            },
            domain: row
                .domain
                .zip(row.domain_token)
                .map(|(name, token)| branding::Domain::new(name, &token, row.domain_verified_at)),
            quotas: Quotas {
                end_users_soft: count(row.end_users_soft),
                end_users_hard: count(row.end_users_hard),
                api_calls_soft: calls(row.api_calls_soft),
                api_calls_hard: calls(row.api_calls_hard),
            },
            active: row.active,
        })
        .collect())
}

/// Sets reseller `id`'s quotas (an admin's decision).
pub async fn set_quotas(db: &PgPool, id: Uuid, quotas: Quotas, now: OffsetDateTime) -> Result<Reseller, ResellerError> {
    let wide = |value: Option<u32>| value.map(i64::from);
    for (field, soft, hard) in [
        ("endUsersHard", wide(quotas.end_users_soft), wide(quotas.end_users_hard)),
        (
            "apiCallsHard",
            quotas.api_calls_soft.map(|v| v as i64),
            quotas.api_calls_hard.map(|v| v as i64),
        ),
    ] {
        if let (Some(soft), Some(hard)) = (soft, hard)
            && hard < soft
        {
            return Err(invalid(field, ValueError::Refused("must not be below the soft quota")));
        }
    }
    let in_range = |value: Option<u32>, field| match value {
        Some(v) if v == 0 || v > i32::MAX as u32 => Err(invalid(
            field,
            ValueError::OutOfRange {
                min: 1,
                max: i64::from(i32::MAX),
            },
        )),
        _ => Ok(value.map(|v| v as i32)),
    };
    let calls_in_range = |value: Option<u64>, field| match value {
        Some(v) if v == 0 || v > i64::MAX as u64 => {
            Err(invalid(field, ValueError::OutOfRange { min: 1, max: i64::MAX }))
        }
        _ => Ok(value.map(|v| v as i64)),
    };
    let updated = sqlx::query!(
        "UPDATE resellers SET end_users_soft = $2, end_users_hard = $3, api_calls_soft = $4, api_calls_hard = $5
         WHERE id = $1",
        id,
        in_range(quotas.end_users_soft, "endUsersSoft")?,
        in_range(quotas.end_users_hard, "endUsersHard")?,
        calls_in_range(quotas.api_calls_soft, "apiCallsSoft")?,
        calls_in_range(quotas.api_calls_hard, "apiCallsHard")?
    )
    .execute(db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ResellerError::UnknownReseller);
    }
    get(db, id, now).await
}

/// The reseller `owner` runs, by id, for the calls that act on its own.
async fn id_of_owner(db: impl PgExecutor<'_>, owner: Uuid) -> Result<Uuid, ResellerError> {
    sqlx::query_scalar!("SELECT id FROM resellers WHERE owner_id = $1", owner)
        .fetch_optional(db)
        .await?
        .ok_or(ResellerError::NotAReseller)
}

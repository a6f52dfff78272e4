//! Campaigns: what an advertiser runs under a brand, in one token, tied to one escrow
//! campaign on chain. Status changes go through [`status::check`] and are all recorded.

pub mod status;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::OwnerScope;
use crate::adserver::brands;
use crate::adserver::schedule::Daypart;
use crate::platform::values::{Bounded, Instant, Labels, Name, Text, ValueError};
pub use status::{CampaignStatus, StatusCause, TransitionError};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: Uuid,
    pub brand_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    /// The ERC-20 token the campaign pays in.
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// The campaign's id in the escrow contract: open and fund the escrow with it.
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub chain_campaign_id: B256,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub daypart: Option<DaypartWindow>,
    pub targeting: Targeting,
    pub frequency_caps: FrequencyCaps,
    /// 0 to 100; higher wins over expected revenue.
    #[schema(minimum = 0, maximum = 100)]
    pub priority: i32,
    pub status: CampaignStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Hours of the brand's local day in which the campaign runs, `[startHour, endHour)`; an end
/// before the start runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaypartWindow {
    #[schema(maximum = 23)]
    pub start_hour: u8,
    #[schema(maximum = 23)]
    pub end_hour: u8,
}

impl DaypartWindow {
    pub fn daypart(self) -> Option<Daypart> {
        Daypart::new(self.start_hour, self.end_hour)
    }
}

/// Who may see the campaign. An empty list means no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Targeting {
    #[serde(default)]
    #[schema(value_type = Vec<crate::platform::wire::schema::Label>, max_items = 100)]
    pub regions: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::platform::wire::schema::Label>, max_items = 100)]
    pub communities: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::platform::wire::schema::Label>, max_items = 100)]
    pub user_types: Vec<String>,
    /// A consent scope (bytes32) the viewer must hold on chain to see this campaign.
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    #[serde(default)]
    pub consent_scope: Option<B256>,
}

/// Most events per viewer per ad per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrequencyCaps {
    #[schema(maximum = 1000, minimum = 1)]
    pub impressions_per_hour: u32,
    #[schema(maximum = 1000, minimum = 1)]
    pub clicks_per_hour: u32,
}

impl Default for FrequencyCaps {
    fn default() -> Self {
        Self {
            impressions_per_hour: 3,
            clicks_per_hour: 1,
        }
    }
}

/// The escrow campaign a brand's campaign is tied to pays in this ERC-20 token: never the
/// zero address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignToken(Address);

impl CampaignToken {
    pub fn parse(token: Address) -> Result<Self, ValueError> {
        if token == Address::ZERO {
            return Err(ValueError::Refused("must be a token contract address"));
        }
        Ok(Self(token))
    }

    pub fn get(self) -> Address {
        self.0
    }
}

impl DaypartWindow {
    /// The window as the schedule evaluates it.
    pub fn parse(self) -> Result<Daypart, ValueError> {
        self.daypart().ok_or(ValueError::Refused(
            "hours must be 0 to 23 and differ; an end before the start runs past midnight",
        ))
    }
}

/// A campaign's dates: both within the supported years, the end after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dates {
    starts_at: Instant,
    ends_at: Instant,
}

impl Dates {
    pub fn new(starts_at: Instant, ends_at: Instant) -> Result<Self, CampaignError> {
        if ends_at <= starts_at {
            return Err(CampaignError::EndsBeforeStart);
        }
        Ok(Self { starts_at, ends_at })
    }

    pub fn starts_at(self) -> OffsetDateTime {
        self.starts_at.get()
    }

    pub fn ends_at(self) -> OffsetDateTime {
        self.ends_at.get()
    }
}

/// Who may see the campaign, normalized as decisions compare it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub regions: Labels,
    pub communities: Labels,
    pub user_types: Labels,
    pub consent_scope: Option<B256>,
}

/// Most events of one kind per viewer per ad per hour.
pub type HourlyCap = Bounded<1, 1000>;

/// 0 to 100; higher wins over expected revenue.
pub type Priority = Bounded<0, 100>;

/// Frequency caps within their bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub impressions_per_hour: HourlyCap,
    pub clicks_per_hour: HourlyCap,
}

/// A campaign's settings, each value parsed and the dates in order.
#[derive(Debug, Clone)]
pub struct CampaignFields {
    pub name: Name,
    pub token: CampaignToken,
    pub chain_campaign_id: B256,
    pub dates: Dates,
    pub daypart: Option<Daypart>,
    pub audience: Audience,
    pub caps: Caps,
    pub priority: Priority,
}

/// Why a campaign was not created, changed or moved.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign not found")]
    NotFound,
    #[error("no such brand among yours")]
    UnknownBrand,
    #[error("must be after startsAt")]
    EndsBeforeStart,
    #[error("must be in the future")]
    EndsInThePast,
    #[error("another campaign uses this escrow campaign id")]
    ChainCampaignIdTaken,
    #[error("the campaign is COMPLETED and can no longer change")]
    Completed,
    #[error("{error} (the campaign is {current})")]
    Refused {
        current: CampaignStatus,
        error: TransitionError,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One recorded status change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// `null` for the campaign's creation.
    pub from: Option<CampaignStatus>,
    pub to: CampaignStatus,
    pub cause: StatusCause,
    /// The user who asked for it, when `cause` is `user`.
    pub actor_id: Option<Uuid>,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

struct CampaignRow {
    id: Uuid,
    brand_id: Uuid,
    name: String,
    token: SqlAddress,
    chain_campaign_id: SqlB256,
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    daypart_start_hour: Option<i16>,
    daypart_end_hour: Option<i16>,
    target_regions: Vec<String>,
    target_communities: Vec<String>,
    target_user_types: Vec<String>,
    required_consent_scope: Option<SqlB256>,
    impression_cap_per_hour: i32,
    click_cap_per_hour: i32,
    priority: i32,
    status: CampaignStatus,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<CampaignRow> for Campaign {
    fn from(row: CampaignRow) -> Self {
        // The schema keeps hours in 0..=23; a row outside it reads as the nearest hour.
        let hour = |h: i16| h.clamp(0, 23) as u8;
        Self {
            id: row.id,
            brand_id: row.brand_id,
            name: row.name,
            token: row.token.0,
            chain_campaign_id: row.chain_campaign_id.0,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            daypart: row
                .daypart_start_hour
                .zip(row.daypart_end_hour)
                .map(|(start, end)| DaypartWindow {
                    start_hour: hour(start),
                    end_hour: hour(end),
                }),
            targeting: Targeting {
                regions: row.target_regions,
                communities: row.target_communities,
                user_types: row.target_user_types,
                consent_scope: row.required_consent_scope.map(B256::from),
            },
            frequency_caps: FrequencyCaps {
                impressions_per_hour: row.impression_cap_per_hour.unsigned_abs(),
                clicks_per_hour: row.click_cap_per_hour.unsigned_abs(),
            },
            priority: row.priority,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Which campaigns to read: one, a brand's, or all that the scope may see.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    pub scope: OwnerScope,
}

pub async fn select(db: impl PgExecutor<'_>, filter: Filter) -> Result<Vec<Campaign>, sqlx::Error> {
    let rows = sqlx::query_as!(
        CampaignRow,
        "SELECT c.id, c.brand_id, c.name, c.token AS \"token: SqlAddress\",
                c.chain_campaign_id AS \"chain_campaign_id: SqlB256\", c.starts_at, c.ends_at,
                c.daypart_start_hour, c.daypart_end_hour, c.target_regions, c.target_communities,
                c.target_user_types, c.required_consent_scope AS \"required_consent_scope: SqlB256\",
                c.impression_cap_per_hour,
                c.click_cap_per_hour, c.priority, c.status AS \"status: CampaignStatus\",
                c.created_at, c.updated_at
         FROM campaigns c JOIN brands b ON b.id = c.brand_id
         WHERE ($1::uuid IS NULL OR c.id = $1) AND ($2::uuid IS NULL OR c.brand_id = $2)
           AND ($3::uuid IS NULL OR b.owner_id = $3)
         ORDER BY c.created_at, c.id",
        filter.id,
        filter.brand_id,
        filter.scope
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Campaign::from).collect())
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid, scope: OwnerScope) -> Result<Option<Campaign>, sqlx::Error> {
    let filter = Filter {
        id: Some(id),
        scope,
        ..Filter::default()
    };
    Ok(select(db, filter).await?.pop())
}

/// Binds the settings as the columns store them.
struct Columns {
    daypart_start: Option<i16>,
    daypart_end: Option<i16>,
    regions: Vec<String>,
    communities: Vec<String>,
    user_types: Vec<String>,
    consent_scope: Option<SqlB256>,
    impression_cap: i32,
    click_cap: i32,
    priority: i32,
}

impl Columns {
    fn of(fields: &CampaignFields) -> Self {
        // Both bounds are far inside i32.
        let small = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            daypart_start: fields.daypart.map(|d| i16::from(d.start_hour)),
            daypart_end: fields.daypart.map(|d| i16::from(d.end_hour)),
            regions: fields.audience.regions.to_strings(),
            communities: fields.audience.communities.to_strings(),
            user_types: fields.audience.user_types.to_strings(),
            consent_scope: fields.audience.consent_scope.map(SqlB256),
            impression_cap: small(fields.caps.impressions_per_hour.get()),
            click_cap: small(fields.caps.clicks_per_hour.get()),
            priority: small(fields.priority.get()),
        }
    }
}

/// Creates a campaign as a DRAFT under one of the owner's brands (any brand for an admin
/// scope), and records its creation. Its end must be after `now`.
pub async fn create(
    db: &PgPool,
    scope: OwnerScope,
    brand_id: Uuid,
    fields: &CampaignFields,
    actor: Uuid,
    now: OffsetDateTime,
) -> Result<Campaign, CampaignError> {
    create_with(db, scope, brand_id, fields, actor, now, async |_| Ok(())).await
}

/// [`create`], with `also` run in the campaign's transaction (an affiliate's attribution):
/// both commit, or neither.
#[allow(clippy::too_many_arguments, reason = "create's arguments and the step run with it")]
pub async fn create_with<E: From<CampaignError>>(
    db: &PgPool,
    scope: OwnerScope,
    brand_id: Uuid,
    fields: &CampaignFields,
    actor: Uuid,
    now: OffsetDateTime,
    also: impl AsyncFnOnce(&mut PgConnection) -> Result<(), E>,
) -> Result<Campaign, E> {
    let found = brands::find(db, brand_id, scope).await.map_err(CampaignError::from)?;
    found.ok_or(CampaignError::UnknownBrand)?;
    if fields.dates.ends_at() <= now {
        return Err(CampaignError::EndsInThePast.into());
    }
    let mut tx = db.begin().await.map_err(CampaignError::from)?;
    let id = insert(&mut tx, brand_id, fields, actor, now)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.constraint() == Some("campaigns_chain_campaign_id_key") => {
                CampaignError::ChainCampaignIdTaken
            }
            _ => error.into(),
        })?;
    also(&mut tx).await?;
    tx.commit().await.map_err(CampaignError::from)?;
    let campaign = find(db, id, None).await.map_err(CampaignError::from)?;
    Ok(campaign.ok_or(CampaignError::NotFound)?)
}

/// Inserts a campaign as a DRAFT and records its creation. A taken on-chain id surfaces as a
/// violation of `campaigns_chain_campaign_id_key`.
async fn insert(
    conn: &mut PgConnection,
    brand_id: Uuid,
    fields: &CampaignFields,
    actor: Uuid,
    now: OffsetDateTime,
) -> Result<Uuid, sqlx::Error> {
    let columns = Columns::of(fields);
    let id = sqlx::query_scalar!(
        "INSERT INTO campaigns (brand_id, name, token, chain_campaign_id, starts_at, ends_at,
                                daypart_start_hour, daypart_end_hour, target_regions, target_communities,
                                target_user_types, required_consent_scope, impression_cap_per_hour,
                                click_cap_per_hour, priority)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING id",
        brand_id,
        fields.name.as_str(),
        SqlAddress(fields.token.get()) as SqlAddress,
        SqlB256(fields.chain_campaign_id) as SqlB256,
        fields.dates.starts_at(),
        fields.dates.ends_at(),
        columns.daypart_start,
        columns.daypart_end,
        &columns.regions,
        &columns.communities,
        &columns.user_types,
        columns.consent_scope as Option<SqlB256>,
        columns.impression_cap,
        columns.click_cap,
        columns.priority
    )
    .fetch_one(&mut *conn)
    .await?;
    let created = Change {
        to: CampaignStatus::Draft,
        cause: StatusCause::User,
        actor: Some(actor),
        reason: "created",
        at: now,
    };
    record_change(conn, id, None, &created).await?;
    Ok(id)
}

/// Replaces a campaign's settings (not its status, token or escrow campaign id). A
/// COMPLETED campaign no longer changes; the row lock makes a concurrent completion wait
/// and be seen.
pub async fn update(
    db: &PgPool,
    id: Uuid,
    scope: OwnerScope,
    fields: &CampaignFields,
) -> Result<Campaign, CampaignError> {
    let mut tx = db.begin().await?;
    let status = lock_status(&mut tx, id, scope).await?;
    if status == CampaignStatus::Completed {
        return Err(CampaignError::Completed);
    }
    let columns = Columns::of(fields);
    sqlx::query!(
        "UPDATE campaigns SET name = $2, starts_at = $3, ends_at = $4,
                daypart_start_hour = $5, daypart_end_hour = $6, target_regions = $7, target_communities = $8,
                target_user_types = $9, required_consent_scope = $10, impression_cap_per_hour = $11,
                click_cap_per_hour = $12, priority = $13
         WHERE id = $1",
        id,
        fields.name.as_str(),
        fields.dates.starts_at(),
        fields.dates.ends_at(),
        columns.daypart_start,
        columns.daypart_end,
        &columns.regions,
        &columns.communities,
        &columns.user_types,
        columns.consent_scope as Option<SqlB256>,
        columns.impression_cap,
        columns.click_cap,
        columns.priority
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    find(db, id, scope).await?.ok_or(CampaignError::NotFound)
}

/// The status of a campaign the scope may see, locked for the rest of the transaction.
async fn lock_status(conn: &mut PgConnection, id: Uuid, scope: OwnerScope) -> Result<CampaignStatus, CampaignError> {
    sqlx::query_scalar!(
        r#"SELECT c.status AS "status: CampaignStatus" FROM campaigns c JOIN brands b ON b.id = c.brand_id
           WHERE c.id = $1 AND ($2::uuid IS NULL OR b.owner_id = $2) FOR UPDATE OF c"#,
        id,
        scope
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CampaignError::NotFound)
}

/// Why a status changes, as its history records it: 1 to 500 characters.
pub type Reason = Text<1, 500>;

/// Moves a campaign through the status machine in a transaction of its own; the change
/// the caller asks for is judged like the scheduler's (see [`change_status`]).
pub async fn request_status(
    db: &PgPool,
    id: Uuid,
    scope: OwnerScope,
    change: Change<'_>,
) -> Result<CampaignStatus, CampaignError> {
    let mut tx = db.begin().await?;
    let from = change_status(&mut tx, id, scope, change).await?;
    tx.commit().await?;
    Ok(from)
}

/// A status change someone asks for.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub to: CampaignStatus,
    pub cause: StatusCause,
    pub actor: Option<Uuid>,
    pub reason: &'a str,
    pub at: OffsetDateTime,
}

/// Moves a campaign to a new status if the machine allows it from the status it has now,
/// and records the change. The row lock makes a concurrent change (say, the scheduler's)
/// wait and then be judged against the new status.
pub async fn change_status(
    conn: &mut PgConnection,
    id: Uuid,
    scope: OwnerScope,
    change: Change<'_>,
) -> Result<CampaignStatus, CampaignError> {
    let current = lock_status(conn, id, scope).await?;
    status::check(current, change.to, change.cause).map_err(|error| CampaignError::Refused { current, error })?;
    sqlx::query!(
        "UPDATE campaigns SET status = $2 WHERE id = $1",
        id,
        change.to as CampaignStatus
    )
    .execute(&mut *conn)
    .await?;
    record_change(conn, id, Some(current), &change).await?;
    Ok(current)
}

async fn record_change(
    conn: &mut PgConnection,
    id: Uuid,
    from: Option<CampaignStatus>,
    change: &Change<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO campaign_status_changes (campaign_id, from_status, to_status, cause, actor_id, reason, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        from as Option<CampaignStatus>,
        change.to as CampaignStatus,
        change.cause as StatusCause,
        change.actor,
        change.reason,
        change.at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A campaign's status changes, oldest first.
pub async fn history(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<StatusChange>, sqlx::Error> {
    sqlx::query_as!(
        StatusChange,
        r#"SELECT from_status AS "from: CampaignStatus", to_status AS "to: CampaignStatus",
                  cause AS "cause: StatusCause", actor_id, reason, changed_at
           FROM campaign_status_changes WHERE campaign_id = $1 ORDER BY id"#,
        id
    )
    .fetch_all(db)
    .await
}

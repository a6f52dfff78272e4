//! Brands: an advertiser's unit of budget. Daily and monthly budgets are counted in the
//! brand's own time zone; every campaign belongs to one brand.

use serde::Serialize;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::OwnerScope;
use crate::money::Amount;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Brand {
    pub id: Uuid,
    pub owner_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    /// Most billed spend per local day, in base units of the campaigns' tokens.
    pub daily_budget: Amount,
    /// Most billed spend per local month.
    pub monthly_budget: Amount,
    /// IANA zone name; days and months start at its midnight.
    #[schema(value_type = crate::platform::wire::schema::TimeZone, example = "Europe/Berlin")]
    pub time_zone: String,
    /// An inactive brand's campaigns do not run.
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A brand's settings, checked by the caller.
#[derive(Debug, Clone)]
pub struct BrandFields<'a> {
    pub name: &'a str,
    pub daily_budget: Amount,
    pub monthly_budget: Amount,
    pub time_zone: &'a str,
    pub active: bool,
}

struct BrandRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    daily_budget: Amount,
    monthly_budget: Amount,
    time_zone: String,
    active: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<BrandRow> for Brand {
    fn from(row: BrandRow) -> Self {
        Self {
            id: row.id,
            owner_id: row.owner_id,
            name: row.name,
            daily_budget: row.daily_budget,
            monthly_budget: row.monthly_budget,
            time_zone: row.time_zone,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub async fn insert(db: impl PgExecutor<'_>, owner_id: Uuid, fields: &BrandFields<'_>) -> Result<Brand, sqlx::Error> {
    let row = sqlx::query_as!(
        BrandRow,
        r#"INSERT INTO brands (owner_id, name, daily_budget, monthly_budget, time_zone, active)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, owner_id, name, daily_budget AS "daily_budget: Amount", monthly_budget AS "monthly_budget: Amount",
                     time_zone, active, created_at, updated_at"#,
        owner_id,
        fields.name,
        fields.daily_budget as Amount,
        fields.monthly_budget as Amount,
        fields.time_zone,
        fields.active
    )
    .fetch_one(db)
    .await?;
    Ok(row.into())
}

pub async fn list(db: impl PgExecutor<'_>, scope: OwnerScope) -> Result<Vec<Brand>, sqlx::Error> {
    let rows = sqlx::query_as!(
        BrandRow,
        r#"SELECT id, owner_id, name, daily_budget AS "daily_budget: Amount", monthly_budget AS "monthly_budget: Amount",
                  time_zone, active, created_at, updated_at
           FROM brands WHERE $1::uuid IS NULL OR owner_id = $1 ORDER BY created_at, id"#,
        scope
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Brand::from).collect())
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid, scope: OwnerScope) -> Result<Option<Brand>, sqlx::Error> {
    let row = sqlx::query_as!(
        BrandRow,
        r#"SELECT id, owner_id, name, daily_budget AS "daily_budget: Amount", monthly_budget AS "monthly_budget: Amount",
                  time_zone, active, created_at, updated_at
           FROM brands WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"#,
        id,
        scope
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Brand::from))
}

/// Replaces a brand's settings.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    scope: OwnerScope,
    fields: &BrandFields<'_>,
) -> Result<Option<Brand>, sqlx::Error> {
    let row = sqlx::query_as!(
        BrandRow,
        r#"UPDATE brands SET name = $3, daily_budget = $4, monthly_budget = $5,
                             time_zone = $6, active = $7
           WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)
           RETURNING id, owner_id, name, daily_budget AS "daily_budget: Amount", monthly_budget AS "monthly_budget: Amount",
                     time_zone, active, created_at, updated_at"#,
        id,
        scope,
        fields.name,
        fields.daily_budget as Amount,
        fields.monthly_budget as Amount,
        fields.time_zone,
        fields.active
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Brand::from))
}

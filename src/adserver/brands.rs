//! Brands: an advertiser's unit of budget. Daily and monthly budgets are counted in the
//! brand's own time zone; every campaign belongs to one brand.

use serde::Serialize;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::OwnerScope;
use crate::money::Amount;
use crate::platform::values::{Name, TimeZone};

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

/// A brand's daily and monthly budgets: both more than zero, the month at least the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    daily: Amount,
    monthly: Amount,
}

impl Budgets {
    pub fn new(daily: Amount, monthly: Amount) -> Result<Self, BrandError> {
        if daily.is_zero() {
            return Err(BrandError::ZeroDailyBudget);
        }
        if monthly.is_zero() {
            return Err(BrandError::ZeroMonthlyBudget);
        }
        if monthly < daily {
            return Err(BrandError::MonthlyBelowDaily);
        }
        Ok(Self { daily, monthly })
    }

    pub fn daily(self) -> Amount {
        self.daily
    }

    pub fn monthly(self) -> Amount {
        self.monthly
    }
}

/// A brand's settings, each value parsed.
#[derive(Debug, Clone)]
pub struct BrandFields {
    pub name: Name,
    pub budgets: Budgets,
    pub time_zone: TimeZone,
    pub active: bool,
}

/// Why a brand was not created or changed.
#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("brand not found")]
    NotFound,
    #[error("must be greater than zero")]
    ZeroDailyBudget,
    #[error("must be greater than zero")]
    ZeroMonthlyBudget,
    #[error("must be at least the daily budget")]
    MonthlyBelowDaily,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
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

pub async fn insert(db: impl PgExecutor<'_>, owner_id: Uuid, fields: &BrandFields) -> Result<Brand, BrandError> {
    let row = sqlx::query_as!(
        BrandRow,
        r#"INSERT INTO brands (owner_id, name, daily_budget, monthly_budget, time_zone, active)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, owner_id, name, daily_budget AS "daily_budget: Amount", monthly_budget AS "monthly_budget: Amount",
                     time_zone, active, created_at, updated_at"#,
        owner_id,
        fields.name.as_str(),
        fields.budgets.daily() as Amount,
        fields.budgets.monthly() as Amount,
        fields.time_zone.name(),
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
    fields: &BrandFields,
) -> Result<Brand, BrandError> {
    let row = sqlx::query_as!(
        BrandRow,
        r#"UPDATE brands SET name = $3, daily_budget = $4, monthly_budget = $5,
                             time_zone = $6, active = $7
           WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)
           RETURNING id, owner_id, name, daily_budget AS "daily_budget: Amount", monthly_budget AS "monthly_budget: Amount",
                     time_zone, active, created_at, updated_at"#,
        id,
        scope,
        fields.name.as_str(),
        fields.budgets.daily() as Amount,
        fields.budgets.monthly() as Amount,
        fields.time_zone.name(),
        fields.active
    )
    .fetch_optional(db)
    .await?;
    row.map(Brand::from).ok_or(BrandError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_positive_and_the_month_holds_the_day() {
        assert_eq!(Budgets::new(Amount(1), Amount(1)).unwrap().monthly(), Amount(1));
        assert!(Budgets::new(Amount(1000), Amount(1000)).is_ok());
        assert!(matches!(
            Budgets::new(Amount(1000), Amount(999)),
            Err(BrandError::MonthlyBelowDaily)
        ));
        assert!(matches!(
            Budgets::new(Amount(0), Amount(1)),
            Err(BrandError::ZeroDailyBudget)
        ));
        assert!(matches!(
            Budgets::new(Amount(1), Amount(0)),
            Err(BrandError::ZeroMonthlyBudget)
        ));
    }
}

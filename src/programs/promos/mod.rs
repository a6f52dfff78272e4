//! Promotions: codes admins create and advertisers redeem on one of their campaigns.
//!
//! Three offers:
//!
//! - an **ad credit**: the platform funds part of the campaign's escrow. The treasury wallet
//!   sends `fund` through the outbox ([`credits`]), and the program budget the promotion
//!   names repays it through the claim: the credit is a debit of that budget, held until
//!   the funding is confirmed on chain and reversed if it fails, so a credit that never
//!   landed costs the budget nothing;
//! - a **fee discount**: a share of the platform's fee waived for some days on the
//!   redeemer's campaigns;
//! - a **free trial**: the platform's fee waived on the redeemer's first billed
//!   impressions.
//!
//! Billing applies the last two as it prices each receipt ([`waivers`]): the campaign pays
//! less, the platform earns less, and the hoster's, witness's and viewer's shares stay
//! whole.
//!
//! A promotion's status is derived from its dates and flags (draft, scheduled, active,
//! paused, completed). Its limits hold under concurrency without reading and then writing:
//! the total is one conditional UPDATE of its counter, the per-user limit a unique row.

pub mod credits;
mod funnel;
mod redeem;
mod terms;
pub mod waivers;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

pub use funnel::{Funnel, TokenAmount};
pub use redeem::{Redeemed, Redemption, mine, redeem};
pub use terms::{CODE_PREFIX, Limits, Offer, OfferKind, PromoCode};

use funnel::funnels;

use crate::money::Amount;
use crate::money::escrow::EscrowError;
use crate::money::ledger::LedgerError;
use crate::platform::values::{Name, ValueError};

/// A promotion to create.
#[derive(Debug, Clone)]
pub struct NewPromotion {
    /// None: a generated `PROMO…` code.
    pub code: Option<PromoCode>,
    pub name: Name,
    pub offer: Offer,
    pub limits: Limits,
    pub starts_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    /// Published at once; otherwise a draft until published.
    pub publish: bool,
}

/// Where a promotion stands, derived from its dates and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PromotionStatus)]
pub enum Status {
    /// Not published yet.
    Draft,
    /// Published, before its start.
    Scheduled,
    Active,
    /// Published and in its dates, paused by an admin.
    Paused,
    /// Past its end, or every redemption taken.
    Completed,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Completed => "completed",
        }
    }
}

/// What an admin does to a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PromotionActionKind)]
pub enum Action {
    /// A draft goes out (scheduled or active by its dates).
    Publish,
    Pause,
    Resume,
    /// Ends it now: completed.
    End,
}

/// Why a promotion was not created, changed or redeemed. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum PromoError {
    #[error("{field}: {error}")]
    Invalid { field: &'static str, error: ValueError },
    #[error("no such promotion")]
    UnknownPromotion,
    #[error("no such program budget")]
    UnknownBudget,
    #[error("the code {0} is taken")]
    CodeTaken(String),
    #[error("the promotion is {}: it cannot be {}", .status.label(), .action)]
    Workflow { status: Status, action: &'static str },
    #[error("the promotion is {}{}", .status.label(), match .status {
        Status::Scheduled => " and cannot be redeemed before it starts",
        Status::Completed => ": it has ended or every redemption is taken",
        _ => " and cannot be redeemed",
    })]
    NotRedeemable { status: Status },
    #[error("every redemption of this promotion is taken")]
    Exhausted,
    #[error("you have redeemed this promotion as often as it allows ({0})")]
    AlreadyRedeemed(u32),
    #[error("this promotion is for advertisers whose campaigns were never billed")]
    NotFirstTime,
    #[error("no such campaign of yours")]
    UnknownCampaign,
    #[error("the promotion is for campaigns paying in {0}")]
    WrongToken(Address),
    #[error("you funded the campaign with {funded}; the promotion needs at least {minimum}")]
    BelowMinimum { funded: Amount, minimum: Amount },
    #[error("the campaign is not open on chain, or has ended: a credit cannot fund it")]
    CampaignNotOpen,
    #[error("the promotion's budget cannot pay the credit: {0}")]
    Budget(#[from] EscrowError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn invalid(field: &'static str, error: ValueError) -> PromoError {
    PromoError::Invalid { field, error }
}

/// A promotion as admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub offer: Offer,
    pub status: Status,
    #[schema(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize_option")]
    pub token: Option<Address>,
    pub max_redemptions: Option<u32>,
    pub per_user: u32,
    pub first_time_only: bool,
    pub min_budget: Option<Amount>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    pub redemptions: u32,
    /// Counted from append-only events.
    pub funnel: Funnel,
}

/// What anyone holding the code sees of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicPromotion {
    pub code: String,
    pub name: String,
    pub offer: Offer,
    pub status: Status,
    #[schema(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize_option")]
    pub token: Option<Address>,
    pub first_time_only: bool,
    pub min_budget: Option<Amount>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

/// A promotion row as stored.
struct Row {
    id: Uuid,
    code: String,
    name: String,
    offer: OfferKind,
    token: Option<SqlAddress>,
    budget_id: Option<Uuid>,
    credit: Option<Amount>,
    discount_bps: Option<i32>,
    discount_days: Option<i32>,
    trial_impressions: Option<i32>,
    max_redemptions: Option<i32>,
    per_user: i32,
    first_time_only: bool,
    min_budget: Option<Amount>,
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    published_at: Option<OffsetDateTime>,
    paused: bool,
    redemptions: i32,
}

impl Row {
    fn offer(&self) -> Offer {
        let count = |value: Option<i32>| value.and_then(|v| u32::try_from(v).ok()).unwrap_or_default();
        match self.offer {
            OfferKind::AdCredit => Offer::AdCredit {
                budget: self.budget_id.unwrap_or_default(),
                credit: self.credit.unwrap_or_default(),
            },
            OfferKind::FeeDiscount => Offer::FeeDiscount {
                bps: count(self.discount_bps),
                days: count(self.discount_days),
            },
            OfferKind::FreeTrial => Offer::FreeTrial {
                impressions: count(self.trial_impressions),
            },
        }
    }

    fn status(&self, now: OffsetDateTime) -> Status {
        let exhausted = self.max_redemptions.is_some_and(|max| self.redemptions >= max);
        if self.published_at.is_none() {
            Status::Draft
        } else if now >= self.ends_at || exhausted {
            Status::Completed
        } else if now < self.starts_at {
            Status::Scheduled
        } else if self.paused {
            Status::Paused
        } else {
            Status::Active
        }
    }

    fn into_promotion(self, funnel: Funnel, now: OffsetDateTime) -> Promotion {
        Promotion {
            id: self.id,
            offer: self.offer(),
            status: self.status(now),
            token: self.token.map(|t| t.0),
            max_redemptions: self.max_redemptions.and_then(|v| u32::try_from(v).ok()),
            per_user: u32::try_from(self.per_user).unwrap_or(1),
            first_time_only: self.first_time_only,
            min_budget: self.min_budget,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            published_at: self.published_at,
            redemptions: u32::try_from(self.redemptions).unwrap_or_default(),
            code: self.code,
            name: self.name,
            funnel,
        }
    }

    fn public(self, now: OffsetDateTime) -> PublicPromotion {
        PublicPromotion {
            offer: self.offer(),
            status: self.status(now),
            token: self.token.map(|t| t.0),
            first_time_only: self.first_time_only,
            min_budget: self.min_budget,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            code: self.code,
            name: self.name,
        }
    }
}

/// Promotion `id`, or the one with `code`.
async fn find(conn: &mut PgConnection, id: Option<Uuid>, code: Option<&str>) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT id, code, name, offer AS "offer: OfferKind", token AS "token: SqlAddress", budget_id,
                  credit AS "credit: Amount", discount_bps, discount_days, trial_impressions, max_redemptions,
                  per_user, first_time_only, min_budget AS "min_budget: Amount", starts_at, ends_at, published_at,
                  paused, redemptions
           FROM promotions WHERE id = $1 OR code = $2"#,
        id,
        code
    )
    .fetch_optional(conn)
    .await
}

/// Creates a promotion.
pub async fn create(db: &PgPool, new: NewPromotion, by: Uuid, now: OffsetDateTime) -> Result<Promotion, PromoError> {
    new.offer.check()?;
    if new.ends_at <= new.starts_at {
        return Err(invalid("endsAt", ValueError::Refused("must be after startsAt")));
    }
    if new.ends_at <= now {
        return Err(invalid("endsAt", ValueError::Refused("must be in the future")));
    }
    let limits = &new.limits;
    if !(1..=100).contains(&limits.per_user) {
        return Err(invalid("perUser", ValueError::OutOfRange { min: 1, max: 100 }));
    }
    if limits.max_redemptions == Some(0) || limits.max_redemptions.is_some_and(|max| max > i32::MAX as u32) {
        return Err(invalid(
            "maxRedemptions",
            ValueError::OutOfRange {
                min: 1,
                max: i64::from(i32::MAX),
            },
        ));
    }
    if limits.min_budget.is_some_and(Amount::is_zero) {
        return Err(invalid("minBudget", ValueError::Refused("must be more than zero")));
    }
    let mut tx = db.begin().await?;
    let mut token = limits.token;
    let (budget, credit, bps, days, trial) = match new.offer {
        Offer::AdCredit { budget, credit } => {
            let budget_token = sqlx::query_scalar!(
                r#"SELECT token AS "token: SqlAddress" FROM escrow_accounts WHERE id = $1 AND kind = 'program'"#,
                budget
            )
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(PromoError::UnknownBudget)?;
            if token.is_some_and(|token| token != budget_token.0) {
                return Err(invalid(
                    "token",
                    ValueError::Refused("must be the budget's token, which the credit pays in"),
                ));
            }
            token = Some(budget_token.0);
            (Some(budget), Some(credit), None, None, None)
        }
        Offer::FeeDiscount { bps, days } => (None, None, Some(bps as i32), Some(days as i32), None),
        Offer::FreeTrial { impressions } => (None, None, None, None, Some(impressions as i32)),
    };
    if limits.min_budget.is_some() && token.is_none() {
        return Err(invalid(
            "minBudget",
            ValueError::Refused("needs the token it is counted in (token)"),
        ));
    }
    let code = new.code.clone().unwrap_or_else(PromoCode::generate);
    let id = sqlx::query_scalar!(
        "INSERT INTO promotions (code, name, offer, token, budget_id, credit, discount_bps, discount_days,
                                 trial_impressions, max_redemptions, per_user, first_time_only, min_budget,
                                 starts_at, ends_at, published_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (code) DO NOTHING RETURNING id",
        code.as_str(),
        new.name.as_str(),
        new.offer.kind() as OfferKind,
        token.map(SqlAddress) as Option<SqlAddress>,
        budget,
        credit as Option<Amount>,
        bps,
        days,
        trial,
        limits.max_redemptions.map(|max| max as i32),
        limits.per_user as i32,
        limits.first_time_only,
        limits.min_budget as Option<Amount>,
        new.starts_at,
        new.ends_at,
        new.publish.then_some(now),
        by
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| PromoError::CodeTaken(code.as_str().to_owned()))?;
    tx.commit().await?;
    get(db, id, now).await
}

/// Publishes, pauses, resumes or ends promotion `id`, as its status allows.
pub async fn change(db: &PgPool, id: Uuid, action: Action, now: OffsetDateTime) -> Result<Promotion, PromoError> {
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT id FROM promotions WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(PromoError::UnknownPromotion)?;
    let row = find(&mut tx, Some(id), None)
        .await?
        .ok_or(PromoError::UnknownPromotion)?;
    let status = row.status(now);
    let refused = |action| PromoError::Workflow { status, action };
    match (action, status) {
        (Action::Publish, Status::Draft) => {
            sqlx::query!("UPDATE promotions SET published_at = $2 WHERE id = $1", id, now)
                .execute(&mut *tx)
                .await?;
        }
        (Action::Pause, Status::Active | Status::Scheduled) if !row.paused => {
            sqlx::query!("UPDATE promotions SET paused = true WHERE id = $1", id)
                .execute(&mut *tx)
                .await?;
        }
        (Action::Resume, Status::Paused | Status::Scheduled) if row.paused => {
            sqlx::query!("UPDATE promotions SET paused = false WHERE id = $1", id)
                .execute(&mut *tx)
                .await?;
        }
        (Action::End, Status::Draft | Status::Scheduled | Status::Active | Status::Paused) => {
            // Its end moves to now (and its start with it, for one that had not started).
            sqlx::query!(
                "UPDATE promotions SET starts_at = least(starts_at, $2::timestamptz - interval '1 microsecond'), ends_at = $2,
                                       published_at = coalesce(published_at, $2)
                 WHERE id = $1",
                id,
                now
            )
            .execute(&mut *tx)
            .await?;
        }
        (Action::Publish, _) => return Err(refused("published")),
        (Action::Pause, _) => return Err(refused("paused")),
        (Action::Resume, _) => return Err(refused("resumed")),
        (Action::End, _) => return Err(refused("ended")),
    }
    tx.commit().await?;
    get(db, id, now).await
}

/// Promotion `id` with its funnel.
pub async fn get(db: &PgPool, id: Uuid, now: OffsetDateTime) -> Result<Promotion, PromoError> {
    let mut conn = db.acquire().await?;
    let row = find(&mut conn, Some(id), None)
        .await?
        .ok_or(PromoError::UnknownPromotion)?;
    let mut funnels = funnels(&mut conn, &[id]).await?;
    Ok(row.into_promotion(funnels.remove(&id).unwrap_or_default(), now))
}

/// Every promotion, newest first, with its funnel.
pub async fn list(db: &PgPool, now: OffsetDateTime) -> Result<Vec<Promotion>, PromoError> {
    let mut conn = db.acquire().await?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id, code, name, offer AS "offer: OfferKind", token AS "token: SqlAddress", budget_id,
                  credit AS "credit: Amount", discount_bps, discount_days, trial_impressions, max_redemptions,
                  per_user, first_time_only, min_budget AS "min_budget: Amount", starts_at, ends_at, published_at,
                  paused, redemptions
           FROM promotions ORDER BY created_at DESC, id"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let mut funnels = funnels(&mut conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let funnel = funnels.remove(&row.id).unwrap_or_default();
            row.into_promotion(funnel, now)
        })
        .collect())
}

/// The promotion behind a link, for whoever follows it; the visit is counted. A draft is
/// not found.
pub async fn visit(db: &PgPool, code: &str, now: OffsetDateTime) -> Result<PublicPromotion, PromoError> {
    let code = PromoCode::parse(code).map_err(|_| PromoError::UnknownPromotion)?;
    let mut tx = db.begin().await?;
    let row = find(&mut tx, None, Some(code.as_str()))
        .await?
        .filter(|row| row.published_at.is_some())
        .ok_or(PromoError::UnknownPromotion)?;
    sqlx::query!(
        "INSERT INTO promo_events (promotion_id, kind, at) VALUES ($1, 'visit', $2)",
        row.id,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.public(now))
}

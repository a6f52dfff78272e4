//! Ad sets and ads: what a campaign shows. An ad carries its creative and, optionally, its
//! own prices; ownership follows the campaign up to its brand's owner.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::OwnerScope;
use crate::adserver::pricing::{PriceList, UnitPrices};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdSet {
    pub id: Uuid,
    pub campaign_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "creative_kind", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum CreativeKind {
    Image,
    Video,
    Text,
}

/// What the viewer sees and where a click leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Creative {
    pub kind: CreativeKind,
    #[schema(value_type = crate::platform::wire::schema::Title)]
    pub title: String,
    #[serde(default)]
    #[schema(value_type = crate::platform::wire::schema::BodyText)]
    pub text: String,
    /// The image or video; required unless `kind` is `text`. http or https.
    #[schema(value_type = Option<crate::platform::wire::schema::WebUrl>, example = "https://cdn.example.com/banner.png")]
    #[serde(default)]
    pub media_url: Option<Url>,
    /// Where a click leads; http or https.
    #[schema(value_type = crate::platform::wire::schema::WebUrl, example = "https://example.com/landing")]
    pub click_url: Url,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ad {
    pub id: Uuid,
    pub ad_set_id: Uuid,
    pub campaign_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    pub active: bool,
    pub creative: Creative,
    /// The ad's own prices; events without one use the token's default.
    pub prices: PriceList,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An ad's settings, checked by the caller.
#[derive(Debug, Clone)]
pub struct AdFields {
    pub name: String,
    pub active: bool,
    pub creative: Creative,
    pub prices: UnitPrices,
}

/// Which ad sets or ads to read; `scope` limits them to one owner's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub id: Option<Uuid>,
    pub campaign_id: Option<Uuid>,
    pub ad_set_id: Option<Uuid>,
    pub scope: OwnerScope,
}

pub async fn insert_ad_set(
    db: impl PgExecutor<'_>,
    campaign_id: Uuid,
    name: &str,
    active: bool,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO ad_sets (campaign_id, name, active) VALUES ($1, $2, $3) RETURNING id",
        campaign_id,
        name,
        active
    )
    .fetch_one(db)
    .await
}

pub async fn update_ad_set(db: impl PgExecutor<'_>, id: Uuid, name: &str, active: bool) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE ad_sets SET name = $2, active = $3 WHERE id = $1",
        id,
        name,
        active
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn select_ad_sets(db: impl PgExecutor<'_>, filter: Filter) -> Result<Vec<AdSet>, sqlx::Error> {
    sqlx::query_as!(
        AdSet,
        "SELECT s.id, s.campaign_id, s.name, s.active, s.created_at
         FROM ad_sets s JOIN campaigns c ON c.id = s.campaign_id JOIN brands b ON b.id = c.brand_id
         WHERE ($1::uuid IS NULL OR s.id = $1) AND ($2::uuid IS NULL OR s.campaign_id = $2)
           AND ($3::uuid IS NULL OR b.owner_id = $3)
         ORDER BY s.created_at, s.id",
        filter.id,
        filter.campaign_id,
        filter.scope
    )
    .fetch_all(db)
    .await
}

pub async fn insert_ad(db: impl PgExecutor<'_>, ad_set_id: Uuid, fields: &AdFields) -> Result<Uuid, sqlx::Error> {
    let [impression, click, view, acquisition] = fields.prices.to_db();
    sqlx::query_scalar!(
        "INSERT INTO ads (ad_set_id, name, active, kind, title, body, media_url, click_url,
                          price_impression, price_click, price_view, price_acquisition)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::numeric, $10::text::numeric, $11::text::numeric, $12::text::numeric)
         RETURNING id",
        ad_set_id,
        fields.name,
        fields.active,
        fields.creative.kind as CreativeKind,
        fields.creative.title,
        fields.creative.text,
        fields.creative.media_url.as_ref().map(Url::as_str),
        fields.creative.click_url.as_str(),
        impression,
        click,
        view,
        acquisition
    )
    .fetch_one(db)
    .await
}

pub async fn update_ad(db: impl PgExecutor<'_>, id: Uuid, fields: &AdFields) -> Result<(), sqlx::Error> {
    let [impression, click, view, acquisition] = fields.prices.to_db();
    sqlx::query!(
        "UPDATE ads SET name = $2, active = $3, kind = $4, title = $5, body = $6, media_url = $7, click_url = $8,
                        price_impression = $9::text::numeric, price_click = $10::text::numeric,
                        price_view = $11::text::numeric, price_acquisition = $12::text::numeric
         WHERE id = $1",
        id,
        fields.name,
        fields.active,
        fields.creative.kind as CreativeKind,
        fields.creative.title,
        fields.creative.text,
        fields.creative.media_url.as_ref().map(Url::as_str),
        fields.creative.click_url.as_str(),
        impression,
        click,
        view,
        acquisition
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn select_ads(db: impl PgExecutor<'_>, filter: Filter) -> Result<Vec<Ad>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT a.id, a.ad_set_id, s.campaign_id, a.name, a.active, a.kind AS "kind: CreativeKind", a.title,
                  a.body, a.media_url, a.click_url, a.price_impression::text, a.price_click::text,
                  a.price_view::text, a.price_acquisition::text, a.created_at
           FROM ads a JOIN ad_sets s ON s.id = a.ad_set_id JOIN campaigns c ON c.id = s.campaign_id
           JOIN brands b ON b.id = c.brand_id
           WHERE ($1::uuid IS NULL OR a.id = $1) AND ($2::uuid IS NULL OR a.ad_set_id = $2)
             AND ($3::uuid IS NULL OR s.campaign_id = $3) AND ($4::uuid IS NULL OR b.owner_id = $4)
           ORDER BY a.created_at, a.id"#,
        filter.id,
        filter.ad_set_id,
        filter.campaign_id,
        filter.scope
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            // Click URLs are checked before they are stored; one the database holds anyway
            // leaves its ad out rather than failing the whole listing.
            let Ok(click_url) = row.click_url.parse() else {
                tracing::warn!(ad = %row.id, "stored click URL does not parse; ad left out");
                return None;
            };
            Some((row, click_url))
        })
        .map(|(row, click_url)| Ad {
            id: row.id,
            ad_set_id: row.ad_set_id,
            campaign_id: row.campaign_id,
            name: row.name,
            active: row.active,
            creative: Creative {
                kind: row.kind,
                title: row.title,
                text: row.body,
                media_url: row.media_url.and_then(|u| u.parse().ok()),
                click_url,
            },
            prices: UnitPrices::from_db(
                row.price_impression,
                row.price_click,
                row.price_view,
                row.price_acquisition,
            )
            .to_list(),
            created_at: row.created_at,
        })
        .collect())
}

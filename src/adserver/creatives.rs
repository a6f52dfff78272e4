//! Ad sets and ads: what a campaign shows. An ad carries its creative and, optionally, its
//! own prices; ownership follows the campaign up to its brand's owner.

use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::OwnerScope;
use crate::adserver::campaigns::{self, CampaignStatus};
use crate::adserver::pricing::{PriceList, UnitPrices};
use crate::money::Amount;
use crate::platform::values::{Name, Text, WebUrl};

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

/// An ad's title: 1 to 200 characters.
pub type Title = Text<1, 200>;

/// An ad's body text: up to 2,000 characters.
pub type BodyText = Text<0, 2000>;

/// A creative whose values are parsed: image and video ads have their media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreativeFields {
    kind: CreativeKind,
    title: Title,
    text: BodyText,
    media_url: Option<WebUrl>,
    click_url: WebUrl,
}

impl CreativeFields {
    pub fn new(
        kind: CreativeKind,
        title: Title,
        text: BodyText,
        click_url: WebUrl,
        media_url: Option<WebUrl>,
    ) -> Result<Self, CreativeError> {
        if media_url.is_none() && kind != CreativeKind::Text {
            return Err(CreativeError::MediaUrlRequired);
        }
        Ok(Self {
            kind,
            title,
            text,
            media_url,
            click_url,
        })
    }
}

/// An ad's settings, each value parsed.
#[derive(Debug, Clone)]
pub struct AdFields {
    pub name: Name,
    pub active: bool,
    pub creative: CreativeFields,
    pub prices: UnitPrices,
}

/// Why an ad set or ad was not created or changed.
#[derive(Debug, thiserror::Error)]
pub enum CreativeError {
    #[error("ad set not found")]
    AdSetNotFound,
    #[error("ad not found")]
    AdNotFound,
    #[error("no such campaign among yours")]
    UnknownCampaign,
    #[error("the campaign is COMPLETED")]
    CampaignCompleted,
    #[error("no such ad set among yours")]
    UnknownAdSet,
    #[error("the ad set's campaign is COMPLETED")]
    AdSetCampaignCompleted,
    #[error("image and video ads need a media URL")]
    MediaUrlRequired,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Which ad sets or ads to read; `scope` limits them to one owner's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub id: Option<Uuid>,
    pub campaign_id: Option<Uuid>,
    pub ad_set_id: Option<Uuid>,
    pub scope: OwnerScope,
}

/// Creates an ad set in a campaign the scope may see; a COMPLETED campaign takes none.
pub async fn create_ad_set(
    db: &PgPool,
    scope: OwnerScope,
    campaign_id: Uuid,
    name: &Name,
    active: bool,
) -> Result<AdSet, CreativeError> {
    let campaign = campaigns::find(db, campaign_id, scope)
        .await?
        .ok_or(CreativeError::UnknownCampaign)?;
    if campaign.status == CampaignStatus::Completed {
        return Err(CreativeError::CampaignCompleted);
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO ad_sets (campaign_id, name, active) VALUES ($1, $2, $3) RETURNING id",
        campaign.id,
        name.as_str(),
        active
    )
    .fetch_one(db)
    .await?;
    find_ad_set(db, id, scope).await?.ok_or(CreativeError::AdSetNotFound)
}

pub async fn update_ad_set(
    db: &PgPool,
    id: Uuid,
    scope: OwnerScope,
    name: &Name,
    active: bool,
) -> Result<AdSet, CreativeError> {
    sqlx::query!(
        "UPDATE ad_sets SET name = $2, active = $3 WHERE id = $1",
        id,
        name.as_str(),
        active
    )
    .execute(db)
    .await?;
    find_ad_set(db, id, scope).await?.ok_or(CreativeError::AdSetNotFound)
}

pub async fn find_ad_set(db: impl PgExecutor<'_>, id: Uuid, scope: OwnerScope) -> Result<Option<AdSet>, sqlx::Error> {
    let filter = Filter {
        id: Some(id),
        scope,
        ..Filter::default()
    };
    Ok(select_ad_sets(db, filter).await?.pop())
}

pub async fn find_ad(db: impl PgExecutor<'_>, id: Uuid, scope: OwnerScope) -> Result<Option<Ad>, sqlx::Error> {
    let filter = Filter {
        id: Some(id),
        scope,
        ..Filter::default()
    };
    Ok(select_ads(db, filter).await?.pop())
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

/// Creates an ad in an ad set the scope may see, unless its campaign is COMPLETED.
pub async fn create_ad(
    db: &PgPool,
    scope: OwnerScope,
    ad_set_id: Uuid,
    fields: &AdFields,
) -> Result<Ad, CreativeError> {
    let ad_set = find_ad_set(db, ad_set_id, scope)
        .await?
        .ok_or(CreativeError::UnknownAdSet)?;
    let campaign = campaigns::find(db, ad_set.campaign_id, None)
        .await?
        .ok_or(CreativeError::UnknownAdSet)?;
    if campaign.status == CampaignStatus::Completed {
        return Err(CreativeError::AdSetCampaignCompleted);
    }
    let [impression, click, view, acquisition] = fields.prices.to_columns();
    let creative = &fields.creative;
    let id = sqlx::query_scalar!(
        "INSERT INTO ads (ad_set_id, name, active, kind, title, body, media_url, click_url,
                          price_impression, price_click, price_view, price_acquisition)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING id",
        ad_set.id,
        fields.name.as_str(),
        fields.active,
        creative.kind as CreativeKind,
        creative.title.as_str(),
        creative.text.as_str(),
        creative.media_url.as_ref().map(WebUrl::as_str),
        creative.click_url.as_str(),
        impression as Option<Amount>,
        click as Option<Amount>,
        view as Option<Amount>,
        acquisition as Option<Amount>
    )
    .fetch_one(db)
    .await?;
    find_ad(db, id, scope).await?.ok_or(CreativeError::AdNotFound)
}

/// Replaces an ad's settings.
pub async fn update_ad(db: &PgPool, id: Uuid, scope: OwnerScope, fields: &AdFields) -> Result<Ad, CreativeError> {
    let [impression, click, view, acquisition] = fields.prices.to_columns();
    let creative = &fields.creative;
    sqlx::query!(
        "UPDATE ads SET name = $2, active = $3, kind = $4, title = $5, body = $6, media_url = $7, click_url = $8,
                        price_impression = $9, price_click = $10, price_view = $11, price_acquisition = $12
         WHERE id = $1",
        id,
        fields.name.as_str(),
        fields.active,
        creative.kind as CreativeKind,
        creative.title.as_str(),
        creative.text.as_str(),
        creative.media_url.as_ref().map(WebUrl::as_str),
        creative.click_url.as_str(),
        impression as Option<Amount>,
        click as Option<Amount>,
        view as Option<Amount>,
        acquisition as Option<Amount>
    )
    .execute(db)
    .await?;
    find_ad(db, id, scope).await?.ok_or(CreativeError::AdNotFound)
}

pub async fn select_ads(db: impl PgExecutor<'_>, filter: Filter) -> Result<Vec<Ad>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT a.id, a.ad_set_id, s.campaign_id, a.name, a.active, a.kind AS "kind: CreativeKind", a.title,
                  a.body, a.media_url, a.click_url, a.price_impression AS "price_impression: Amount",
                  a.price_click AS "price_click: Amount", a.price_view AS "price_view: Amount",
                  a.price_acquisition AS "price_acquisition: Amount", a.created_at
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
            prices: UnitPrices::from_columns(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> WebUrl {
        text.parse().unwrap()
    }

    #[test]
    fn image_and_video_ads_need_media() {
        let title = Title::parse("Coffee").unwrap();
        let text = BodyText::parse("").unwrap();
        let click = url("https://acme.example/");
        for kind in [CreativeKind::Image, CreativeKind::Video] {
            assert!(matches!(
                CreativeFields::new(kind, title.clone(), text.clone(), click.clone(), None),
                Err(CreativeError::MediaUrlRequired)
            ));
            let media = Some(url("https://cdn.acme.example/a.png"));
            assert!(CreativeFields::new(kind, title.clone(), text.clone(), click.clone(), media).is_ok());
        }
        assert!(CreativeFields::new(CreativeKind::Text, title, text, click, None).is_ok());
    }

    #[test]
    fn titles_and_texts_are_bounded() {
        assert!(Title::parse(&"t".repeat(200)).is_ok());
        assert!(Title::parse(&"t".repeat(201)).is_err());
        assert!(Title::parse("").is_err());
        assert!(BodyText::parse("").is_ok());
        assert!(BodyText::parse(&"b".repeat(2000)).is_ok());
        assert!(BodyText::parse(&"b".repeat(2001)).is_err());
    }
}

//! Placements: the slots on hosters' pages that ads fill, each showing at most `max_ads` at
//! once. The four defaults are seeded by the migration; admins add and change others.

use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub id: Uuid,
    /// What hosters name in decision requests.
    #[schema(example = "feed-top-banner")]
    pub slug: String,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    #[schema(value_type = crate::platform::wire::schema::Description)]
    pub description: String,
    /// Most ads shown at once (1 to 10).
    #[schema(minimum = 1, maximum = 10)]
    pub max_ads: i32,
}

/// A placement's settings, checked by the caller.
#[derive(Debug, Clone)]
pub struct PlacementFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub max_ads: i32,
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Placement>, sqlx::Error> {
    sqlx::query_as!(
        Placement,
        "SELECT id, slug, name, description, max_ads FROM placements ORDER BY created_at, slug"
    )
    .fetch_all(db)
    .await
}

/// Adds a placement. A taken slug surfaces as a violation of `placements_slug_key`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    slug: &str,
    fields: &PlacementFields<'_>,
) -> Result<Placement, sqlx::Error> {
    sqlx::query_as!(
        Placement,
        "INSERT INTO placements (slug, name, description, max_ads) VALUES ($1, $2, $3, $4)
         RETURNING id, slug, name, description, max_ads",
        slug,
        fields.name,
        fields.description,
        fields.max_ads
    )
    .fetch_one(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    fields: &PlacementFields<'_>,
) -> Result<Option<Placement>, sqlx::Error> {
    sqlx::query_as!(
        Placement,
        "UPDATE placements SET name = $2, description = $3, max_ads = $4 WHERE id = $1
         RETURNING id, slug, name, description, max_ads",
        id,
        fields.name,
        fields.description,
        fields.max_ads
    )
    .fetch_optional(db)
    .await
}

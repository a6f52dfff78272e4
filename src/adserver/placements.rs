//! Placements: the slots on hosters' pages that ads fill, each showing at most `max_ads` at
//! once. The four defaults are seeded by the migration; admins add and change others.

use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::values::{Bounded, Name, Text, ValueError};

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

/// What hosters name a placement by: lowercase letters and digits in words joined by
/// hyphens, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub const MAX: usize = 64;

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let slug = value.trim();
        let well_formed = !slug.is_empty()
            && slug.len() <= Self::MAX
            && slug
                .split('-')
                .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if !well_formed {
            return Err(ValueError::Refused(
                "must be lowercase letters and digits in words joined by hyphens, at most 64 characters",
            ));
        }
        Ok(Self(slug.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a placement says about itself: up to 500 characters.
pub type Description = Text<0, 500>;

/// Most ads a placement shows at once.
pub type MaxAds = Bounded<1, 10>;

/// A placement's settings, each value parsed.
#[derive(Debug, Clone)]
pub struct PlacementFields {
    pub name: Name,
    pub description: Description,
    pub max_ads: MaxAds,
}

/// Why a placement was not created or changed.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("placement not found")]
    NotFound,
    #[error("a placement with this slug exists")]
    SlugTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn max_ads(fields: &PlacementFields) -> i32 {
    // At most 10.
    i32::try_from(fields.max_ads.get()).unwrap_or(i32::MAX)
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Placement>, sqlx::Error> {
    sqlx::query_as!(
        Placement,
        "SELECT id, slug, name, description, max_ads FROM placements ORDER BY created_at, slug"
    )
    .fetch_all(db)
    .await
}

/// Adds a placement; its slug must be free.
pub async fn insert(
    db: impl PgExecutor<'_>,
    slug: &Slug,
    fields: &PlacementFields,
) -> Result<Placement, PlacementError> {
    sqlx::query_as!(
        Placement,
        "INSERT INTO placements (slug, name, description, max_ads) VALUES ($1, $2, $3, $4)
         RETURNING id, slug, name, description, max_ads",
        slug.as_str(),
        fields.name.as_str(),
        fields.description.as_str(),
        max_ads(fields)
    )
    .fetch_one(db)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("placements_slug_key") => PlacementError::SlugTaken,
        _ => error.into(),
    })
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Placement>, sqlx::Error> {
    sqlx::query_as!(
        Placement,
        "SELECT id, slug, name, description, max_ads FROM placements WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn update(db: impl PgExecutor<'_>, id: Uuid, fields: &PlacementFields) -> Result<Placement, PlacementError> {
    sqlx::query_as!(
        Placement,
        "UPDATE placements SET name = $2, description = $3, max_ads = $4 WHERE id = $1
         RETURNING id, slug, name, description, max_ads",
        id,
        fields.name.as_str(),
        fields.description.as_str(),
        max_ads(fields)
    )
    .fetch_optional(db)
    .await?
    .ok_or(PlacementError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_hyphenated_lowercase_words_of_at_most_64_characters() {
        assert_eq!(Slug::parse(" footer-strip ").unwrap().as_str(), "footer-strip");
        assert!(Slug::parse("a1").is_ok());
        assert!(Slug::parse(&"a".repeat(64)).is_ok());
        assert!(Slug::parse(&"a".repeat(65)).is_err());
        for bad in ["", "-a", "a-", "a--b", "Footer", "a_b", "a b"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn max_ads_and_descriptions_are_bounded() {
        assert!(MaxAds::parse(1).is_ok());
        assert!(MaxAds::parse(10).is_ok());
        assert_eq!(MaxAds::parse(0), Err(ValueError::OutOfRange { min: 1, max: 10 }));
        assert!(MaxAds::parse(11).is_err());
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(500)).is_ok());
        assert!(Description::parse(&"d".repeat(501)).is_err());
    }
}

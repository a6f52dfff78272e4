//! Items: what sellers list, their prices per token and license terms, the states they go
//! through, and the public listing with search.

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::MarketError;
use crate::accounts::OwnerScope;
use crate::money::Amount;
use crate::platform::values::{Bounded, Text, ValueError};

/// What kind of thing an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "market_category", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Category {
    CreativeTemplate,
    AudienceResearch,
    DataSet,
    Software,
    Other,
}

/// Where an item is in its life. Only published and unlisted items are sold; only
/// published ones are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "market_item_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    Draft,
    Published,
    Unlisted,
    Retired,
}

impl ItemState {
    /// Whether an item may go from `self` to `to`: a draft goes anywhere, published and
    /// unlisted swap or retire, and retired is final.
    pub fn may_become(self, to: ItemState) -> bool {
        use ItemState::*;
        match (self, to) {
            (from, to) if from == to => true,
            (Draft, _) => true,
            (Published | Unlisted, Published | Unlisted | Retired) => true,
            _ => false,
        }
    }

    pub fn is_for_sale(self) -> bool {
        matches!(self, ItemState::Published | ItemState::Unlisted)
    }
}

pub type Title = Text<1, 200>;
pub type Description = Text<0, 10_000>;
pub type ActivationLimit = Bounded<1, 1000>;
pub type LicenseDays = Bounded<1, 3650>;

/// A tag: 1 to 32 ASCII letters, digits or hyphens, kept in lower case (exactly what the
/// document's `ItemTag` pattern states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let ok = (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(ValueError::Refused("must be 1 to 32 letters, digits or hyphens"));
        }
        Ok(Self(value.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An item's tags: at most 10 [`Tag`]s, duplicates dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<String>);

impl Tags {
    pub const MAX: usize = 10;

    pub fn parse(values: &[String]) -> Result<Self, ValueError> {
        if values.len() > Self::MAX {
            return Err(ValueError::TooMany { max: Self::MAX });
        }
        let mut tags = Vec::with_capacity(values.len());
        for (index, value) in values.iter().enumerate() {
            let tag = Tag::parse(value).map_err(|error| ValueError::Entry {
                index,
                error: Box::new(error),
            })?;
            if !tags.contains(&tag.0) {
                tags.push(tag.0);
            }
        }
        Ok(Self(tags))
    }
}

/// A price in one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Price {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    pub token: Address,
    #[schema(value_type = crate::money::PositiveAmount)]
    pub price: Amount,
}

/// Prices in distinct tokens, each above zero (at most 10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prices(Vec<Price>);

impl Prices {
    pub const MAX: usize = 10;

    pub fn parse(values: &[Price]) -> Result<Self, ValueError> {
        if values.len() > Self::MAX {
            return Err(ValueError::TooMany { max: Self::MAX });
        }
        for (index, price) in values.iter().enumerate() {
            let entry = |error| ValueError::Entry {
                index,
                error: Box::new(error),
            };
            if price.token == Address::ZERO {
                return Err(entry(ValueError::Refused("token must be a token contract address")));
            }
            if price.price.is_zero() {
                return Err(entry(ValueError::Refused("price must be above zero")));
            }
            if values[..index].iter().any(|p| p.token == price.token) {
                return Err(entry(ValueError::Refused("each token may have one price")));
            }
        }
        Ok(Self(values.to_vec()))
    }
}

/// What a seller gives to list an item.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub title: Title,
    pub description: Description,
    pub category: Category,
    pub tags: Tags,
    pub prices: Prices,
    pub activation_limit: ActivationLimit,
    pub license_days: Option<LicenseDays>,
}

/// Changes to an item; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ItemChange {
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub category: Option<Category>,
    pub tags: Option<Tags>,
    pub prices: Option<Prices>,
    pub activation_limit: Option<ActivationLimit>,
    /// `Some(None)` makes the license perpetual.
    pub license_days: Option<Option<LicenseDays>>,
    pub state: Option<ItemState>,
}

/// A file of an item, as buyers and sellers see it (never where it is stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// An item.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub seller: Address,
    pub title: String,
    pub description: String,
    pub category: Category,
    pub tags: Vec<String>,
    pub prices: Vec<Price>,
    /// The platform's fee on a sale, in basis points (the seller gets the rest).
    pub fee_bps: i32,
    pub activation_limit: i32,
    /// How long a license lasts; absent: perpetual.
    pub license_days: Option<i32>,
    pub state: ItemState,
    pub files: Vec<FileInfo>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Creates a draft item for `seller`.
pub async fn create(db: &PgPool, seller: Uuid, item: &NewItem) -> Result<Uuid, MarketError> {
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO market_items (seller_id, title, description, category, tags, activation_limit, license_days)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        seller,
        item.title.as_str(),
        item.description.as_str(),
        item.category as Category,
        &item.tags.0,
        item.activation_limit.get() as i32,
        item.license_days.map(|d| d.get() as i32)
    )
    .fetch_one(&mut *tx)
    .await?;
    set_prices(&mut tx, id, &item.prices).await?;
    tx.commit().await?;
    Ok(id)
}

async fn set_prices(conn: &mut PgConnection, item: Uuid, prices: &Prices) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM market_prices WHERE item_id = $1", item)
        .execute(&mut *conn)
        .await?;
    let tokens: Vec<Vec<u8>> = prices.0.iter().map(|p| p.token.to_vec()).collect();
    let amounts: Vec<Amount> = prices.0.iter().map(|p| p.price).collect();
    sqlx::query!(
        "INSERT INTO market_prices (item_id, token, price) SELECT $1, * FROM unnest($2::bytea[], $3::numeric[])",
        item,
        &tokens,
        &amounts as &[Amount]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes an item its seller (or, with `scope` `None`, an admin) may change. Publishing
/// asks for at least one price and one file.
pub async fn update(db: &PgPool, id: Uuid, scope: OwnerScope, change: &ItemChange) -> Result<(), MarketError> {
    let mut tx = db.begin().await?;
    let current = sqlx::query!(
        r#"SELECT state AS "state: ItemState",
                  (SELECT count(*) FROM market_prices p WHERE p.item_id = i.id) AS "prices!",
                  (SELECT count(*) FROM market_files f WHERE f.item_id = i.id) AS "files!"
           FROM market_items i WHERE id = $1 AND ($2::uuid IS NULL OR seller_id = $2) FOR UPDATE"#,
        id,
        scope
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(MarketError::UnknownItem)?;
    if current.state == ItemState::Retired {
        return Err(MarketError::ItemRetired);
    }
    if let Some(prices) = &change.prices {
        set_prices(&mut tx, id, prices).await?;
    }
    if let Some(to) = change.state {
        if !current.state.may_become(to) {
            return Err(MarketError::StateChange {
                from: current.state,
                to,
            });
        }
        let prices = change.prices.as_ref().map_or(current.prices, |p| p.0.len() as i64);
        if to.is_for_sale() && (prices == 0 || current.files == 0) {
            return Err(MarketError::NotReadyForSale);
        }
    }
    sqlx::query!(
        r#"UPDATE market_items SET
               title = coalesce($2, title), description = coalesce($3, description),
               category = coalesce($4, category), tags = coalesce($5, tags),
               activation_limit = coalesce($6, activation_limit),
               license_days = CASE WHEN $7 THEN $8 ELSE license_days END,
               state = coalesce($9, state),
               published_at = CASE WHEN coalesce($9, state) <> 'draft' THEN coalesce(published_at, now()) END
           WHERE id = $1"#,
        id,
        change.title.as_ref().map(Text::as_str),
        change.description.as_ref().map(Text::as_str),
        change.category as Option<Category>,
        change.tags.as_ref().map(|t| t.0.as_slice()),
        change.activation_limit.map(|l| l.get() as i32),
        change.license_days.is_some(),
        change.license_days.flatten().map(|d| d.get() as i32),
        change.state as Option<ItemState>
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the platform's fee on one item (admins); `None` falls back to the seller's.
pub async fn set_item_fee(db: &PgPool, id: Uuid, fee_bps: Option<FeeBps>) -> Result<(), MarketError> {
    let updated = sqlx::query!(
        "UPDATE market_items SET fee_bps = $2 WHERE id = $1",
        id,
        fee_bps.map(|fee| fee.get() as i32)
    )
    .execute(db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(MarketError::UnknownItem);
    }
    Ok(())
}

/// Sets a seller's fee (admins), for its items without one of their own.
pub async fn set_seller_fee(db: &PgPool, seller: Address, fee_bps: FeeBps, admin: Uuid) -> Result<(), MarketError> {
    let updated = sqlx::query!(
        "INSERT INTO market_sellers (user_id, fee_bps, set_by)
         SELECT id, $2, $3 FROM users WHERE address = $1
         ON CONFLICT (user_id) DO UPDATE SET fee_bps = EXCLUDED.fee_bps, set_by = EXCLUDED.set_by, updated_at = now()",
        seller.as_slice(),
        fee_bps.get() as i32,
        admin
    )
    .execute(db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(MarketError::UnknownSeller);
    }
    Ok(())
}

/// The platform's fee on a sale: 0 to 50% in basis points.
pub type FeeBps = Bounded<0, 5000>;

/// Who is asking for an item: the public sees what is for sale, its seller everything of
/// its own, an admin everything.
#[derive(Debug, Clone, Copy)]
pub enum Viewer {
    Public,
    Owner(Uuid),
    Admin,
}

/// One item as `viewer` may see it.
pub async fn find(db: &PgPool, id: Uuid, viewer: Viewer, default_fee: i32) -> Result<Option<Item>, sqlx::Error> {
    let row = select(db, &[id], default_fee).await?.into_iter().next();
    Ok(row
        .filter(|row| match viewer {
            Viewer::Admin => true,
            Viewer::Owner(user) => row.seller_id == user || row.item.state.is_for_sale(),
            Viewer::Public => row.item.state.is_for_sale(),
        })
        .map(|row| row.item))
}

struct Row {
    seller_id: Uuid,
    item: Item,
}

/// Items by id, in the order given, with prices and files.
async fn select(db: &PgPool, ids: &[Uuid], default_fee: i32) -> Result<Vec<Row>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT i.id, i.seller_id, u.address AS "seller: SqlAddress", i.title, i.description,
                  i.category AS "category: Category", i.tags, coalesce(i.fee_bps, s.fee_bps, $2) AS "fee_bps!",
                  i.activation_limit, i.license_days, i.state AS "state: ItemState", i.published_at, i.created_at,
                  coalesce((SELECT array_agg(p.token ORDER BY p.token) FROM market_prices p WHERE p.item_id = i.id), '{}') AS "price_tokens!: Vec<SqlAddress>",
                  coalesce((SELECT array_agg(p.price ORDER BY p.token) FROM market_prices p WHERE p.item_id = i.id), '{}') AS "price_amounts!: Vec<Amount>"
           FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, n)
           JOIN market_items i ON i.id = k.id
           JOIN users u ON u.id = i.seller_id
           LEFT JOIN market_sellers s ON s.user_id = i.seller_id
           ORDER BY k.n"#,
        ids,
        default_fee
    )
    .fetch_all(db)
    .await?;
    let files = sqlx::query!(
        r#"SELECT item_id, id, name, content_type, size, sha256 FROM market_files
           WHERE item_id = ANY($1) ORDER BY created_at, id"#,
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Row {
            seller_id: row.seller_id,
            item: Item {
                id: row.id,
                seller: row.seller.0,
                title: row.title,
                description: row.description,
                category: row.category,
                tags: row.tags,
                prices: row
                    .price_tokens
                    .iter()
                    .zip(&row.price_amounts)
                    .map(|(token, price)| Price {
                        token: token.0,
                        price: *price,
                    })
                    .collect(),
                fee_bps: row.fee_bps,
                activation_limit: row.activation_limit,
                license_days: row.license_days,
                state: row.state,
                files: files
                    .iter()
                    .filter(|f| f.item_id == row.id)
                    .map(|f| FileInfo {
                        id: f.id,
                        name: f.name.clone(),
                        content_type: f.content_type.clone(),
                        size: f.size,
                        sha256: hex::encode(&f.sha256),
                    })
                    .collect(),
                published_at: row.published_at,
                created_at: row.created_at,
            },
        })
        .collect())
}

/// A seller's own items, newest first (every state).
pub async fn of_seller(db: &PgPool, seller: Uuid, default_fee: i32) -> Result<Vec<Item>, sqlx::Error> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM market_items WHERE seller_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1000",
        seller
    )
    .fetch_all(db)
    .await?;
    Ok(select(db, &ids, default_fee)
        .await?
        .into_iter()
        .map(|r| r.item)
        .collect())
}

/// A search of the public listing.
#[derive(Debug, Clone)]
pub struct Search {
    /// Words, as a web search takes them (`"exact phrase"`, `-excluded`, `or`).
    pub text: Option<Text<1, 200>>,
    pub category: Option<Category>,
    pub tag: Option<Tag>,
    /// Only items sold for this token.
    pub token: Option<Address>,
    pub limit: Bounded<1, 100>,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
}

/// A place in the listing, newest first: an item's publication time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub published_at: OffsetDateTime,
    pub id: Uuid,
}

impl Cursor {
    /// Written as `<unix microseconds>_<id>`; clients pass it back unread.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let refused = ValueError::Refused("must be the nextCursor of an earlier page");
        let (micros, id) = value.split_once('_').ok_or(refused.clone())?;
        let micros: i128 = micros.parse().map_err(|_| refused.clone())?;
        let published_at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).map_err(|_| refused.clone())?;
        let id = id.parse().map_err(|_| refused)?;
        Ok(Self { published_at, id })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.published_at.unix_timestamp_nanos() / 1000, self.id)
    }
}

/// A page of the listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub items: Vec<Item>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Published items matching `search`, newest first. One index scan: the words through the
/// GIN index on the search vector, or the listing's own order when there are none.
pub async fn search(db: &PgPool, search: &Search, default_fee: i32) -> Result<Listing, sqlx::Error> {
    let limit = search.limit.get();
    let ids = sqlx::query!(
        r#"SELECT i.id, i.published_at AS "published_at!" FROM market_items i
           WHERE i.state = 'published'
             AND ($1::text IS NULL OR i.search @@ websearch_to_tsquery('simple', $1))
             AND ($2::market_category IS NULL OR i.category = $2)
             AND ($3::text IS NULL OR i.tags @> ARRAY[$3])
             AND ($4::bytea IS NULL OR EXISTS (SELECT 1 FROM market_prices p WHERE p.item_id = i.id AND p.token = $4))
             AND ($5::timestamptz IS NULL OR (i.published_at, i.id) < ($5, $6))
           ORDER BY i.published_at DESC, i.id DESC
           LIMIT $7"#,
        search.text.as_ref().map(Text::as_str),
        search.category as Option<Category>,
        search.tag.as_ref().map(Tag::as_str),
        search.token.map(|t| t.to_vec()),
        search.after.map(|c| c.published_at),
        search.after.map(|c| c.id),
        limit + 1
    )
    .fetch_all(db)
    .await?;
    let more = ids.len() as i64 > limit;
    let page = &ids[..ids.len().min(limit as usize)];
    let next_cursor = more.then(|| page.last()).flatten().map(|last| {
        Cursor {
            published_at: last.published_at,
            id: last.id,
        }
        .to_string()
    });
    let ids: Vec<Uuid> = page.iter().map(|r| r.id).collect();
    let items = select(db, &ids, default_fee)
        .await?
        .into_iter()
        .map(|r| r.item)
        .collect();
    Ok(Listing { items, next_cursor })
}

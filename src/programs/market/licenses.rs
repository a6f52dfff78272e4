//! Licenses and downloads of paid orders. A license's key is signed at each reading (Ed25519
//! signatures are deterministic, so it is the same key every time) and checked online
//! here: validated, activated on a device and deactivated, never past its activation limit
//! (one conditional update), its expiry or its revocation. Downloads go through short-lived
//! signed links, within the order's download entitlement, while its license stands.

use std::time::Duration;

use adescrow_chain::sql::SqlAddress;
use serde::Serialize;
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::MarketError;
use super::files::FileStore;
use super::items::FileInfo;
use super::keys::{LicenseClaims, MarketKeys};
use crate::platform::values::Text;

/// A device a license is activated on, as the seller's software names it.
pub type Device = Text<1, 200>;

/// A license as its buyer and the seller's software see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct License {
    pub id: Uuid,
    pub order_id: Uuid,
    pub item_id: Uuid,
    /// The signed key (`ADL1.<payload>.<signature>`), verifiable offline.
    pub key: String,
    pub activation_limit: i32,
    pub activations: i32,
    pub devices: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Whether the license may be used now: neither expired nor revoked.
    pub valid: bool,
}

struct Row {
    id: Uuid,
    order_id: Uuid,
    item_id: Uuid,
    buyer: SqlAddress,
    activation_limit: i32,
    activations: i32,
    devices: Vec<String>,
    issued_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl Row {
    fn into_license(self, keys: &MarketKeys, now: OffsetDateTime) -> License {
        let claims = LicenseClaims {
            license: self.id,
            item: self.item_id,
            order: self.order_id,
            buyer: self.buyer.0,
            activation_limit: u32::try_from(self.activation_limit).unwrap_or(0),
            expires: self.expires_at.map(OffsetDateTime::unix_timestamp),
            issued: self.issued_at.unix_timestamp(),
        };
        License {
            id: self.id,
            order_id: self.order_id,
            item_id: self.item_id,
            key: keys.license_key(&claims),
            activation_limit: self.activation_limit,
            activations: self.activations,
            devices: self.devices,
            issued_at: self.issued_at,
            valid: self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at),
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

async fn rows(db: &PgPool, license: Option<Uuid>, buyer: Option<Uuid>) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT l.id, l.order_id, o.item_id, u.address AS "buyer: SqlAddress", l.activation_limit, l.activations,
                  coalesce((SELECT array_agg(a.device ORDER BY a.activated_at) FROM market_activations a
                            WHERE a.license_id = l.id), '{}') AS "devices!",
                  l.issued_at, l.expires_at, l.revoked_at
           FROM market_licenses l
           JOIN market_orders o ON o.id = l.order_id
           JOIN users u ON u.id = o.buyer_id
           WHERE ($1::uuid IS NULL OR l.id = $1) AND ($2::uuid IS NULL OR o.buyer_id = $2)
           ORDER BY l.issued_at DESC
           LIMIT 500"#,
        license,
        buyer
    )
    .fetch_all(db)
    .await
}

/// A buyer's licenses, newest first.
pub async fn of_buyer(
    db: &PgPool,
    keys: &MarketKeys,
    buyer: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<License>, sqlx::Error> {
    Ok(rows(db, None, Some(buyer))
        .await?
        .into_iter()
        .map(|row| row.into_license(keys, now))
        .collect())
}

/// The license a key stands for, if the key is this service's.
pub async fn validate(db: &PgPool, keys: &MarketKeys, key: &str, now: OffsetDateTime) -> Result<License, MarketError> {
    let claims = keys.read_license(key)?;
    rows(db, Some(claims.license), None)
        .await?
        .into_iter()
        .next()
        .map(|row| row.into_license(keys, now))
        .ok_or(MarketError::UnknownLicense)
}

/// Activates a license on `device` (again on the same device is a no-op). The count rises
/// by one conditional update, so concurrent activations never pass the limit.
pub async fn activate(
    db: &PgPool,
    keys: &MarketKeys,
    key: &str,
    device: &Device,
    now: OffsetDateTime,
) -> Result<License, MarketError> {
    let license = usable(db, keys, key, now).await?;
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    let added = sqlx::query!(
        "INSERT INTO market_activations (license_id, device, activated_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        license.id,
        device.as_str(),
        now
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 1 {
        let counted = sqlx::query!(
            "UPDATE market_licenses SET activations = activations + 1
             WHERE id = $1 AND activations < activation_limit AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)",
            license.id,
            now
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if counted == 0 {
            // Dropping the transaction takes the activation back.
            return Err(MarketError::ActivationLimit {
                limit: license.activation_limit,
            });
        }
    }
    tx.commit().await?;
    validate(db, keys, key, now).await
}

/// Frees `device`'s activation of a license.
pub async fn deactivate(
    db: &PgPool,
    keys: &MarketKeys,
    key: &str,
    device: &Device,
    now: OffsetDateTime,
) -> Result<License, MarketError> {
    let license = validate(db, keys, key, now).await?;
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    let removed = sqlx::query!(
        "DELETE FROM market_activations WHERE license_id = $1 AND device = $2",
        license.id,
        device.as_str()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        return Err(MarketError::NotActivated);
    }
    sqlx::query!(
        "UPDATE market_licenses SET activations = activations - 1 WHERE id = $1",
        license.id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    validate(db, keys, key, now).await
}

async fn usable(db: &PgPool, keys: &MarketKeys, key: &str, now: OffsetDateTime) -> Result<License, MarketError> {
    let license = validate(db, keys, key, now).await?;
    if license.revoked_at.is_some() {
        return Err(MarketError::LicenseRevoked);
    }
    if license.expires_at.is_some_and(|at| now >= at) {
        return Err(MarketError::LicenseExpired);
    }
    Ok(license)
}

/// How downloads are handed out.
#[derive(Debug, Clone, Copy)]
pub struct DownloadTerms {
    /// How long after payment an order's files may be downloaded.
    pub entitlement: Duration,
    /// How long one link works.
    pub link_ttl: Duration,
}

/// A download link.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadLink {
    pub file: FileInfo,
    /// The token to GET `/v1/market/downloads/{token}` with.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The file of a paid order, while it may be downloaded.
struct Entitled {
    file: FileInfo,
    object_key: String,
    until: OffsetDateTime,
}

async fn entitled(
    db: &PgPool,
    order: Uuid,
    file: Uuid,
    buyer: Option<Uuid>,
    terms: DownloadTerms,
    now: OffsetDateTime,
) -> Result<Entitled, MarketError> {
    let row = sqlx::query!(
        r#"SELECT o.paid_at, l.revoked_at, f.id, f.name, f.content_type, f.size, f.sha256, f.object_key
           FROM market_orders o
           JOIN market_licenses l ON l.order_id = o.id
           JOIN market_files f ON f.item_id = o.item_id AND f.id = $2
           WHERE o.id = $1 AND ($3::uuid IS NULL OR o.buyer_id = $3)"#,
        order,
        file,
        buyer
    )
    .fetch_optional(db)
    .await?
    .ok_or(MarketError::UnknownFile)?;
    if row.revoked_at.is_some() {
        return Err(MarketError::LicenseRevoked);
    }
    let until = row.paid_at.unwrap_or(now) + terms.entitlement;
    if now >= until {
        return Err(MarketError::EntitlementOver { until });
    }
    Ok(Entitled {
        file: FileInfo {
            id: row.id,
            name: row.name,
            content_type: row.content_type,
            size: row.size,
            sha256: hex::encode(&row.sha256),
        },
        object_key: row.object_key,
        until,
    })
}

/// A link to a file of a buyer's paid order (`buyer` `None`: an admin's look).
pub async fn link(
    db: &PgPool,
    keys: &MarketKeys,
    order: Uuid,
    file: Uuid,
    buyer: Option<Uuid>,
    terms: DownloadTerms,
    now: OffsetDateTime,
) -> Result<DownloadLink, MarketError> {
    let entitled = entitled(db, order, file, buyer, terms, now).await?;
    let expires_at = (now + terms.link_ttl).min(entitled.until);
    Ok(DownloadLink {
        token: keys.download_token(order, file, expires_at.unix_timestamp()),
        file: entitled.file,
        expires_at,
    })
}

/// The file a download token is for, counted; checked again against the order, so that a
/// refund revokes links already handed out.
pub async fn download(
    db: &PgPool,
    store: &FileStore,
    keys: &MarketKeys,
    token: &str,
    terms: DownloadTerms,
    now: OffsetDateTime,
) -> Result<(FileInfo, axum::body::Bytes), MarketError> {
    let (order, file) = keys.read_download(token, now.unix_timestamp())?;
    let entitled = entitled(db, order, file, None, terms, now).await?;
    let content = store
        .get(&entitled.object_key)
        .await
        .map_err(|error| MarketError::Store(error.to_string()))?;
    sqlx::query!(
        "INSERT INTO market_downloads (order_id, file_id, downloaded_at) VALUES ($1, $2, $3)",
        order,
        file,
        now
    )
    .execute(db)
    .await?;
    Ok((entitled.file, content))
}

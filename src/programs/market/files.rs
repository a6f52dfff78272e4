//! Items' files, kept in an object store: the local filesystem by default, or any store
//! `object_store` reaches by URL (`s3://bucket/prefix` for S3 and S3-compatible stores,
//! configured by the usual `AWS_*` variables). Each file is stored under a random key that
//! only the database knows, so no path can be guessed; files are served only through signed
//! download links.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

use super::MarketError;
use super::items::FileInfo;
use crate::accounts::OwnerScope;
use crate::platform::values::{Text, ValueError};

/// The content types an item's file may have.
pub const CONTENT_TYPES: &[&str] = &[
    "application/zip",
    "application/pdf",
    "application/json",
    "application/octet-stream",
    "text/csv",
    "text/plain",
    "image/png",
    "image/jpeg",
];

/// The object store files live in.
#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileStore({}/{})", self.store, self.prefix)
    }
}

impl FileStore {
    /// A store by URL, or a directory (created when missing) by plain path.
    pub fn open(location: &str) -> anyhow::Result<Self> {
        match Url::parse(location) {
            Ok(url) if url.scheme() != "file" => {
                let (store, prefix) = object_store::parse_url_opts(&url, std::env::vars())?;
                Ok(Self {
                    store: Arc::from(store),
                    prefix,
                })
            }
            _ => {
                let dir = location.strip_prefix("file://").unwrap_or(location);
                std::fs::create_dir_all(dir)?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: ObjectPath::default(),
                })
            }
        }
    }

    fn path(&self, key: &str) -> ObjectPath {
        self.prefix.clone().join(key)
    }

    pub async fn get(&self, key: &str) -> Result<axum::body::Bytes, object_store::Error> {
        self.store.get(&self.path(key)).await?.bytes().await
    }
}

/// A file being added to an item.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: Text<1, 200>,
    pub content_type: ContentType,
    pub content: axum::body::Bytes,
}

/// One of [`CONTENT_TYPES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(&'static str);

impl ContentType {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        CONTENT_TYPES
            .iter()
            .find(|t| **t == essence)
            .map(|t| Self(t))
            .ok_or(ValueError::Refused(
                "must be one of application/zip, application/pdf, application/json, \
                 application/octet-stream, text/csv, text/plain, image/png, image/jpeg",
            ))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// Stores a file and adds it to an item of its seller's (or, with `scope` `None`, any).
/// The content must be non-empty, at most `max_size` bytes, and look like its declared
/// type: a type with a known signature (zip, pdf, png, jpeg) must carry it, and text must be
/// UTF-8.
pub async fn add(
    db: &PgPool,
    store: &FileStore,
    item: Uuid,
    scope: OwnerScope,
    file: NewFile,
    max_size: usize,
) -> Result<FileInfo, MarketError> {
    let size = file.content.len();
    if size == 0 {
        return Err(MarketError::EmptyFile);
    }
    if size > max_size {
        return Err(MarketError::FileTooLarge { max: max_size });
    }
    check_content(&file.content_type, &file.content)?;
    let owned = sqlx::query_scalar!(
        r#"SELECT state AS "state: super::items::ItemState" FROM market_items
           WHERE id = $1 AND ($2::uuid IS NULL OR seller_id = $2)"#,
        item,
        scope
    )
    .fetch_optional(db)
    .await?
    .ok_or(MarketError::UnknownItem)?;
    if owned == super::items::ItemState::Retired {
        return Err(MarketError::ItemRetired);
    }
    let sha256 = Sha256::digest(&file.content);
    // 128 random bits: the only way to the content is through the database.
    let key = Uuid::new_v4().simple().to_string();
    store
        .store
        .put(&store.path(&key), PutPayload::from_bytes(file.content))
        .await
        .map_err(|error| MarketError::Store(error.to_string()))?;
    let id = sqlx::query_scalar!(
        "INSERT INTO market_files (item_id, name, content_type, size, sha256, object_key)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        item,
        file.name.as_str(),
        file.content_type.as_str(),
        size as i64,
        &sha256[..],
        key
    )
    .fetch_one(db)
    .await?;
    Ok(FileInfo {
        id,
        name: file.name.into_string(),
        content_type: file.content_type.as_str().to_owned(),
        size: size as i64,
        sha256: hex::encode(sha256),
    })
}

fn check_content(declared: &ContentType, content: &[u8]) -> Result<(), MarketError> {
    let mismatch = || MarketError::ContentMismatch {
        declared: declared.as_str(),
    };
    match declared.as_str() {
        "text/csv" | "text/plain" | "application/json" => {
            std::str::from_utf8(content).map_err(|_| mismatch())?;
        }
        "application/octet-stream" => {}
        signed => {
            let detected = infer::get(content).map(|t| t.mime_type());
            if detected != Some(signed) {
                return Err(mismatch());
            }
        }
    }
    Ok(())
}

//! The marketplace: sellers list digital items, buyers pay for them from their wallets into
//! an order's escrow, a paid order carries a signed license and downloads, and sellers
//! claim their proceeds through the one claim (see [`orders`] for the money's path).

pub mod files;
pub mod items;
pub mod keys;
pub mod licenses;
pub mod orders;

use alloy::primitives::Address;
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use self::files::FileStore;
use self::items::ItemState;
use self::keys::{KeyError, MarketKeys};
use self::licenses::DownloadTerms;
use self::orders::{OrderState, Terms};
use crate::money::Amount;
use crate::money::holds::HoldError;
use crate::money::ledger::LedgerError;
use crate::platform::config::MarketArgs;

/// Everything the marketplace runs with, built once from configuration.
#[derive(Debug, Clone)]
pub struct Market {
    pub keys: MarketKeys,
    pub store: FileStore,
    pub terms: Terms,
    pub downloads: DownloadTerms,
    pub max_file_size: usize,
}

impl Market {
    /// The marketplace `args` describe, checked; the platform's fee goes to `platform`.
    pub fn new(args: &MarketArgs, platform: Address) -> Result<Self, String> {
        let keys = MarketKeys::from_secret(&args.secret).map_err(|e| e.to_string())?;
        let store = FileStore::open(&args.store).map_err(|e| format!("the file store: {e:#}"))?;
        let fee = items::FeeBps::parse(args.fee_bps).map_err(|e| format!("the fee {e}"))?;
        Ok(Self {
            keys,
            store,
            terms: Terms {
                default_fee_bps: fee.get() as i32,
                refund_window: args.refund_window,
                pay_within: args.pay_within,
                platform,
            },
            downloads: DownloadTerms {
                entitlement: args.download_entitlement,
                link_ttl: args.link_ttl,
            },
            max_file_size: args.max_file_size,
        })
    }
}

/// Why a marketplace request was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("no such item")]
    UnknownItem,
    #[error("no such seller (the address has never signed in)")]
    UnknownSeller,
    #[error("the item is retired and can no longer change")]
    ItemRetired,
    #[error("an item cannot go from {from:?} to {to:?}")]
    StateChange { from: ItemState, to: ItemState },
    #[error("an item needs a price and a file before it is for sale")]
    NotReadyForSale,
    #[error("the item is {0:?}, not for sale")]
    NotForSale(ItemState),
    #[error("sellers cannot buy their own items")]
    OwnItem,
    #[error("the item is not sold for {0}")]
    NotPricedIn(Address),
    #[error("the file is empty")]
    EmptyFile,
    #[error("the file is larger than the {max} bytes an item's file may have")]
    FileTooLarge { max: usize },
    #[error("the content is not {declared}")]
    ContentMismatch { declared: &'static str },
    #[error("the file store failed: {0}")]
    Store(String),
    #[error("no such order")]
    UnknownOrder,
    #[error("only the item's seller or an admin may refund its orders")]
    NotTheSeller,
    #[error("the order is {0:?}; only a paid order can be refunded")]
    OrderState(OrderState),
    #[error("no such license")]
    UnknownLicense,
    #[error("the license is revoked")]
    LicenseRevoked,
    #[error("the license has expired")]
    LicenseExpired,
    #[error("the license is active on its limit of {limit} devices; deactivate one first")]
    ActivationLimit { limit: i32 },
    #[error("the license is not active on that device")]
    NotActivated,
    #[error("no such file in this order")]
    UnknownFile,
    #[error("the order's downloads ended at {until}")]
    EntitlementOver { until: OffsetDateTime },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One period's sales of a seller in one token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodSales {
    /// The calendar month (UTC), as `YYYY-MM`.
    pub period: String,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Orders paid in the period (refunded ones included).
    pub orders: i64,
    pub gross: Amount,
    /// The seller's share of what stayed sold.
    pub proceeds: Amount,
    pub refunds: i64,
    pub refunded: Amount,
}

/// A seller's sales by month and token, newest first.
pub async fn sales(db: &PgPool, seller: Uuid) -> Result<Vec<PeriodSales>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT to_char(date_trunc('month', o.paid_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS "period!",
                  a.token AS "token: adescrow_chain::sql::SqlAddress",
                  count(*) AS "orders!", coalesce(sum(a.price), 0) AS "gross!: Amount",
                  coalesce(sum(o.proceeds) FILTER (WHERE o.state = 'paid'), 0) AS "proceeds!: Amount",
                  count(*) FILTER (WHERE o.state = 'refunded') AS "refunds!",
                  coalesce(sum(a.price) FILTER (WHERE o.state = 'refunded'), 0) AS "refunded!: Amount"
           FROM market_orders o JOIN escrow_accounts a ON a.id = o.id
           WHERE o.seller_id = $1 AND o.paid_at IS NOT NULL
           GROUP BY 1, 2 ORDER BY 1 DESC, 2"#,
        seller
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PeriodSales {
            period: r.period,
            token: r.token.0,
            orders: r.orders,
            gross: r.gross,
            proceeds: r.proceeds,
            refunds: r.refunds,
            refunded: r.refunded,
        })
        .collect())
}

/// Pays the orders whose funding the indexer has just mirrored; the indexer's hook.
pub async fn after_index_step(db: &PgPool, chain_id: u64) -> Result<usize, sqlx::Error> {
    orders::fulfil(db, chain_id, OffsetDateTime::now_utc()).await
}

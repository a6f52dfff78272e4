//! Orders: a purchase paid from the buyer's wallet into an escrow account of kind order.
//!
//! 1. The API makes the order (the item's price in one token, its fee and license terms
//!    fixed then) and an escrow account ending when the refund window does, and says what
//!    the wallet sends: a permit signature and `openCampaignWithPermit`, or `approve` then
//!    `openCampaign`.
//! 2. The indexer's step that mirrors the funding calls [`fulfil`]: the sale is posted (the
//!    order's price spent; the seller's share and the platform's fee earned, by largest
//!    remainder), held until the refund window ends, and the license issued. A funding by
//!    another wallet, in another token, with less than the price or another end, or after
//!    the order's pay-by time is refused; the buyer withdraws it after end + grace.
//! 3. Once the window has passed the relayer releases the hold and the next epoch debits
//!    the order; the seller claims its share like any other earning.
//! 4. A refund inside the window reverses the held sale: the order is never debited and
//!    the buyer withdraws the escrow after end + grace on its own. After the window it is a
//!    clawback: the seller's share and the platform's fee are moved to the buyer, to claim;
//!    if the seller has already been paid, the buyer's credit waits (a recovery hold) for
//!    the seller's later earnings, so no leaf ever goes down.

use std::collections::BTreeMap;
use std::time::Duration;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::{Address, B256, Bytes};
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::MarketError;
use super::items::ItemState;
use crate::billing::split::{WHOLE, largest_remainder};
use crate::leaderboards::Category;
use crate::leaderboards::tally::{Tally, record_declared as record_scores};
use crate::money::Amount;
use crate::money::escrow::{self, EscrowError, NewOrder};
use crate::money::holds::{self, Ending, HoldError, HoldReason};
use crate::money::ledger::{self, LedgerError, NewHold, Party, Posting, Source};
use crate::platform::values::Text;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "market_order_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    AwaitingPayment,
    Paid,
    Refused,
    Refunded,
}

/// The marketplace's terms, from configuration.
#[derive(Debug, Clone)]
pub struct Terms {
    pub default_fee_bps: i32,
    pub refund_window: Duration,
    /// How long after the order its funding may arrive.
    pub pay_within: Duration,
    /// Where the platform's fee goes.
    pub platform: Address,
}

/// A purchase being made.
#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub buyer_id: Uuid,
    pub buyer: Address,
    pub item: Uuid,
    pub token: Address,
}

/// An order as its buyer, its seller and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: Uuid,
    pub item_id: Uuid,
    pub item_title: String,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub buyer: Address,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub seller: Address,
    /// The escrow's id on chain.
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub chain_escrow_id: B256,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub price: Amount,
    pub fee_bps: i32,
    pub state: OrderState,
    /// Why a funding was refused.
    pub refused_reason: Option<String>,
    /// Funding must be mirrored by then.
    #[serde(with = "time::serde::rfc3339")]
    pub pay_by: OffsetDateTime,
    /// The end of the refund window, and of the escrow on chain.
    #[serde(with = "time::serde::rfc3339")]
    pub refund_window_ends_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub refunded_at: Option<OffsetDateTime>,
    pub refund_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Makes an order for an item that is for sale, in a token it is priced in.
pub async fn create(
    conn: &mut PgConnection,
    purchase: &NewPurchase,
    terms: &Terms,
    now: OffsetDateTime,
) -> Result<escrow::Order, MarketError> {
    let mut tx = conn.begin().await?;
    let item = sqlx::query!(
        r#"SELECT i.seller_id, u.address AS "seller: SqlAddress", i.state AS "state: ItemState",
                  coalesce(i.fee_bps, s.fee_bps, $3) AS "fee_bps!", i.activation_limit, i.license_days,
                  p.price AS "price?: Amount"
           FROM market_items i
           JOIN users u ON u.id = i.seller_id
           LEFT JOIN market_sellers s ON s.user_id = i.seller_id
           LEFT JOIN market_prices p ON p.item_id = i.id AND p.token = $2
           WHERE i.id = $1"#,
        purchase.item,
        purchase.token.as_slice(),
        terms.default_fee_bps
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(MarketError::UnknownItem)?;
    if !item.state.is_for_sale() {
        return Err(MarketError::NotForSale(item.state));
    }
    if item.seller_id == purchase.buyer_id {
        return Err(MarketError::OwnItem);
    }
    let price = item.price.ok_or(MarketError::NotPricedIn(purchase.token))?;
    let order = escrow::open_order(
        &mut tx,
        &NewOrder {
            buyer: purchase.buyer,
            token: purchase.token,
            price,
            refund_window: terms.refund_window,
        },
        now,
    )
    .await?;
    sqlx::query!(
        "INSERT INTO market_orders (id, item_id, buyer_id, seller_id, seller_address, platform, fee_bps,
                                    activation_limit, license_days, pay_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        order.id,
        purchase.item,
        purchase.buyer_id,
        item.seller_id,
        item.seller.0.as_slice(),
        terms.platform.as_slice(),
        item.fee_bps,
        item.activation_limit,
        item.license_days,
        now + terms.pay_within
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(order)
}

/// Who may see an order: its buyer, its seller, or (`None`) an admin.
#[derive(Debug, Clone, Copy)]
pub enum OrderScope {
    Buyer(Uuid),
    Seller(Uuid),
    Admin,
}

/// Orders `who` may see (one when `id` is given), newest first.
pub async fn select(db: &PgPool, who: OrderScope, id: Option<Uuid>) -> Result<Vec<OrderView>, sqlx::Error> {
    let (buyer, seller) = match who {
        OrderScope::Buyer(user) => (Some(user), None),
        OrderScope::Seller(user) => (None, Some(user)),
        OrderScope::Admin => (None, None),
    };
    let rows = sqlx::query!(
        r#"SELECT o.id, o.item_id, i.title, b.address AS "buyer: SqlAddress", o.seller_address AS "seller: SqlAddress",
                  a.chain_escrow_id, a.token AS "token: SqlAddress", a.price AS "price!: Amount", o.fee_bps,
                  o.state AS "state: OrderState", o.refused_reason, o.pay_by, a.ends_at AS "ends_at!",
                  o.paid_at, o.refunded_at, o.refund_reason, o.created_at
           FROM market_orders o
           JOIN escrow_accounts a ON a.id = o.id
           JOIN market_items i ON i.id = o.item_id
           JOIN users b ON b.id = o.buyer_id
           WHERE ($1::uuid IS NULL OR o.buyer_id = $1) AND ($2::uuid IS NULL OR o.seller_id = $2)
             AND ($3::uuid IS NULL OR o.id = $3)
           ORDER BY o.created_at DESC, o.id DESC
           LIMIT 500"#,
        buyer,
        seller,
        id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OrderView {
            id: r.id,
            item_id: r.item_id,
            item_title: r.title,
            buyer: r.buyer.0,
            seller: r.seller.0,
            chain_escrow_id: B256::from_slice(&r.chain_escrow_id),
            token: r.token.0,
            price: r.price,
            fee_bps: r.fee_bps,
            state: r.state,
            refused_reason: r.refused_reason,
            pay_by: r.pay_by,
            refund_window_ends_at: r.ends_at,
            paid_at: r.paid_at,
            refunded_at: r.refunded_at,
            refund_reason: r.refund_reason,
            created_at: r.created_at,
        })
        .collect())
}

/// The most orders one call of [`fulfil`] takes on.
const FULFIL_BATCH: i64 = 200;

/// Pays or refuses every order awaiting payment whose escrow the mirror now shows opened:
/// called by the indexer after each step, so a purchase is usable within one step of its
/// funding block. Each order is its own transaction; an order that cannot be judged now
/// (its funding refused by the ledger for a reason that can pass) is left for the next
/// step. Returns how many orders were paid.
pub async fn fulfil(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<usize, sqlx::Error> {
    let funded = sqlx::query_scalar!(
        "SELECT o.id FROM market_orders o
         JOIN escrow_accounts a ON a.id = o.id
         WHERE o.state = 'awaiting_payment'
           AND EXISTS (SELECT 1 FROM mirror_campaign_events e
                       WHERE e.chain_id = $1 AND e.campaign_id = a.chain_escrow_id)
         ORDER BY o.created_at
         LIMIT $2",
        chain_id as i64,
        FULFIL_BATCH
    )
    .fetch_all(db)
    .await?;
    let mut paid = 0;
    for id in funded {
        let mut conn = db.acquire().await?;
        let mut tx = conn.begin().await?;
        match fulfil_one(&mut tx, chain_id, id, now).await {
            Ok(outcome) => {
                tx.commit().await?;
                match outcome {
                    Fulfilled::Paid => {
                        paid += 1;
                        tracing::info!(order = %id, "order paid; license issued");
                    }
                    Fulfilled::Refused(why) => tracing::info!(order = %id, why, "order funding refused"),
                    Fulfilled::Skipped => {}
                }
            }
            Err(FulfilError::Database(error)) => return Err(error),
            Err(FulfilError::Wait(why)) => tracing::warn!(order = %id, %why, "order not judged yet"),
        }
    }
    Ok(paid)
}

enum Fulfilled {
    Paid,
    Refused(String),
    Skipped,
}

#[derive(Debug, thiserror::Error)]
enum FulfilError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Wait(String),
}

async fn fulfil_one(
    conn: &mut PgConnection,
    chain_id: u64,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Fulfilled, FulfilError> {
    let Some(order) = sqlx::query!(
        r#"SELECT o.pay_by, o.fee_bps, o.seller_address AS "seller: SqlAddress", o.platform AS "platform: SqlAddress",
                  o.activation_limit, o.license_days, a.token AS "token: SqlAddress", a.price AS "price!: Amount",
                  a.ends_at AS "ends_at!"
           FROM market_orders o JOIN escrow_accounts a ON a.id = o.id
           WHERE o.id = $1 AND o.state = 'awaiting_payment'
           FOR UPDATE OF o SKIP LOCKED"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Fulfilled::Skipped);
    };
    if now > order.pay_by {
        return refuse(conn, id, "it was funded after the order's pay-by time".to_owned()).await;
    }
    let [seller_share, fee] = sale_shares(order.price, order.fee_bps);
    let mut posting = Posting::default();
    posting.spend(id, order.price);
    posting.earn(Party::Seller, order.seller.0, seller_share);
    posting.earn(Party::Platform, order.platform.0, fee);
    let posting = posting.hold(NewHold {
        reason: HoldReason::RefundWindow,
        until: Some(order.ends_at),
        debtor: None,
        settled_after: None,
        note: format!("the refund window of order {id}"),
    });
    let postings = BTreeMap::from([(order.token.0, posting)]);
    match ledger::post(conn, chain_id, Source::OrderSale, &id.to_string(), &postings).await {
        Ok(_) => {
            let mut scores = Tally::default();
            scores.add(Category::SellerSales, order.token.0, order.seller.0, seller_share.0);
            record_scores(conn, now, &scores).await?;
        }
        Err(LedgerError::Escrow(EscrowError::NotFunded { why, .. })) => return refuse(conn, id, why.to_owned()).await,
        Err(LedgerError::Escrow(EscrowError::WrongToken { .. })) => {
            return refuse(conn, id, "it was opened in another token".to_owned()).await;
        }
        Err(LedgerError::Database(error) | LedgerError::Escrow(EscrowError::Database(error))) => {
            return Err(error.into());
        }
        Err(other) => return Err(FulfilError::Wait(other.to_string())),
    }
    sqlx::query!(
        "UPDATE market_orders SET state = 'paid', paid_at = $2, proceeds = $3 WHERE id = $1",
        id,
        now,
        seller_share as Amount
    )
    .execute(&mut *conn)
    .await?;
    let expires_at = order
        .license_days
        .map(|days| now + time::Duration::days(i64::from(days)));
    sqlx::query!(
        "INSERT INTO market_licenses (order_id, activation_limit, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        id,
        order.activation_limit,
        now,
        expires_at
    )
    .execute(&mut *conn)
    .await?;
    Ok(Fulfilled::Paid)
}

/// The seller's share and the platform's fee of `price`, by largest remainder.
pub fn sale_shares(price: Amount, fee_bps: i32) -> [Amount; 2] {
    let fee_bps = u32::try_from(fee_bps).unwrap_or(0).min(WHOLE);
    largest_remainder(price, [WHOLE - fee_bps, fee_bps])
}

async fn refuse(conn: &mut PgConnection, id: Uuid, why: String) -> Result<Fulfilled, FulfilError> {
    sqlx::query!(
        "UPDATE market_orders SET state = 'refused', refused_reason = $2 WHERE id = $1",
        id,
        why
    )
    .execute(conn)
    .await?;
    Ok(Fulfilled::Refused(why))
}

/// Who asks for a refund: the item's seller or an admin.
#[derive(Debug, Clone, Copy)]
pub struct Refunder {
    pub user_id: Uuid,
    pub admin: bool,
}

/// How a refund went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundOutcome {
    /// Inside the refund window: the held sale was reversed, the order is never debited,
    /// and the buyer withdraws its escrow after end + grace.
    Reversed,
    /// After the window: the seller's share and the platform's fee moved to the buyer, who
    /// claims them (after the seller has repaid, if the seller was already paid).
    ClawedBack,
}

pub type Reason = Text<1, 500>;

/// Refunds a paid order: its license and downloads are revoked with it.
pub async fn refund(
    db: &PgPool,
    chain_id: u64,
    id: Uuid,
    by: Refunder,
    reason: &Reason,
    now: OffsetDateTime,
) -> Result<RefundOutcome, MarketError> {
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    let order = sqlx::query!(
        r#"SELECT o.state AS "state: OrderState", o.seller_id, o.proceeds AS "proceeds: Amount",
                  o.seller_address AS "seller: SqlAddress",
                  o.platform AS "platform: SqlAddress", b.address AS "buyer: SqlAddress",
                  a.token AS "token: SqlAddress", a.price AS "price!: Amount",
                  (SELECT h.id FROM ledger_postings p JOIN ledger_holds h ON h.posting_id = p.id
                   WHERE p.source = 'order_sale' AND p.source_id = o.id::text) AS "hold?"
           FROM market_orders o
           JOIN escrow_accounts a ON a.id = o.id
           JOIN users b ON b.id = o.buyer_id
           WHERE o.id = $1
           FOR UPDATE OF o"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(MarketError::UnknownOrder)?;
    if !by.admin && order.seller_id != by.user_id {
        return Err(MarketError::NotTheSeller);
    }
    if order.state != OrderState::Paid {
        return Err(MarketError::OrderState(order.state));
    }
    let hold = order.hold.ok_or(MarketError::UnknownOrder)?;
    let ending = Ending {
        by: Some(by.user_id),
        reason: format!("refund: {reason}"),
    };
    let outcome = match holds::reverse(&mut tx, hold, &ending).await {
        Ok(_) => RefundOutcome::Reversed,
        Err(HoldError::Ended { .. }) => {
            // The shares exactly as the sale posted them.
            let seller_share = order.proceeds.unwrap_or_default();
            let fee = order.price.saturating_sub(seller_share);
            let buyer = (Party::Buyer, order.buyer.0);
            // One posting per payer: a payer left owing holds the buyer's credit until it
            // has repaid, and the ledger takes one such payer per posting.
            for (payer, amount) in [
                ((Party::Seller, order.seller.0), seller_share),
                ((Party::Platform, order.platform.0), fee),
            ] {
                let mut posting = Posting::default();
                posting.transfer(payer, buyer, amount);
                let postings = BTreeMap::from([(order.token.0, posting)]);
                let source_id = format!("order:{id}:{:?}", payer.0).to_lowercase();
                ledger::post(&mut tx, chain_id, Source::Clawback, &source_id, &postings).await?;
            }
            RefundOutcome::ClawedBack
        }
        Err(error) => return Err(error.into()),
    };
    sqlx::query!(
        "UPDATE market_orders SET state = 'refunded', refunded_at = $2, refunded_by = $3, refund_reason = $4 WHERE id = $1",
        id,
        now,
        by.user_id,
        reason.as_str()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE market_licenses SET revoked_at = $2, revoke_reason = 'the order was refunded' WHERE order_id = $1",
        id,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// What a wallet sends to pay an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The escrow contract the order is paid into.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub escrow: Address,
    /// One signature and one transaction: sign `typedData` (eth_signTypedData_v4), then send
    /// `AdEscrow.openCampaignWithPermit(chainEscrowId, token, price, end, deadline, v, r, s)`.
    /// Absent when the token does not say how to sign its permits (EIP-5267).
    pub permit: Option<Permit>,
    /// The fallback, two transactions: `ERC20.approve(escrow, price)` to the token...
    #[schema(value_type = crate::platform::wire::schema::HexBytes)]
    pub approve_calldata: Bytes,
    /// ... then `AdEscrow.openCampaign(chainEscrowId, token, price, end)` to the escrow.
    #[schema(value_type = crate::platform::wire::schema::HexBytes)]
    pub open_calldata: Bytes,
    /// The escrow's end (unix seconds), as both calls take it.
    pub end: i64,
}

/// An EIP-2612 permit for the escrow to take the price.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permit {
    /// Unix seconds after which the permit is refused.
    pub deadline: i64,
    /// The EIP-712 typed data to sign, as `eth_signTypedData_v4` takes it.
    #[schema(value_type = Object)]
    pub typed_data: serde_json::Value,
}

/// How long a permit made for an order stays usable.
const PERMIT_LIFETIME: Duration = Duration::from_secs(3600);

/// What `buyer`'s wallet sends to pay `order` into `escrow`. The permit is signed over the
/// token's own EIP-712 domain and the buyer's current nonce, read from the chain; a token
/// that does not publish its domain (EIP-5267), or a chain that cannot be read now, leaves
/// only the approve-then-open fallback.
pub async fn payment(
    chain: &adescrow_chain::rpc::ChainRpc,
    escrow: Address,
    order: &escrow::Order,
    buyer: Address,
    now: OffsetDateTime,
) -> Payment {
    use crate::contracts::Erc20;
    use alloy::primitives::U256;
    use alloy::sol_types::SolCall;

    let end = order.ends_at.unix_timestamp();
    let approve_calldata: Bytes = Erc20::approveCall {
        spender: escrow,
        amount: U256::from(order.price.0),
    }
    .abi_encode()
    .into();
    let deadline = (now + PERMIT_LIFETIME).unix_timestamp();
    let domain = chain
        .view(order.token, Erc20::eip712DomainCall {}.abi_encode().into())
        .await
        .ok()
        .and_then(|out| Erc20::eip712DomainCall::abi_decode_returns(&out).ok());
    let nonce = chain
        .view(order.token, Erc20::noncesCall { owner: buyer }.abi_encode().into())
        .await
        .ok()
        .and_then(|out| Erc20::noncesCall::abi_decode_returns(&out).ok());
    let permit = domain.zip(nonce).map(|(domain, nonce)| Permit {
        deadline,
        typed_data: serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {
                "name": domain.name,
                "version": domain.version,
                "chainId": domain.chainId.to_string(),
                "verifyingContract": domain.verifyingContract.to_checksum(None),
            },
            "message": {
                "owner": buyer.to_checksum(None),
                "spender": escrow.to_checksum(None),
                "value": order.price.0.to_string(),
                "nonce": nonce.to_string(),
                "deadline": deadline.to_string(),
            },
        }),
    });
    Payment {
        escrow,
        permit,
        approve_calldata,
        open_calldata: order.open_calldata.clone(),
        end,
    }
}

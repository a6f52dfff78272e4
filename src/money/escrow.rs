//! Escrow accounts: what the ledger spends from. Each is an escrow on chain under a bytes32
//! id (the contract's generic "campaign": opened and funded from a wallet, debited by
//! settlement, withdrawn by its opener after end + grace), of one of three kinds:
//!
//! - an advertiser's **campaign** (its account is created with the campaign; billing bounds
//!   its spend by the funded budget before posting);
//! - a marketplace **order**, opened by its buyer for its price, ending when its refund
//!   window does;
//! - a **program budget**, opened and funded by the platform's treasury wallet
//!   ([`crate::money::treasury`]), that referral bonuses, promo credits and prizes are
//!   debits of.
//!
//! An order or a program budget counts only what the chain mirror shows it was funded with,
//! by the wallet it is for, in its token (and, for an order, with at least its price and
//! the end it was sold with); the ledger never posts a debit beyond that.

use std::time::Duration;

use adescrow_chain::sql::{SqlAddress, SqlB256, SqlU256};
use alloy::primitives::{Address, B256, Bytes, U256, aliases::U40};
use alloy::sol_types::SolCall;
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::contracts::AdEscrow;
use crate::money::Amount;

/// What an escrow account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "escrow_kind", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum EscrowKind {
    Campaign,
    Order,
    Program,
}

/// Why an escrow account cannot pay what is asked of it.
#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("escrow {escrow} pays in another token")]
    WrongToken { escrow: B256 },
    #[error("escrow {escrow} is not funded as agreed: {why}")]
    NotFunded { escrow: B256, why: &'static str },
    #[error("escrow {escrow} holds {available}, less than the {wanted} asked of it")]
    Short {
        escrow: B256,
        available: Amount,
        wanted: Amount,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What the chain mirror shows of an escrow.
#[derive(Debug, Clone)]
struct OnChain {
    opener: Address,
    token: Address,
    end: i64,
    funded: U256,
    withdrawn: U256,
}

/// An order's or a program budget's funds, locked for the caller's transaction.
#[derive(Debug, Clone)]
pub struct Funds {
    pub id: Uuid,
    pub chain_escrow_id: B256,
    pub token: Address,
    owner: Address,
    price: Option<Amount>,
    ends_at: OffsetDateTime,
    on_chain: Option<OnChain>,
    /// Past its end: settlement could not debit it in time for new spend.
    ended: bool,
    /// Spent in the ledger, held or released (entries waiting for an empty budget excepted).
    spent: Amount,
}

impl Funds {
    /// The wallet it is for: an order's buyer, a program budget's treasury.
    pub fn owner(&self) -> Address {
        self.owner
    }

    /// What is left to spend.
    pub fn available(&self) -> Result<Amount, EscrowError> {
        let escrow = self.chain_escrow_id;
        let refused = |why| EscrowError::NotFunded { escrow, why };
        if self.ended {
            return Err(refused("it has ended"));
        }
        let chain = self.on_chain.as_ref().ok_or(refused("it is not open on chain yet"))?;
        if chain.opener != self.owner {
            return Err(refused("it was opened by another wallet than the one it is for"));
        }
        if chain.token != self.token {
            return Err(refused("it was opened in another token"));
        }
        if let Some(price) = self.price {
            if chain.funded < U256::from(price.0) {
                return Err(refused("it was funded with less than its price"));
            }
            if chain.end != self.ends_at.unix_timestamp() {
                return Err(refused("it was opened with another end than the order's"));
            }
        }
        let left = chain
            .funded
            .saturating_sub(chain.withdrawn)
            .saturating_sub(U256::from(self.spent.0));
        Ok(Amount(u128::try_from(left).unwrap_or(u128::MAX)))
    }

    /// Fails unless `wanted` is available.
    pub fn cover(&self, wanted: Amount) -> Result<(), EscrowError> {
        let available = self.available()?;
        if wanted > available {
            return Err(EscrowError::Short {
                escrow: self.chain_escrow_id,
                available,
                wanted,
            });
        }
        Ok(())
    }
}

/// Locks the orders and program budgets among `ids` and reads their funds (campaigns are
/// skipped: billing bounds their spend).
pub async fn lock_funds(conn: &mut PgConnection, chain_id: u64, ids: &[Uuid]) -> Result<Vec<Funds>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"SELECT a.id, a.chain_escrow_id AS "chain_escrow_id: SqlB256",
                  a.token AS "token: SqlAddress", a.owner AS "owner!: SqlAddress", a.price AS "price: Amount",
                  a.ends_at AS "ends_at!", a.ends_at <= now() AS "ended!",
                  cv.advertiser AS "opener?: SqlAddress", cv.token AS "chain_token?: SqlAddress", cv.end_time AS "end_time?",
                  cv.funded AS "funded?: SqlU256", cv.withdrawn AS "withdrawn?: SqlU256",
                  (SELECT coalesce(-sum(e.amount), 0) FROM ledger_entries e LEFT JOIN ledger_holds h ON h.id = e.hold_id
                   WHERE e.escrow_id = a.id AND h.reason IS DISTINCT FROM 'budget_empty') AS "spent!: Amount"
           FROM escrow_accounts a
           LEFT JOIN LATERAL campaign_escrow($1, a.chain_escrow_id) cv ON true
           WHERE a.id = ANY($2) AND a.kind <> 'campaign'
           ORDER BY a.id
           FOR UPDATE OF a"#,
        chain_id as i64,
        ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let on_chain = match (row.opener, row.chain_token, row.end_time, row.funded, row.withdrawn) {
                (Some(opener), Some(token), Some(end), Some(funded), Some(withdrawn)) => Some(OnChain {
                    opener: opener.0,
                    token: token.0,
                    end,
                    funded: funded.0,
                    withdrawn: withdrawn.0,
                }),
                _ => None,
            };
            Funds {
                id: row.id,
                chain_escrow_id: row.chain_escrow_id.0,
                token: row.token.0,
                owner: row.owner.0,
                price: row.price,
                ends_at: row.ends_at,
                on_chain,
                ended: row.ended,
                spent: row.spent,
            }
        })
        .collect())
}

/// An order to open: the buyer pays `price` of `token` into its own escrow, which it can
/// withdraw after the refund window plus the escrow's grace period unless the sale was
/// released.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub buyer: Address,
    pub token: Address,
    pub price: Amount,
    pub refund_window: Duration,
}

/// An order's escrow account and the call its buyer sends to fund it (after approving the
/// escrow for `price`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub chain_escrow_id: B256,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub price: Amount,
    /// The end of the refund window, and of the escrow on chain.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// `AdEscrow.openCampaign(chainEscrowId, token, price, end)`, ABI-encoded.
    #[schema(value_type = crate::platform::wire::schema::HexBytes)]
    pub open_calldata: Bytes,
}

/// Creates an order's escrow account, ending `refund_window` after `now` (whole seconds, as
/// the chain keeps it).
pub async fn open_order(conn: &mut PgConnection, order: &NewOrder, now: OffsetDateTime) -> Result<Order, sqlx::Error> {
    let ends_at = (now + order.refund_window).replace_nanosecond(0).unwrap_or(now);
    let chain_escrow_id = B256::from(rand::random::<[u8; 32]>());
    let id = sqlx::query_scalar!(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token, owner, ends_at, price)
         VALUES ('order', $1, $2, $3, $4, $5) RETURNING id",
        SqlB256(chain_escrow_id) as SqlB256,
        SqlAddress(order.token) as SqlAddress,
        SqlAddress(order.buyer) as SqlAddress,
        ends_at,
        order.price as Amount
    )
    .fetch_one(conn)
    .await?;
    Ok(Order {
        id,
        chain_escrow_id,
        token: order.token,
        price: order.price,
        ends_at,
        open_calldata: open_call(chain_escrow_id, order.token, order.price, ends_at),
    })
}

/// `AdEscrow.openCampaign(id, token, amount, end)`, ABI-encoded.
pub fn open_call(chain_escrow_id: B256, token: Address, amount: Amount, end: OffsetDateTime) -> Bytes {
    AdEscrow::openCampaignCall {
        campaignId: chain_escrow_id,
        token,
        amount: U256::from(amount.0),
        end: U40::saturating_from(end.unix_timestamp().max(0)),
    }
    .abi_encode()
    .into()
}

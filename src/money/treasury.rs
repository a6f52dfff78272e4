//! Program budgets: escrow accounts the platform funds from its treasury wallet, that
//! referral bonuses, promo credits and prizes are debits of. Unspent budget goes back to
//! the treasury after end + grace, by the contract's own withdraw.
//!
//! An admin asks for a budget (with its first amount) and for top-ups; each is a *funding*
//! row. The treasury role ([`Treasury`]) turns fundings into transactions through the outbox,
//! signed with the treasury key: once per token, an allowance of the escrow (the escrow only
//! ever pulls from the caller of `openCampaign`/`fund`, so the allowance lets nobody but the
//! treasury itself move its tokens); then `openCampaign` for a budget's first funding and
//! `fund` for the others, each simulated before it is sent. Every step reads its work from
//! the database, so a role killed anywhere picks up where it stopped, and each funding is
//! sent once (its id is the outbox key). The same role sends promo credits' fundings of
//! advertisers' campaigns ([`crate::programs::promos::credits`]).

use std::time::Duration;

use adescrow_chain::sql::{SqlAddress, SqlB256, SqlU256};
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::contracts::{AdEscrow, Erc20};
use crate::money::Amount;
use crate::money::escrow::open_call;
use crate::platform::outbox::{self, Kind, NewTransaction, Outbox, Status};
use crate::platform::values::Name;
use crate::platform::worker::{Backoff, Leadership, Role, StepError};
use crate::programs::promos::credits;

/// The treasury's allowance of the escrow, once per token (key: the token).
pub const TREASURY_APPROVE: Kind = Kind::new("treasury_approve");
/// A budget's first funding, which opens its escrow (key: the funding).
pub const BUDGET_OPEN: Kind = Kind::new("budget_open");
/// A later funding (key: the funding).
pub const BUDGET_FUND: Kind = Kind::new("budget_fund");

/// Why a budget or a funding was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum TreasuryError {
    #[error("no treasury wallet is configured (ADESCROW_TREASURY_KEY)")]
    NotConfigured,
    #[error("no such program budget")]
    UnknownBudget,
    #[error("the budget has ended; a new one must be opened")]
    Ended,
    #[error("must be in the future")]
    EndsInThePast,
    #[error("must be more than zero")]
    ZeroAmount,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A budget to open.
#[derive(Debug, Clone)]
pub struct NewBudget {
    pub name: Name,
    pub token: Address,
    pub ends_at: OffsetDateTime,
    /// The first funding.
    pub amount: Amount,
}

/// Where a funding stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Funding {
    pub id: Uuid,
    pub amount: Amount,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// `waiting` (for the allowance, or for the budget's opening), then the outbox's
    /// `queued`, `sent`, `mined`, `confirmed` or `failed`.
    pub status: String,
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub tx_hash: Option<B256>,
    pub error: Option<String>,
}

/// A program budget: its escrow on chain and in the ledger.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ProgramBudget)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub chain_escrow_id: B256,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// The treasury wallet that opens and funds it, and gets the rest back.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub treasury: Address,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// On chain (token base units, decimal strings): funded, debited by settlement, and
    /// what the escrow still holds.
    pub funded: String,
    pub debited: String,
    pub remaining: String,
    /// The latest block that changed it on chain, and whether that block is final; none
    /// before it is opened.
    pub block: Option<i64>,
    pub r#final: bool,
    /// Spent in the ledger (held or released), and what waits for more funds.
    pub spent: Amount,
    pub waiting: Amount,
    pub fundings: Vec<Funding>,
}

/// Creates a budget owned by `treasury` and its first funding.
pub async fn create(
    conn: &mut PgConnection,
    treasury: Address,
    new: &NewBudget,
    by: Uuid,
    now: OffsetDateTime,
) -> Result<Uuid, TreasuryError> {
    if new.ends_at <= now {
        return Err(TreasuryError::EndsInThePast);
    }
    if new.amount.is_zero() {
        return Err(TreasuryError::ZeroAmount);
    }
    let ends_at = new.ends_at.replace_nanosecond(0).unwrap_or(new.ends_at);
    let id = sqlx::query_scalar!(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token, owner, ends_at, name)
         VALUES ('program', $1, $2, $3, $4, $5) RETURNING id",
        SqlB256(B256::from(rand::random::<[u8; 32]>())) as SqlB256,
        SqlAddress(new.token) as SqlAddress,
        SqlAddress(treasury) as SqlAddress,
        ends_at,
        new.name.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    add_funding(conn, id, new.amount, by).await?;
    Ok(id)
}

/// Asks for `amount` more in budget `id`. Returns the funding.
pub async fn fund(
    conn: &mut PgConnection,
    id: Uuid,
    amount: Amount,
    by: Uuid,
    now: OffsetDateTime,
) -> Result<Uuid, TreasuryError> {
    if amount.is_zero() {
        return Err(TreasuryError::ZeroAmount);
    }
    let ends_at = sqlx::query_scalar!(
        r#"SELECT ends_at AS "ends_at!" FROM escrow_accounts WHERE id = $1 AND kind = 'program' FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(TreasuryError::UnknownBudget)?;
    if ends_at <= now {
        return Err(TreasuryError::Ended);
    }
    add_funding(conn, id, amount, by).await
}

async fn add_funding(conn: &mut PgConnection, escrow: Uuid, amount: Amount, by: Uuid) -> Result<Uuid, TreasuryError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO program_fundings (escrow_id, amount, requested_by) VALUES ($1, $2, $3) RETURNING id",
        escrow,
        amount as Amount,
        by
    )
    .fetch_one(conn)
    .await?)
}

/// Every program budget, newest first.
pub async fn list(db: &PgPool, chain_id: u64) -> Result<Vec<Budget>, sqlx::Error> {
    let ids = sqlx::query_scalar!("SELECT id FROM escrow_accounts WHERE kind = 'program' ORDER BY created_at DESC, id")
        .fetch_all(db)
        .await?;
    let mut budgets = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(budget) = get(db, chain_id, id).await? {
            budgets.push(budget);
        }
    }
    Ok(budgets)
}

/// Budget `id`, as the chain mirror, the ledger and the outbox see it.
pub async fn get(db: &PgPool, chain_id: u64, id: Uuid) -> Result<Option<Budget>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT a.id, a.name AS "name!", a.chain_escrow_id AS "chain_escrow_id: SqlB256", a.token AS "token: SqlAddress",
                  a.owner AS "owner!: SqlAddress", a.ends_at AS "ends_at!",
                  cv.funded AS "funded?: SqlU256", cv.debited AS "debited?: SqlU256", cv.remaining AS "remaining?: SqlU256",
                  cv.block_number AS "block?", cv.block_number <= k.finalized_block AS "final?",
                  (SELECT coalesce(-sum(e.amount) FILTER (WHERE h.reason IS DISTINCT FROM 'budget_empty'), 0)
                   FROM ledger_entries e LEFT JOIN ledger_holds h ON h.id = e.hold_id
                   WHERE e.escrow_id = a.id) AS "spent!: Amount",
                  (SELECT coalesce(-sum(e.amount), 0) FROM ledger_entries e JOIN ledger_holds h ON h.id = e.hold_id
                   WHERE e.escrow_id = a.id AND h.reason = 'budget_empty') AS "waiting!: Amount"
           FROM escrow_accounts a
           LEFT JOIN LATERAL campaign_escrow($1, a.chain_escrow_id) cv ON true
           LEFT JOIN chain_checkpoints k ON k.chain_id = $1
           WHERE a.id = $2 AND a.kind = 'program'"#,
        chain_id as i64,
        id
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let fundings = sqlx::query!(
        r#"SELECT f.id, f.amount AS "amount: Amount", f.requested_at,
                  o.status AS "status?: Status", o.mined_tx AS "tx?: SqlB256", o.error
           FROM program_fundings f
           LEFT JOIN LATERAL (
               SELECT status, mined_tx, error FROM outbox
               WHERE chain_id = $2 AND kind IN ('budget_open', 'budget_fund') AND key = f.id::text
               ORDER BY id DESC LIMIT 1) o ON true
           WHERE f.escrow_id = $1
           ORDER BY f.requested_at, f.id"#,
        id,
        chain_id as i64
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|f| Funding {
        id: f.id,
        amount: f.amount,
        requested_at: f.requested_at,
        status: f.status.map_or("waiting", Status::as_str).to_owned(),
        tx_hash: f.tx.map(|tx| tx.0),
        error: f.error,
    })
    .collect();
    let text = |value: Option<SqlU256>| value.map_or(U256::ZERO, |v| v.0).to_string();
    Ok(Some(Budget {
        id: row.id,
        name: row.name,
        chain_escrow_id: row.chain_escrow_id.0,
        token: row.token.0,
        treasury: row.owner.0,
        ends_at: row.ends_at,
        funded: text(row.funded),
        debited: text(row.debited),
        remaining: text(row.remaining),
        block: row.block,
        r#final: row.r#final.unwrap_or(false),
        spent: row.spent,
        waiting: row.waiting,
        fundings,
    }))
}

/// How the treasury role runs.
#[derive(Debug, Clone)]
pub struct TreasuryConfig {
    pub escrow: Address,
    pub poll_interval: Duration,
}

/// The treasury role: sends program budgets' fundings with the treasury key.
#[derive(Debug, Clone)]
pub struct Treasury {
    db: PgPool,
    outbox: Outbox,
    config: TreasuryConfig,
}

/// Only one process at a time sends with the treasury key.
pub const LEADER_KEY: i64 = 0x0074_7265_6173_7279;

impl Treasury {
    /// `outbox` sends with the treasury key; it is given the treasury's kinds here.
    pub fn new(db: PgPool, outbox: Outbox, config: TreasuryConfig) -> Self {
        let outbox = outbox
            .handles(TREASURY_APPROVE, outbox::NoFollowup)
            .handles(BUDGET_OPEN, outbox::NoFollowup)
            .handles(BUDGET_FUND, outbox::NoFollowup)
            .handles(credits::PROMO_CREDIT, credits::CreditFollowup);
        Self { db, outbox, config }
    }

    pub fn address(&self) -> Address {
        self.outbox.sender()
    }

    /// Queues what the fundings need, then moves the outbox along.
    pub async fn tick(&self) -> Result<(), outbox::OutboxError> {
        self.plan().await?;
        self.outbox.tick().await
    }

    /// Queues, for every funding not sent yet, the next transaction it needs (the allowance,
    /// the opening, a top-up), in the order they were asked for. Returns how many it queued.
    pub async fn plan(&self) -> Result<usize, sqlx::Error> {
        let chain_id = self.outbox.chain_id();
        let unsent = sqlx::query!(
            r#"SELECT f.id, f.escrow_id, f.amount AS "amount: Amount", a.chain_escrow_id AS "chain_escrow_id: SqlB256",
                      a.token AS "token: SqlAddress", a.owner AS "owner!: SqlAddress", a.ends_at AS "ends_at!"
               FROM program_fundings f JOIN escrow_accounts a ON a.id = f.escrow_id
               WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.chain_id = $1 AND o.kind IN ('budget_open', 'budget_fund')
                                 AND o.key = f.id::text)
               ORDER BY f.requested_at, f.id"#,
            chain_id as i64
        )
        .fetch_all(&self.db)
        .await?;
        let mut queued = 0;
        let mut conn = self.db.acquire().await?;
        for funding in unsent {
            if funding.owner.0 != self.address() {
                tracing::warn!(funding = %funding.id, owner = %funding.owner.0, treasury = %self.address(),
                    "a program budget belongs to another treasury wallet; its funding waits");
                continue;
            }
            let token = funding.token.0;
            match self.allowance(&mut conn, token).await? {
                Allowance::Confirmed => {}
                Allowance::Queued => {
                    queued += 1;
                    continue;
                }
                Allowance::Waiting => continue,
            }
            let opening = sqlx::query_scalar!(
                r#"SELECT o.status AS "status: Status" FROM outbox o JOIN program_fundings f ON o.key = f.id::text
                   WHERE o.chain_id = $1 AND o.kind = 'budget_open' AND f.escrow_id = $2 AND o.status <> 'failed'"#,
                chain_id as i64,
                funding.escrow_id
            )
            .fetch_optional(&mut *conn)
            .await?;
            let (kind, calldata) = match opening {
                None => (
                    BUDGET_OPEN,
                    open_call(funding.chain_escrow_id.0, token, funding.amount, funding.ends_at),
                ),
                Some(Status::Confirmed) => (
                    BUDGET_FUND,
                    AdEscrow::fundCall {
                        campaignId: funding.chain_escrow_id.0,
                        amount: U256::from(funding.amount.0),
                    }
                    .abi_encode()
                    .into(),
                ),
                // The opening is on its way; top-ups follow it.
                Some(_) => continue,
            };
            let new = NewTransaction {
                kind,
                key: funding.id.to_string(),
                target: self.config.escrow,
                calldata,
                gas_limit: None,
            };
            queued += usize::from(outbox::enqueue(&mut conn, chain_id, &new).await?.created);
        }
        // Promo credits: the treasury funds the redeemed campaigns.
        for credit in credits::unsent(&mut conn, chain_id).await? {
            if credit.treasury != self.address() {
                tracing::warn!(redemption = %credit.redemption, owner = %credit.treasury, treasury = %self.address(),
                    "a promo credit's budget belongs to another treasury wallet; its funding waits");
                continue;
            }
            match self.allowance(&mut conn, credit.token).await? {
                Allowance::Confirmed => {}
                Allowance::Queued => {
                    queued += 1;
                    continue;
                }
                Allowance::Waiting => continue,
            }
            let new = credit.transaction(self.config.escrow);
            queued += usize::from(outbox::enqueue(&mut conn, chain_id, &new).await?.created);
        }
        Ok(queued)
    }

    /// Where the treasury's allowance of the escrow in `token` stands; queues it when it was
    /// never asked for.
    async fn allowance(&self, conn: &mut PgConnection, token: Address) -> Result<Allowance, sqlx::Error> {
        let chain_id = self.outbox.chain_id();
        let approval = outbox::latest(&mut *conn, chain_id, TREASURY_APPROVE, &token.to_string()).await?;
        Ok(match approval.map(|row| (row.status, row.error)) {
            Some((Status::Confirmed, _)) => Allowance::Confirmed,
            Some((status, _)) if status.is_live() => Allowance::Waiting,
            // Refused or reverted: the token or the treasury needs an operator, and
            // queueing it again every tick would only fail again.
            Some((_, error)) => {
                tracing::warn!(%token, ?error, "the treasury's allowance failed; its fundings wait");
                Allowance::Waiting
            }
            None => {
                let approve = Erc20::approveCall {
                    spender: self.config.escrow,
                    amount: U256::MAX,
                };
                let new = NewTransaction {
                    kind: TREASURY_APPROVE,
                    key: token.to_string(),
                    target: token,
                    calldata: approve.abi_encode().into(),
                    gas_limit: None,
                };
                if outbox::enqueue(conn, chain_id, &new).await?.created {
                    Allowance::Queued
                } else {
                    Allowance::Waiting
                }
            }
        })
    }
}

/// The treasury's allowance of the escrow in one token.
enum Allowance {
    Confirmed,
    /// Asked for just now.
    Queued,
    /// On its way, or failed and waiting for an operator.
    Waiting,
}

impl Role for Treasury {
    fn name(&self) -> &'static str {
        "treasury"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LEADER_KEY,
            poll: self.config.poll_interval.max(Duration::from_millis(500)),
        })
    }

    fn longest_quiet(&self) -> Duration {
        self.config.poll_interval
    }

    fn retry(&self) -> Backoff {
        Backoff::new(self.config.poll_interval, Duration::from_secs(30))
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        tracing::info!(treasury = %self.address(), "treasury active");
        Ok(())
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        match self.tick().await {
            Ok(()) => Ok(self.config.poll_interval),
            Err(error) => Err(StepError::Retry(error.into())),
        }
    }
}

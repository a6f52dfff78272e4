//! The node registry: secp256k1 signing keys of hoster nodes, some of which may also act as
//! witnesses. Receipt batches are verified against the addresses registered here.
//!
//! Registering a key needs a proof of possession, a `personal_sign` by the node key over
//! [`registration_message`], so nobody can claim (and so block) an address they do not hold.

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::OwnerScope;
use crate::accounts::personal_sign::{self, SignatureError};

/// A registered node as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The node's signing address, EIP-55 checksummed.
    #[schema(value_type = crate::platform::wire::schema::Address, example = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub address: Address,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    /// Whether the node may co-sign other hosters' receipt batches as a witness.
    pub can_witness: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set when the owner retired the node; its signatures are no longer accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
}

/// The text a node key signs to prove its owner controls it. Binding the owner and chain
/// makes a proof useless for anyone else or on any other deployment.
pub fn registration_message(owner: Address, node: Address, chain_id: u64) -> String {
    format!("adescrow node registration\nowner: {owner}\nnode: {node}\nchain id: {chain_id}")
}

/// Why a proof of possession was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("signature was made by {0}, not by the node key")]
    WrongSigner(Address),
}

/// Checks that `signature` is the node key's signature of its registration message.
pub fn verify_proof(owner: Address, node: Address, chain_id: u64, signature: &str) -> Result<(), ProofError> {
    let recovered = personal_sign::recover(&registration_message(owner, node, chain_id), signature)?;
    if recovered == node {
        Ok(())
    } else {
        Err(ProofError::WrongSigner(recovered))
    }
}

struct NodeRow {
    id: Uuid,
    owner_id: Uuid,
    address: SqlAddress,
    name: String,
    can_witness: bool,
    created_at: OffsetDateTime,
    retired_at: Option<OffsetDateTime>,
}

impl From<NodeRow> for Node {
    fn from(row: NodeRow) -> Self {
        Self {
            id: row.id,
            owner_id: row.owner_id,
            address: row.address.0,
            name: row.name,
            can_witness: row.can_witness,
            created_at: row.created_at,
            retired_at: row.retired_at,
        }
    }
}

/// Why a node was not registered.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("this node address is already registered")]
    AddressTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A hoster's request to register a node key.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub owner_id: Uuid,
    /// The owner's wallet, which the proof names.
    pub owner: Address,
    pub chain_id: u64,
    pub address: Address,
    pub name: &'a str,
    pub can_witness: bool,
    /// The node key's proof of possession (see [`registration_message`]).
    pub signature: &'a str,
}

/// Registers a node key once its proof of possession checks out; an address can be
/// registered once, ever.
pub async fn register(db: impl PgExecutor<'_>, registration: &Registration<'_>) -> Result<Node, NodeError> {
    verify_proof(
        registration.owner,
        registration.address,
        registration.chain_id,
        registration.signature,
    )?;
    insert(
        db,
        registration.owner_id,
        registration.address,
        registration.name,
        registration.can_witness,
    )
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("nodes_address_key") => NodeError::AddressTaken,
        _ => error.into(),
    })
}

/// Inserts a node. A taken address surfaces as a violation of `nodes_address_key`.
async fn insert(
    db: impl PgExecutor<'_>,
    owner_id: Uuid,
    address: Address,
    name: &str,
    can_witness: bool,
) -> Result<Node, sqlx::Error> {
    let row = sqlx::query_as!(
        NodeRow,
        r#"INSERT INTO nodes (owner_id, address, name, can_witness) VALUES ($1, $2, $3, $4)
         RETURNING id, owner_id, address AS "address: SqlAddress", name, can_witness, created_at, retired_at"#,
        owner_id,
        address.as_slice(),
        name,
        can_witness
    )
    .fetch_one(db)
    .await?;
    Ok(row.into())
}

pub async fn list(db: impl PgExecutor<'_>, scope: OwnerScope) -> Result<Vec<Node>, sqlx::Error> {
    let rows = sqlx::query_as!(
        NodeRow,
        r#"SELECT id, owner_id, address AS "address: SqlAddress", name, can_witness, created_at, retired_at FROM nodes
         WHERE $1::uuid IS NULL OR owner_id = $1 ORDER BY created_at"#,
        scope
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Node::from).collect())
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid, scope: OwnerScope) -> Result<Option<Node>, sqlx::Error> {
    let row = sqlx::query_as!(
        NodeRow,
        r#"SELECT id, owner_id, address AS "address: SqlAddress", name, can_witness, created_at, retired_at FROM nodes
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"#,
        id,
        scope
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Node::from))
}

/// Changes a node's name and witness flag (each only when given).
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    scope: OwnerScope,
    name: Option<&str>,
    can_witness: Option<bool>,
) -> Result<Option<Node>, sqlx::Error> {
    let row = sqlx::query_as!(
        NodeRow,
        r#"UPDATE nodes SET name = coalesce($3, name), can_witness = coalesce($4, can_witness)
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)
         RETURNING id, owner_id, address AS "address: SqlAddress", name, can_witness, created_at, retired_at"#,
        id,
        scope,
        name,
        can_witness
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Node::from))
}

/// Retires a node: its signatures stop counting. The row stays, since past receipts name it,
/// and so does its address, which cannot be registered again.
pub async fn retire(db: impl PgExecutor<'_>, id: Uuid, scope: OwnerScope) -> Result<Option<Node>, sqlx::Error> {
    let row = sqlx::query_as!(
        NodeRow,
        r#"UPDATE nodes SET retired_at = coalesce(retired_at, now())
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)
         RETURNING id, owner_id, address AS "address: SqlAddress", name, can_witness, created_at, retired_at"#,
        id,
        scope
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Node::from))
}

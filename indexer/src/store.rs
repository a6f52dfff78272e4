//! The mirror's writes: event rows in batches (one `UNNEST` insert per table), the block
//! window, the checkpoint, and rollback. Every write of one step happens in the caller's
//! transaction, so a crash leaves either all of a step or none of it.

use adescrow_chain::rpc::BlockRef;
use adescrow_chain::sql::{SqlAddress, SqlB256, SqlU256};
use alloy::primitives::{Address, B256, U256};
use sqlx::{PgConnection, PgExecutor};

use crate::events::{LogPosition, Rows};

/// How far the mirror has got on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub indexed_block: u64,
    pub finalized_block: u64,
    pub head_block: u64,
}

fn positions(positions: &[LogPosition]) -> (Vec<i64>, Vec<i32>, Vec<SqlB256>) {
    (
        positions.iter().map(|p| p.block_number).collect(),
        positions.iter().map(|p| p.log_index).collect(),
        positions.iter().map(|p| SqlB256(p.tx_hash)).collect(),
    )
}

fn addresses(values: impl Iterator<Item = Address>) -> Vec<SqlAddress> {
    values.map(SqlAddress).collect()
}

fn some_addresses(values: impl Iterator<Item = Option<Address>>) -> Vec<Option<SqlAddress>> {
    values.map(|a| a.map(SqlAddress)).collect()
}

fn amounts(values: impl Iterator<Item = U256>) -> Vec<SqlU256> {
    values.map(SqlU256).collect()
}

fn some_amounts(values: impl Iterator<Item = Option<U256>>) -> Vec<Option<SqlU256>> {
    values.map(|a| a.map(SqlU256)).collect()
}

fn hashes<'a>(values: impl Iterator<Item = &'a B256>) -> Vec<SqlB256> {
    values.map(|h| SqlB256(*h)).collect()
}

/// Inserts a batch; rows already there (a replayed block) are left as they are.
pub async fn insert(conn: &mut PgConnection, chain_id: u64, rows: &Rows) -> Result<(), sqlx::Error> {
    let chain = chain_id as i64;
    let t = &rows.campaign_events;
    if !t.is_empty() {
        let (blocks, logs, txs) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_campaign_events
                   (chain_id, block_number, log_index, tx_hash, kind, campaign_id, account, token, amount, remaining, end_time)
               SELECT $1, b, l, tx, k::campaign_event_kind, c, a, tk, am, r, e
               FROM UNNEST($2::bigint[], $3::int[], $4::bytea[], $5::text[], $6::bytea[], $7::bytea[], $8::bytea[],
                           $9::numeric[], $10::numeric[], $11::bigint[]) AS u(b, l, tx, k, c, a, tk, am, r, e)
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &txs as &[SqlB256],
            &t.rows.iter().map(|r| r.kind.to_owned()).collect::<Vec<_>>(),
            &hashes(t.rows.iter().map(|r| &r.campaign_id)) as &[SqlB256],
            &some_addresses(t.rows.iter().map(|r| r.account)) as &[Option<SqlAddress>],
            &some_addresses(t.rows.iter().map(|r| r.token)) as &[Option<SqlAddress>],
            &some_amounts(t.rows.iter().map(|r| r.amount)) as &[Option<SqlU256>],
            &some_amounts(t.rows.iter().map(|r| r.remaining)) as &[Option<SqlU256>],
            &t.rows.iter().map(|r| r.end_time).collect::<Vec<_>>() as &[Option<i64>],
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.settlements;
    if !t.is_empty() {
        let (blocks, logs, txs) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_settlements (chain_id, block_number, log_index, tx_hash, epoch, root, claimable_at)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::bytea[], $5::bigint[], $6::bytea[], $7::bigint[])
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &txs as &[SqlB256],
            &t.rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
            &hashes(t.rows.iter().map(|r| &r.root)) as &[SqlB256],
            &t.rows.iter().map(|r| r.claimable_at).collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.debits;
    if !t.is_empty() {
        let (blocks, logs, _) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_settlement_debits (chain_id, block_number, log_index, position, campaign_id, amount)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::int[], $5::bytea[], $6::numeric[])
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &t.rows.iter().map(|r| r.position).collect::<Vec<_>>(),
            &hashes(t.rows.iter().map(|r| &r.campaign_id)) as &[SqlB256],
            &amounts(t.rows.iter().map(|r| r.amount)) as &[SqlU256],
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.totals;
    if !t.is_empty() {
        let (blocks, logs, _) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_settlement_totals (chain_id, block_number, log_index, position, token, amount)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::int[], $5::bytea[], $6::numeric[])
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &t.rows.iter().map(|r| r.position).collect::<Vec<_>>(),
            &addresses(t.rows.iter().map(|r| r.token)) as &[SqlAddress],
            &amounts(t.rows.iter().map(|r| r.amount)) as &[SqlU256],
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.revocations;
    if !t.is_empty() {
        let (blocks, logs, txs) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_settlement_revocations (chain_id, block_number, log_index, tx_hash, epoch, root)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::bytea[], $5::bigint[], $6::bytea[])
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &txs as &[SqlB256],
            &t.rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
            &hashes(t.rows.iter().map(|r| &r.root)) as &[SqlB256],
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.claims;
    if !t.is_empty() {
        let (blocks, logs, txs) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_claims (chain_id, block_number, log_index, tx_hash, leaf_index, cumulative_amount)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::bytea[], $5::numeric[], $6::numeric[])
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &txs as &[SqlB256],
            &amounts(t.rows.iter().map(|r| r.leaf_index)) as &[SqlU256],
            &amounts(t.rows.iter().map(|r| r.cumulative_amount)) as &[SqlU256],
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.consent;
    if !t.is_empty() {
        let (blocks, logs, txs) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_consent_events (chain_id, block_number, log_index, tx_hash, user_address, scope, expiry)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bigint[])
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &txs as &[SqlB256],
            &addresses(t.rows.iter().map(|r| r.user)) as &[SqlAddress],
            &hashes(t.rows.iter().map(|r| &r.scope)) as &[SqlB256],
            &t.rows.iter().map(|r| r.expiry).collect::<Vec<_>>() as &[Option<i64>],
        )
        .execute(&mut *conn)
        .await?;
    }
    let t = &rows.admin;
    if !t.is_empty() {
        let (blocks, logs, txs) = positions(&t.positions);
        sqlx::query!(
            r#"INSERT INTO mirror_escrow_admin_events (chain_id, block_number, log_index, tx_hash, kind, role, account, window_secs)
               SELECT $1, b, l, tx, k::escrow_admin_event_kind, r, a, w
               FROM UNNEST($2::bigint[], $3::int[], $4::bytea[], $5::text[], $6::bytea[], $7::bytea[], $8::bigint[])
                    AS u(b, l, tx, k, r, a, w)
               ON CONFLICT DO NOTHING"#,
            chain,
            &blocks,
            &logs,
            &txs as &[SqlB256],
            &t.rows.iter().map(|r| r.kind.to_owned()).collect::<Vec<_>>(),
            &t.rows.iter().map(|r| r.role.map(SqlB256)).collect::<Vec<_>>() as &[Option<SqlB256>],
            &some_addresses(t.rows.iter().map(|r| r.account)) as &[Option<SqlAddress>],
            &t.rows.iter().map(|r| r.window_secs).collect::<Vec<_>>() as &[Option<i64>],
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn checkpoint(db: impl PgExecutor<'_>, chain_id: u64) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT indexed_block, finalized_block, head_block FROM chain_checkpoints WHERE chain_id = $1",
        chain_id as i64
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Checkpoint {
        indexed_block: r.indexed_block as u64,
        finalized_block: r.finalized_block as u64,
        head_block: r.head_block as u64,
    }))
}

pub async fn save_checkpoint(
    conn: &mut PgConnection,
    chain_id: u64,
    checkpoint: Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO chain_checkpoints (chain_id, indexed_block, finalized_block, head_block) VALUES ($1, $2, $3, $4)
         ON CONFLICT (chain_id) DO UPDATE SET indexed_block = $2, finalized_block = $3, head_block = $4, updated_at = now()",
        chain_id as i64,
        checkpoint.indexed_block as i64,
        checkpoint.finalized_block as i64,
        checkpoint.head_block as i64,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers a block of the window (replacing what was stored at its height).
pub async fn record_block(conn: &mut PgConnection, chain_id: u64, block: BlockRef) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO chain_blocks (chain_id, number, hash, parent_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (chain_id, number) DO UPDATE SET hash = $3, parent_hash = $4",
        chain_id as i64,
        block.number as i64,
        SqlB256(block.hash) as SqlB256,
        SqlB256(block.parent_hash) as SqlB256,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The hash stored for a height, if the window holds it.
pub async fn block_hash(db: impl PgExecutor<'_>, chain_id: u64, number: u64) -> Result<Option<B256>, sqlx::Error> {
    let hash = sqlx::query_scalar!(
        r#"SELECT hash AS "hash: SqlB256" FROM chain_blocks WHERE chain_id = $1 AND number = $2"#,
        chain_id as i64,
        number as i64
    )
    .fetch_optional(db)
    .await?;
    Ok(hash.map(B256::from))
}

/// The lowest height the window holds.
pub async fn window_floor(db: impl PgExecutor<'_>, chain_id: u64) -> Result<Option<u64>, sqlx::Error> {
    let floor = sqlx::query_scalar!(
        "SELECT min(number) FROM chain_blocks WHERE chain_id = $1",
        chain_id as i64
    )
    .fetch_one(db)
    .await?;
    Ok(floor.map(|f| f as u64))
}

/// Forgets window blocks below `number`.
pub async fn prune_window(conn: &mut PgConnection, chain_id: u64, below: u64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM chain_blocks WHERE chain_id = $1 AND number < $2",
        chain_id as i64,
        below as i64
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes everything above `ancestor`: event rows and window blocks, in one statement
/// (Postgres runs every data-modifying CTE, read or not). Returns the number of event rows
/// removed; a settlement's debits and totals count with its row.
pub async fn rollback(conn: &mut PgConnection, chain_id: u64, ancestor: u64) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query_scalar!(
        r#"WITH campaign_events AS (DELETE FROM mirror_campaign_events WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                settlements AS (DELETE FROM mirror_settlements WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                debits AS (DELETE FROM mirror_settlement_debits WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                totals AS (DELETE FROM mirror_settlement_totals WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                revocations AS (DELETE FROM mirror_settlement_revocations WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                claims AS (DELETE FROM mirror_claims WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                consent AS (DELETE FROM mirror_consent_events WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                admin AS (DELETE FROM mirror_escrow_admin_events WHERE chain_id = $1 AND block_number > $2 RETURNING 1),
                blocks AS (DELETE FROM chain_blocks WHERE chain_id = $1 AND number > $2 RETURNING 1)
           SELECT (SELECT count(*) FROM campaign_events) + (SELECT count(*) FROM settlements)
                + (SELECT count(*) FROM revocations) + (SELECT count(*) FROM claims)
                + (SELECT count(*) FROM consent) + (SELECT count(*) FROM admin) AS "removed!""#,
        chain_id as i64,
        ancestor as i64
    )
    .fetch_one(conn)
    .await?;
    Ok(removed as u64)
}

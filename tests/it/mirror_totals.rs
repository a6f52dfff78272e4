//! The campaign escrow totals the mirror keeps (`mirror_campaign_debited`) always equal what
//! the mirror's own rows say: through settlements, revocations and a reorg's rollback.

use adescrow::platform::db::MIGRATOR;
use sqlx::PgPool;

const CHAIN: i64 = 31337;

/// Each campaign's debited total from scratch: its debits in settlements not revoked.
const FROM_SCRATCH: &str = "
    SELECT d.campaign_id, sum(d.amount)::text
    FROM mirror_settlement_debits d
    JOIN mirror_settlements s USING (chain_id, block_number, log_index)
    WHERE NOT EXISTS (SELECT 1 FROM mirror_settlement_revocations r
                      WHERE r.chain_id = s.chain_id AND r.epoch = s.epoch AND r.root = s.root)
    GROUP BY d.campaign_id ORDER BY 1";

async fn assert_totals(pool: &PgPool, expected: &[(u8, u64)], when: &str) {
    let kept: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT campaign_id, debited::text FROM mirror_campaign_debited ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    let scratch: Vec<(Vec<u8>, String)> = sqlx::query_as(FROM_SCRATCH).fetch_all(pool).await.unwrap();
    assert_eq!(kept, scratch, "kept totals equal the rows ({when})");
    let expected: Vec<(Vec<u8>, String)> = expected
        .iter()
        .map(|(campaign, amount)| (vec![*campaign; 32], amount.to_string()))
        .collect();
    assert_eq!(kept, expected, "{when}");
}

async fn settle(pool: &PgPool, block: i64, epoch: i64, debits: &[(u8, u64)]) {
    sqlx::query(
        "INSERT INTO mirror_settlements (chain_id, block_number, log_index, tx_hash, epoch, root, claimable_at)
         VALUES ($1, $2, 0, '\\x01', $3, sha256($3::text::bytea), 0)",
    )
    .bind(CHAIN)
    .bind(block)
    .bind(epoch)
    .execute(pool)
    .await
    .unwrap();
    for (position, (campaign, amount)) in debits.iter().enumerate() {
        sqlx::query(
            "INSERT INTO mirror_settlement_debits (chain_id, block_number, log_index, position, campaign_id, amount)
             VALUES ($1, $2, 0, $3, $4, $5::numeric)",
        )
        .bind(CHAIN)
        .bind(block)
        .bind(position as i32)
        .bind(vec![*campaign; 32])
        .bind(amount.to_string())
        .execute(pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn debited_totals_follow_settlements_revocations_and_rollbacks(pool: PgPool) {
    settle(&pool, 10, 1, &[(0xa1, 100), (0xb2, 50)]).await;
    settle(&pool, 11, 2, &[(0xa1, 30)]).await;
    assert_totals(&pool, &[(0xa1, 130), (0xb2, 50)], "two epochs").await;

    sqlx::query(
        "INSERT INTO mirror_settlement_revocations (chain_id, block_number, log_index, tx_hash, epoch, root)
         VALUES ($1, 12, 0, '\\x02', 2, sha256('2'::bytea))",
    )
    .bind(CHAIN)
    .execute(&pool)
    .await
    .unwrap();
    assert_totals(&pool, &[(0xa1, 100), (0xb2, 50)], "epoch 2 revoked").await;

    // The indexer's rollback deletes from every mirror table in one statement.
    let mut conn = pool.acquire().await.unwrap();
    adescrow_indexer::store::rollback(&mut conn, CHAIN as u64, 11)
        .await
        .unwrap();
    assert_totals(&pool, &[(0xa1, 130), (0xb2, 50)], "revocation rolled back").await;
    adescrow_indexer::store::rollback(&mut conn, CHAIN as u64, 10)
        .await
        .unwrap();
    assert_totals(&pool, &[(0xa1, 100), (0xb2, 50)], "epoch 2 rolled back").await;
    adescrow_indexer::store::rollback(&mut conn, CHAIN as u64, 9)
        .await
        .unwrap();
    assert_totals(&pool, &[], "everything rolled back").await;

    // A settlement whose debits arrive before its own row counts once the row is there.
    sqlx::query(
        "INSERT INTO mirror_settlement_debits (chain_id, block_number, log_index, position, campaign_id, amount)
         VALUES ($1, 20, 0, 0, $2, 7)",
    )
    .bind(CHAIN)
    .bind(vec![0xa1u8; 32])
    .execute(&pool)
    .await
    .unwrap();
    assert_totals(&pool, &[], "debits without their settlement").await;
    sqlx::query(
        "INSERT INTO mirror_settlements (chain_id, block_number, log_index, tx_hash, epoch, root, claimable_at)
         VALUES ($1, 20, 0, '\\x03', 1, sha256('1'::bytea), 0)",
    )
    .bind(CHAIN)
    .execute(&pool)
    .await
    .unwrap();
    assert_totals(&pool, &[(0xa1, 7)], "settlement arrived").await;
}

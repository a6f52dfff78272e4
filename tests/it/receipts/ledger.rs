//! The ledger balances after a randomized run, and the database refuses what would not.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_ledger_balances_after_a_randomized_run(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({}),
        json!({ "cpm": "1237000", "cpc": "33333", "cpa": "999999" }),
        1_000_000_000,
    )
    .await;
    let mut rng = rand::rng();
    let tickets = world.tickets(60, None).await;
    let events = ["impression", "click", "acquisition", "view"];
    let at = now();
    for sequence in 1..=12u64 {
        let receipts: Vec<Value> = (0..rng.random_range(1..12))
            .map(|_| {
                let ticket = &tickets[rng.random_range(0..tickets.len())];
                receipt(ticket, events[rng.random_range(0..events.len())], at, None)
            })
            .collect();
        world.submit(sequence, &receipts, rng.random_bool(0.7)).await.ok();
    }
    assert_ledger_consistent(&pool).await;
    // The database itself refuses a posting that does not balance.
    let mut tx = pool.begin().await.unwrap();
    let posting = adjustment_posting(&mut tx).await;
    let error =
        sqlx::query("INSERT INTO ledger_entries (posting_id, role, payee, amount) VALUES ($1, 'platform', $2, 5)")
            .bind(posting)
            .bind(PLATFORM.as_slice())
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(error.to_string().contains("does not balance"), "{error}");
    tx.rollback().await.unwrap();
    // Entries that balance among themselves go in; their posting still sums to zero.
    let mut tx = pool.begin().await.unwrap();
    let posting = adjustment_posting(&mut tx).await;
    sqlx::query(
        "INSERT INTO ledger_entries (posting_id, role, payee, amount) VALUES ($1, 'platform', $2, 5), ($1, 'hoster', $2, -5)",
    )
    .bind(posting)
    .bind(PLATFORM.as_slice())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // And any change to what is posted.
    let error = sqlx::query("UPDATE ledger_entries SET amount = amount + 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");
}

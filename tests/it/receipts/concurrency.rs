//! Resubmission and concurrent batches never bill a ticket twice or past a budget.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn resubmission_returns_the_first_answer(pool: PgPool) {
    let world = World::new(pool.clone(), json!({}), json!({ "cpm": "1000000" }), 1_000_000_000).await;
    let tickets = world.tickets(2, None).await;
    let at = now();
    let receipts = [
        receipt(&tickets[0], "impression", at, None),
        receipt(&tickets[0], "click", at, None),
    ];
    let first = world.submit(7, &receipts, true).await.ok().clone();
    let second = world.submit(7, &receipts, true).await.ok().clone();
    assert_eq!(first, second);
    assert_eq!(world.app.count("billed_events").await, 1);
    assert_eq!(world.app.count("ledger_postings").await, 1);

    let different = [receipt(&tickets[1], "impression", at, None)];
    let reused = world.submit(7, &different, true).await;
    assert_eq!(reused.problem(StatusCode::CONFLICT, "conflict")["field"], "sequence");
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_overlapping_batches_bill_each_ticket_once(pool: PgPool) {
    let world = World::new(pool.clone(), json!({}), json!({ "cpm": "1000000" }), 1_000_000_000).await;
    let tickets = world.tickets(40, None).await;
    let at = now();
    // Eight tasks, each submitting an overlapping window of 20 tickets.
    let bodies: Vec<Value> = (0..8u64)
        .map(|task| {
            let receipts: Vec<Value> = (0..20)
                .map(|i| receipt(&tickets[(task as usize * 5 + i) % 40], "impression", at, None))
                .collect();
            signed(&world.hoster.key, Some(&world.witness.key), task + 1, &receipts)
        })
        .collect();
    let answers = world.submit_concurrently(bodies).await;
    let mut billed_tickets = HashSet::new();
    for answer in &answers {
        assert!(answer.status.is_success(), "{}", answer.text);
        for r in answer.body["receipts"].as_array().unwrap() {
            if r["billed"] == true {
                assert!(
                    billed_tickets.insert(r["ticketId"].as_str().unwrap().to_owned()),
                    "billed twice: {r}"
                );
            } else {
                assert_eq!(r["reason"], "duplicate");
            }
        }
    }
    assert_eq!(billed_tickets.len(), 40);
    assert_eq!(world.app.count("billed_events").await, 40);
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_batches_never_bill_past_the_escrow(pool: PgPool) {
    // Room for 25 impressions of 1000.
    let world = World::new(pool.clone(), json!({}), json!({ "cpm": "1000000" }), 25_000).await;
    let tickets = world.tickets(60, None).await;
    let at = now();
    let bodies: Vec<Value> = tickets
        .chunks(10)
        .enumerate()
        .map(|(i, chunk)| {
            let receipts: Vec<Value> = chunk.iter().map(|t| receipt(t, "impression", at, None)).collect();
            signed(&world.hoster.key, Some(&world.witness.key), i as u64 + 1, &receipts)
        })
        .collect();
    let answers = world.submit_concurrently(bodies).await;
    let billed: usize = answers
        .iter()
        .map(|a| a.body["billed"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(billed, 25, "exactly the escrow's worth");
    for answer in &answers {
        for r in answer.body["receipts"].as_array().unwrap() {
            assert!(r["billed"] == true || r["reason"] == "campaign_budget_exhausted", "{r}");
        }
    }
    assert_ledger_consistent(&pool).await;
}

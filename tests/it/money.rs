//! The money core against real Postgres: the ledger's rules under randomized postings of
//! every kind (campaign spend, order sales held for their refund window, program bonuses,
//! transfers, clawbacks, releases and reversals, epochs in between), and each refusal.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use adescrow::money::Amount;
use adescrow::money::escrow::{self, EscrowError, NewOrder};
use adescrow::money::holds::{self, Ending, HoldError, HoldOutcome, HoldReason};
use adescrow::money::ledger::{self, LedgerError, NewHold, Party, Posting, Source};
use adescrow::platform::db::MIGRATOR;
use adescrow::settlement::relayer::epoch;
use alloy::primitives::{Address, B256};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::CHAIN_ID;

const TOKEN: Address = Address::repeat_byte(0x70);
const PLATFORM: Address = Address::repeat_byte(0xfa);
/// The platform's treasury wallet, which funds program budgets.
pub(crate) const TREASURY: Address = Address::repeat_byte(0x7e);
const BUYER: Address = Address::repeat_byte(0xb0);
/// When the tests' escrows end (Unix seconds).
pub(crate) const END: i64 = 4_000_000_000;

fn payee(i: u8) -> Address {
    Address::repeat_byte(0xa0 + i)
}

static NEXT_BLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// A program budget in `token` under `chain_escrow_id`, owned by the treasury, as the service
/// records one before the chain has it.
pub(crate) async fn program_budget(pool: &PgPool, chain_escrow_id: B256, token: Address) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token, owner, ends_at, name)
         VALUES ('program', $1, $2, $3, to_timestamp($4), 'Referral rewards') RETURNING id",
    )
    .bind(chain_escrow_id.as_slice())
    .bind(token.as_slice())
    .bind(TREASURY.as_slice())
    .bind(END as f64)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Mirrors an escrow opened by `opener` in `token` with `end` and funded with `amount`.
pub(crate) async fn mirror_funding(
    pool: &PgPool,
    escrow: B256,
    opener: Address,
    token: Address,
    end: i64,
    amount: u128,
) {
    let block = NEXT_BLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sqlx::query(
        "INSERT INTO mirror_campaign_events (chain_id, block_number, log_index, tx_hash, kind, campaign_id, account, token, amount, remaining, end_time)
         SELECT $1, $2, 0, $3, 'opened', $4, $5, $6, NULL, NULL, $7
         WHERE NOT EXISTS (SELECT 1 FROM mirror_campaign_events WHERE campaign_id = $4 AND kind = 'opened')",
    )
    .bind(CHAIN_ID as i64)
    .bind(block)
    .bind(B256::repeat_byte(1).as_slice())
    .bind(escrow.as_slice())
    .bind(opener.as_slice())
    .bind(token.as_slice())
    .bind(end)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO mirror_campaign_events (chain_id, block_number, log_index, tx_hash, kind, campaign_id, account, amount, remaining)
         VALUES ($1, $2, 1, $3, 'funded', $4, $5, $6::text::numeric, $6::text::numeric)",
    )
    .bind(CHAIN_ID as i64)
    .bind(block)
    .bind(B256::repeat_byte(1).as_slice())
    .bind(escrow.as_slice())
    .bind(opener.as_slice())
    .bind(amount.to_string())
    .execute(pool)
    .await
    .unwrap();
}

struct Book {
    pool: PgPool,
    campaign: Uuid,
    budget: Uuid,
    budget_chain_id: B256,
}

impl Book {
    async fn new(pool: PgPool) -> Book {
        let campaign: Uuid = sqlx::query_scalar(
            "INSERT INTO escrow_accounts (kind, chain_escrow_id, token) VALUES ('campaign', $1, $2) RETURNING id",
        )
        .bind(B256::repeat_byte(0xca).as_slice())
        .bind(TOKEN.as_slice())
        .fetch_one(&pool)
        .await
        .unwrap();
        let budget_chain_id = B256::repeat_byte(0xbb);
        let budget = program_budget(&pool, budget_chain_id, TOKEN).await;
        Book {
            pool,
            campaign,
            budget,
            budget_chain_id,
        }
    }

    async fn post(&self, source: Source, id: &str, posting: Posting) -> Result<ledger::Posted, LedgerError> {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let posted = ledger::post(&mut tx, CHAIN_ID, source, id, &BTreeMap::from([(TOKEN, posting)])).await?;
        tx.commit().await.unwrap();
        Ok(posted[0])
    }

    async fn order(&self, price: u128, window: Duration, now: OffsetDateTime) -> escrow::Order {
        let mut conn = self.pool.acquire().await.unwrap();
        let new = NewOrder {
            buyer: BUYER,
            token: TOKEN,
            price: Amount(price),
            refund_window: window,
        };
        escrow::open_order(&mut conn, &new, now).await.unwrap()
    }

    async fn released(&self, who: Address) -> u128 {
        let text: String = sqlx::query_scalar(
            "SELECT coalesce(sum(released), 0)::text FROM payee_balances WHERE payee = $1 AND token = $2",
        )
        .bind(who.as_slice())
        .bind(TOKEN.as_slice())
        .fetch_one(&self.pool)
        .await
        .unwrap();
        text.parse().unwrap()
    }

    async fn postings(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ledger_postings")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn end(&self, hold: i64, outcome: HoldOutcome, now: OffsetDateTime) -> Result<i64, HoldError> {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let ending = Ending {
            by: None,
            reason: "test".into(),
        };
        let result = match outcome {
            HoldOutcome::Released => holds::release(&mut tx, CHAIN_ID, hold, &ending, now).await,
            HoldOutcome::Reversed => holds::reverse(&mut tx, hold, &ending).await,
        };
        if result.is_ok() {
            tx.commit().await.unwrap();
        }
        result
    }

    /// Closes, builds and confirms an epoch (if anything is owed); returns its leaves.
    async fn epoch(&self) -> Option<HashMap<Address, u128>> {
        let epoch = epoch::close(&self.pool, CHAIN_ID).await.unwrap();
        match epoch::build(&self.pool, CHAIN_ID, epoch).await {
            Ok(_) => {}
            Err(epoch::BuildError::Empty(_)) => {
                sqlx::query("DELETE FROM settlement_epochs WHERE epoch = $1")
                    .bind(epoch as i64)
                    .execute(&self.pool)
                    .await
                    .unwrap();
                return None;
            }
            Err(error) => panic!("epoch {epoch}: {error}"),
        }
        let mut conn = self.pool.acquire().await.unwrap();
        epoch::confirm(&mut conn, CHAIN_ID, epoch, B256::repeat_byte(epoch as u8))
            .await
            .unwrap();
        let rows: Vec<(Vec<u8>, String)> =
            sqlx::query_as("SELECT account, cumulative::text FROM payout_leaves WHERE epoch = $1")
                .bind(epoch as i64)
                .fetch_all(&self.pool)
                .await
                .unwrap();
        Some(
            rows.into_iter()
                .map(|(account, amount)| (Address::from_slice(&account), amount.parse().unwrap()))
                .collect(),
        )
    }

    async fn settled(&self) -> u128 {
        let text: String = sqlx::query_scalar("SELECT coalesce(sum(amount), 0)::text FROM settlement_debits")
            .fetch_one(&self.pool)
            .await
            .unwrap();
        text.parse().unwrap()
    }
}

fn held(reason: HoldReason, until: Option<OffsetDateTime>) -> NewHold {
    NewHold {
        reason,
        until,
        note: format!("{reason:?}"),
        debtor: None,
        settled_after: None,
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn randomized_postings_keep_every_rule(pool: PgPool) {
    let book = Book::new(pool.clone()).await;
    mirror_funding(&pool, book.budget_chain_id, TREASURY, TOKEN, END, 5_000).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut now = OffsetDateTime::now_utc();
    let mut leaves: HashMap<Address, u128> = HashMap::new();
    let mut open_holds: Vec<i64> = Vec::new();
    let mut clawbacks_owed = 0;
    let payees: Vec<Address> = (0..5).map(payee).chain([PLATFORM]).collect();

    for step in 0..160 {
        let id = format!("step-{step}");
        match rng.random_range(0..9) {
            // Campaign spend: 70% to a hoster, 30% to the platform.
            0 | 1 => {
                let price = rng.random_range(10..2_000u128);
                let mut posting = Posting::default();
                posting.spend(book.campaign, Amount(price));
                posting.earn(Party::Hoster, payee(rng.random_range(0..5)), Amount(price * 7 / 10));
                posting.earn(Party::Platform, PLATFORM, Amount(price - price * 7 / 10));
                book.post(Source::ReceiptBatch, &id, posting).await.unwrap();
            }
            // An order sale, held for its refund window.
            2 => {
                let price = rng.random_range(100..1_000u128);
                let order = book
                    .order(price, Duration::from_secs(rng.random_range(1..120)), now)
                    .await;
                mirror_funding(
                    &pool,
                    order.chain_escrow_id,
                    BUYER,
                    TOKEN,
                    order.ends_at.unix_timestamp(),
                    price,
                )
                .await;
                let mut posting = Posting::default();
                posting.spend(order.id, Amount(price));
                posting.earn(Party::Seller, payee(rng.random_range(0..5)), Amount(price * 85 / 100));
                posting.earn(Party::Platform, PLATFORM, Amount(price - price * 85 / 100));
                let posted = book
                    .post(
                        Source::OrderSale,
                        &id,
                        posting.hold(held(HoldReason::RefundWindow, Some(order.ends_at))),
                    )
                    .await
                    .unwrap();
                open_holds.push(posted.hold_id.unwrap());
            }
            // A bonus from the program budget; held when the budget cannot cover it.
            3 => {
                let bonus = rng.random_range(100..800u128);
                let mut posting = Posting::default();
                posting.spend(book.budget, Amount(bonus));
                posting.earn(Party::Referrer, payee(rng.random_range(0..5)), Amount(bonus));
                match book.post(Source::Program, &id, posting.clone()).await {
                    Ok(_) => {}
                    Err(LedgerError::Escrow(EscrowError::Short { .. })) => {
                        let posted = book
                            .post(Source::Program, &id, posting.hold(held(HoldReason::BudgetEmpty, None)))
                            .await
                            .unwrap();
                        open_holds.push(posted.hold_id.unwrap());
                    }
                    Err(error) => panic!("{error}"),
                }
            }
            // A commission out of the platform's share, sometimes held for a while; beyond
            // the platform's released balance it is refused and nothing is written.
            4 => {
                let available = book.released(PLATFORM).await;
                let amount = rng.random_range(1..=available.max(1) + 50);
                let mut posting = Posting::default();
                posting.transfer(
                    (Party::Platform, PLATFORM),
                    (Party::Affiliate, payee(4)),
                    Amount(amount),
                );
                if rng.random_bool(0.5) {
                    posting = posting.hold(held(
                        HoldReason::CommissionHold,
                        Some(now + time::Duration::seconds(30)),
                    ));
                }
                let before = book.postings().await;
                match book.post(Source::Transfer, &id, posting).await {
                    Ok(posted) => {
                        assert!(amount <= available);
                        open_holds.extend(posted.hold_id);
                    }
                    Err(LedgerError::PayeeShort { .. }) => {
                        assert!(amount > available);
                        assert_eq!(book.postings().await, before, "a refused transfer writes nothing");
                    }
                    Err(error) => panic!("{error}"),
                }
            }
            // A clawback of part of a payee's released earnings, to the platform.
            5 => {
                let who = payee(rng.random_range(0..4));
                let released = book.released(who).await;
                if released > 0 {
                    let amount = rng.random_range(1..=released);
                    let mut posting = Posting::default();
                    posting.transfer((Party::Hoster, who), (Party::Platform, PLATFORM), Amount(amount));
                    let posted = book.post(Source::Clawback, &id, posting).await.unwrap();
                    if posted.hold_id.is_some() {
                        clawbacks_owed += 1;
                    }
                    open_holds.extend(posted.hold_id);
                }
            }
            // Time passes; whatever is due is released.
            6 => {
                now += time::Duration::seconds(rng.random_range(1..90));
                holds::release_due(&pool, CHAIN_ID, now).await.unwrap();
            }
            // A hold is reversed (a refund, a cancelled commission), or released by hand.
            7 if !open_holds.is_empty() => {
                let hold = open_holds.swap_remove(rng.random_range(0..open_holds.len()));
                let outcome = if rng.random_bool(0.5) {
                    HoldOutcome::Reversed
                } else {
                    HoldOutcome::Released
                };
                match book.end(hold, outcome, now).await {
                    Ok(_) => {
                        // Ending it again is refused, whichever way.
                        for again in [HoldOutcome::Released, HoldOutcome::Reversed] {
                            assert!(matches!(book.end(hold, again, now).await, Err(HoldError::Ended { .. })));
                        }
                    }
                    Err(HoldError::NotDue { .. } | HoldError::DebtOutstanding { .. } | HoldError::Escrow(_)) => {
                        open_holds.push(hold)
                    }
                    Err(HoldError::Ended { .. }) => {}
                    Err(error) => panic!("{error}"),
                }
            }
            // An epoch.
            _ => {
                let Some(new) = book.epoch().await else { continue };
                let mut sum = 0;
                for who in &payees {
                    let leaf = new.get(who).copied().unwrap_or(0);
                    let previous = leaves.get(who).copied().unwrap_or(0);
                    let released = book.released(*who).await;
                    assert_eq!(
                        leaf,
                        previous.max(released),
                        "{who}: leaf = max(previous leaf, released balance)"
                    );
                    sum += leaf;
                }
                assert!(
                    sum <= book.settled().await,
                    "leaves never promise more than was debited"
                );
                leaves = new;
            }
        }
        // After every step: postings balance, released balances are never negative.
        let unbalanced: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT posting_id FROM ledger_entries GROUP BY posting_id HAVING sum(amount) <> 0) u",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(unbalanced, 0);
        let negative: i64 = sqlx::query_scalar("SELECT count(*) FROM payee_balances WHERE released < 0 OR held < 0")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(negative, 0, "step {step}");
    }
    assert!(clawbacks_owed > 0, "the run made a payee owe at least once");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_clawback_after_payout_is_repaid_from_later_earnings(pool: PgPool) {
    let book = Book::new(pool.clone()).await;
    let hoster = payee(1);
    let spend = |amount: u128, to: Address| {
        let mut posting = Posting::default();
        posting.spend(book.campaign, Amount(amount));
        posting.earn(Party::Hoster, to, Amount(amount));
        posting
    };
    book.post(Source::ReceiptBatch, "1", spend(1_000, hoster))
        .await
        .unwrap();
    assert_eq!(book.epoch().await.unwrap()[&hoster], 1_000);

    // 600 taken back after the leaf paid 1,000: the beneficiary waits, the payee owes.
    let mut clawback = Posting::default();
    clawback.transfer((Party::Hoster, hoster), (Party::Platform, PLATFORM), Amount(600));
    let hold = book
        .post(Source::Clawback, "fraud", clawback)
        .await
        .unwrap()
        .hold_id
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let standing = ledger::standing(&mut conn, CHAIN_ID, hoster, TOKEN).await.unwrap();
    assert_eq!((standing.released, standing.owes()), (Amount(400), Amount(600)));
    let held = holds::held(&pool, PLATFORM, TOKEN).await.unwrap();
    assert_eq!((held[0].reason, held[0].amount), (HoldReason::Recovery, Amount(600)));
    assert!(held[0].note.contains("repaid"), "{}", held[0].note);
    assert!(matches!(
        book.end(hold, HoldOutcome::Released, OffsetDateTime::now_utc()).await,
        Err(HoldError::DebtOutstanding { owes: Amount(600), .. })
    ));
    // A payee cannot move out more than it has released.
    let mut too_much = Posting::default();
    too_much.transfer((Party::Hoster, hoster), (Party::Platform, PLATFORM), Amount(401));
    assert!(matches!(
        book.post(Source::Clawback, "again", too_much).await,
        Err(LedgerError::PayeeShort { .. })
    ));

    // Another payee's earnings settle meanwhile; the hoster's leaf stays where it was.
    book.post(Source::ReceiptBatch, "2", spend(500, payee(2)))
        .await
        .unwrap();
    let leaves = book.epoch().await.unwrap();
    assert_eq!((leaves[&hoster], leaves[&payee(2)]), (1_000, 500));

    // 700 more earned: 600 repay the debt, the leaf grows by 100, and the platform's
    // recovered 600 is released.
    book.post(Source::ReceiptBatch, "3", spend(700, hoster)).await.unwrap();
    assert_eq!(
        holds::release_due(&pool, CHAIN_ID, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    let leaves = book.epoch().await.unwrap();
    assert_eq!((leaves[&hoster], leaves[&PLATFORM]), (1_100, 600));
    assert_eq!(
        leaves.values().sum::<u128>(),
        book.settled().await,
        "every leaf is backed by a debit"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn orders_and_budgets_pay_only_what_they_hold(pool: PgPool) {
    let book = Book::new(pool.clone()).await;
    let now = OffsetDateTime::now_utc();
    let sale = |escrow: Uuid, price: u128| {
        let mut posting = Posting::default();
        posting.spend(escrow, Amount(price));
        posting.earn(Party::Seller, payee(1), Amount(price));
        posting
    };
    let order = book.order(1_000, Duration::from_secs(600), now).await;
    let not_funded = book.post(Source::OrderSale, "unfunded", sale(order.id, 1_000)).await;
    assert!(
        matches!(not_funded, Err(LedgerError::Escrow(EscrowError::NotFunded { .. }))),
        "{not_funded:?}"
    );

    // Underpaid, in the wrong token, or opened by another wallet: refused, and refundable
    // (never debited).
    let underpaid = book.order(1_000, Duration::from_secs(600), now).await;
    mirror_funding(
        &pool,
        underpaid.chain_escrow_id,
        BUYER,
        TOKEN,
        underpaid.ends_at.unix_timestamp(),
        999,
    )
    .await;
    let wrong_token = book.order(1_000, Duration::from_secs(600), now).await;
    mirror_funding(
        &pool,
        wrong_token.chain_escrow_id,
        BUYER,
        Address::repeat_byte(1),
        wrong_token.ends_at.unix_timestamp(),
        1_000,
    )
    .await;
    let stranger = book.order(1_000, Duration::from_secs(600), now).await;
    mirror_funding(
        &pool,
        stranger.chain_escrow_id,
        payee(3),
        TOKEN,
        stranger.ends_at.unix_timestamp(),
        1_000,
    )
    .await;
    for (bad, why) in [
        (&underpaid, "less than its price"),
        (&wrong_token, "another token"),
        (&stranger, "another wallet"),
    ] {
        match book
            .post(Source::OrderSale, &bad.id.to_string(), sale(bad.id, 1_000))
            .await
        {
            Err(LedgerError::Escrow(EscrowError::NotFunded { why: said, .. })) => assert!(said.contains(why), "{said}"),
            other => panic!("{other:?}"),
        }
    }

    // Paid as agreed: the sale posts once; a second posting of the same sale is the first.
    mirror_funding(
        &pool,
        order.chain_escrow_id,
        BUYER,
        TOKEN,
        order.ends_at.unix_timestamp(),
        1_000,
    )
    .await;
    let window = || held(HoldReason::RefundWindow, Some(order.ends_at));
    let first = book
        .post(Source::OrderSale, "sale", sale(order.id, 1_000).hold(window()))
        .await
        .unwrap();
    let again = book
        .post(Source::OrderSale, "sale", sale(order.id, 1_000).hold(window()))
        .await
        .unwrap();
    assert_eq!(
        (first.posting_id, first.created, again.created),
        (again.posting_id, true, false)
    );
    let beyond = book.post(Source::OrderSale, "more", sale(order.id, 1)).await;
    assert!(
        matches!(beyond, Err(LedgerError::Escrow(EscrowError::Short { .. }))),
        "{beyond:?}"
    );

    // An empty budget: the bonus waits, saying why, and goes out once the budget is funded.
    let mut bonus = Posting::default();
    bonus.spend(book.budget, Amount(300));
    bonus.earn(Party::Referrer, payee(2), Amount(300));
    assert!(matches!(
        book.post(Source::Program, "bonus", bonus.clone()).await,
        Err(LedgerError::Escrow(EscrowError::NotFunded { .. }))
    ));
    let waiting = book
        .post(
            Source::Program,
            "bonus",
            bonus.hold(held(HoldReason::BudgetEmpty, None)),
        )
        .await
        .unwrap();
    assert_eq!(
        holds::release_due(&pool, CHAIN_ID, now).await.unwrap(),
        0,
        "nothing to pay it from yet"
    );
    let shown = holds::held(&pool, payee(2), TOKEN).await.unwrap();
    assert_eq!(
        (shown[0].reason, shown[0].amount),
        (HoldReason::BudgetEmpty, Amount(300))
    );
    mirror_funding(&pool, book.budget_chain_id, TREASURY, TOKEN, END, 300).await;
    assert_eq!(holds::release_due(&pool, CHAIN_ID, now).await.unwrap(), 1);
    assert_eq!(book.released(payee(2)).await, 300);
    assert!(matches!(
        book.end(waiting.hold_id.unwrap(), HoldOutcome::Reversed, now).await,
        Err(HoldError::Ended {
            outcome: HoldOutcome::Released,
            ..
        })
    ));
    let leaves = book.epoch().await.unwrap();
    assert_eq!(leaves.get(&payee(1)), None, "the sale is still in its refund window");
    assert_eq!(leaves[&payee(2)], 300);
}

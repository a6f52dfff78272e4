//! Every kind of escrow account on anvil: a program budget opened and topped up from the
//! treasury through the outbox, orders paid from a buyer's wallet (one sold and released
//! after its refund window, one refunded inside it), and one epoch that debits a campaign,
//! an order and a program budget together, whose payees then claim once each.

use adescrow::money::escrow::{self, NewOrder, Order};
use adescrow::money::holds::{self, Ending, HoldReason};
use adescrow::money::ledger::NewHold;
use adescrow::money::treasury::{self, NewBudget, Treasury, TreasuryConfig};
use adescrow::platform::outbox::Outbox;
use adescrow::platform::values::Name;
use alloy::sol_types::SolCall;
use time::OffsetDateTime;

use super::*;

const TREASURY: usize = 4;
const HOSTER: usize = 5;
const SELLER: usize = 6;
const REFERRER: usize = 7;
const BUYER: usize = 8;

impl World {
    fn key(&self, index: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(self.chain.anvil.keys()[index].clone())
    }

    pub(super) fn treasury(&self) -> Treasury {
        let outbox = Outbox::new(
            self.pool.clone(),
            ChainRpc::new(self.chain.anvil.endpoint_url(), CHAIN_ID, Duration::from_secs(5)).role("treasury"),
            EthereumWallet::new(self.key(TREASURY)),
            OutboxConfig {
                confirmations: 1,
                replace_after: Duration::from_secs(600),
                fee_ceiling: 1_000 * GWEI,
            },
        );
        let config = TreasuryConfig {
            escrow: self.chain.deployment.ad_escrow.address,
            poll_interval: Duration::from_millis(50),
        };
        Treasury::new(self.pool.clone(), outbox, config)
    }

    /// Ticks the treasury (mining a block after each tick) until every funding is confirmed.
    pub(super) async fn fund_all(&self, treasury: &Treasury) {
        for _ in 0..40 {
            treasury.tick().await.unwrap();
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM program_fundings f WHERE NOT EXISTS (
                     SELECT 1 FROM outbox o WHERE o.key = f.id::text AND o.status = 'confirmed')",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if open == 0 {
                return;
            }
            self.chain.mine(1).await;
        }
        panic!("the fundings were never confirmed");
    }

    pub(super) async fn admin_id(&self) -> Uuid {
        sqlx::query_scalar("INSERT INTO users (address) VALUES ($1) RETURNING id")
            .bind(PrivateKeySigner::random().address().as_slice())
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The buyer approves the escrow for the order and sends the order's own open call.
    async fn pay(&self, order: &Order) {
        self.chain
            .fund_wallet(self.chain.token, BUYER, U256::from(order.price.0))
            .await;
        send(self, &self.key(BUYER), order.open_calldata.clone()).await;
    }

    async fn post(&self, source: Source, id: &str, posting: Posting) -> Result<Option<i64>, ledger::LedgerError> {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let posted = ledger::post(
            &mut tx,
            CHAIN_ID,
            source,
            id,
            &BTreeMap::from([(self.chain.token, posting)]),
        )
        .await?;
        tx.commit().await.unwrap();
        Ok(posted[0].hold_id)
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_campaign_an_order_and_a_program_budget_settle_in_one_epoch(pool: PgPool) {
    let world = World::new(pool).await;
    let mut follower = world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0);
    let relayer = world.relayer(1);
    let addresses = world.chain.anvil.addresses().to_vec();
    let (hoster, seller, referrer, buyer) = (
        addresses[HOSTER],
        addresses[SELLER],
        addresses[REFERRER],
        addresses[BUYER],
    );
    let now = OffsetDateTime::now_utc();

    // The treasury holds tokens; a budget is opened with 3,000 and topped up with 2,000,
    // both sent through the outbox with the treasury key.
    TestToken::new(world.chain.token, world.chain.wallet(TREASURY))
        .mint(addresses[TREASURY], U256::from(1_000_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let admin = world.admin_id().await;
    let new = NewBudget {
        name: Name::parse("Referral rewards").unwrap(),
        token: world.chain.token,
        ends_at: now + time::Duration::days(30),
        amount: Amount(3_000),
    };
    let mut conn = world.pool.acquire().await.unwrap();
    let budget = treasury::create(&mut conn, addresses[TREASURY], &new, admin, now)
        .await
        .unwrap();
    let treasury = world.treasury();
    world.fund_all(&treasury).await;
    treasury::fund(&mut conn, budget, Amount(2_000), admin, now)
        .await
        .unwrap();
    world.fund_all(&treasury).await;
    sync(&mut follower).await;
    let shown = treasury::get(&world.pool, CHAIN_ID, budget).await.unwrap().unwrap();
    assert_eq!((shown.funded.as_str(), shown.fundings.len()), ("5000", 2), "{shown:?}");
    assert!(
        shown
            .fundings
            .iter()
            .all(|f| f.status == "confirmed" && f.tx_hash.is_some())
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM outbox WHERE kind LIKE 'treasury%' OR kind LIKE 'budget%' ORDER BY id")
            .fetch_all(&world.pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        ["treasury_approve", "budget_open", "budget_fund"],
        "one allowance, then open and top-up"
    );
    let on_chain = AdEscrow::new(world.chain.deployment.ad_escrow.address, world.chain.wallet(0))
        .campaign(shown.chain_escrow_id)
        .call()
        .await
        .unwrap();
    assert_eq!(
        (on_chain.advertiser, on_chain.remaining),
        (addresses[TREASURY], U256::from(5_000))
    );

    // Two orders paid from the buyer's wallet, each with a short refund window.
    let window = std::time::Duration::from_secs(3);
    let order = |price| NewOrder {
        buyer,
        token: world.chain.token,
        price: Amount(price),
        refund_window: window,
    };
    let sold = escrow::open_order(&mut conn, &order(1_000), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let refunded = escrow::open_order(&mut conn, &order(400), OffsetDateTime::now_utc())
        .await
        .unwrap();
    world.pay(&sold).await;
    world.pay(&refunded).await;
    sync(&mut follower).await;
    let sale = |order: &Order, price: u128| {
        let mut posting = Posting::default();
        posting.spend(order.id, Amount(price));
        posting.earn(Role::Seller, seller, Amount(price * 85 / 100));
        posting.earn(Role::Platform, addresses[0], Amount(price - price * 85 / 100));
        posting.hold(NewHold {
            reason: HoldReason::RefundWindow,
            until: Some(order.ends_at),
            note: "the order's refund window".into(),
            debtor: None,
            settled_after: None,
        })
    };
    let sold_hold = world
        .post(Source::OrderSale, &sold.id.to_string(), sale(&sold, 1_000))
        .await
        .unwrap()
        .unwrap();
    let refund_hold = world
        .post(Source::OrderSale, &refunded.id.to_string(), sale(&refunded, 400))
        .await
        .unwrap()
        .unwrap();
    // More than the order holds is refused, and so is a second sale of it.
    let mut greedy = Posting::default();
    greedy.spend(sold.id, Amount(1));
    greedy.earn(Role::Seller, seller, Amount(1));
    assert!(matches!(
        world.post(Source::OrderSale, "greedy", greedy).await,
        Err(ledger::LedgerError::Escrow(escrow::EscrowError::Short { .. }))
    ));

    // The buyer asks for a refund of the second inside its window.
    let mut tx = conn.begin().await.unwrap();
    let refund = Ending {
        by: Some(admin),
        reason: "the buyer asked for a refund".into(),
    };
    holds::reverse(&mut tx, refund_hold, &refund).await.unwrap();
    tx.commit().await.unwrap();

    // A referral bonus from the budget, and a campaign's spend.
    let mut bonus = Posting::default();
    bonus.spend(budget, Amount(500));
    bonus.earn(Role::Referrer, referrer, Amount(500));
    world.post(Source::Program, "bonus-1", bonus).await.unwrap();
    world.owe("campaign-spend", &[(hoster, 2_000)]).await;

    // Nothing of the sale is due before the window ends; then the relayer releases it and
    // one epoch debits all three escrows.
    assert_eq!(holds::release_due(&world.pool, CHAIN_ID, now).await.unwrap(), 0);
    tokio::time::sleep(window + Duration::from_secs(1)).await;
    world.settle(&relayer, 1).await;
    let debits: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT chain_escrow_id, amount::text AS shown FROM settlement_debits WHERE epoch = 1 ORDER BY amount",
    )
    .fetch_all(&world.pool)
    .await
    .unwrap();
    let mut expected = vec![
        (sold.chain_escrow_id.to_vec(), "1000".to_owned()),
        (shown.chain_escrow_id.to_vec(), "500".to_owned()),
        (world.chain.campaign.to_vec(), "2000".to_owned()),
    ];
    expected.sort_by_key(|(_, amount)| amount.parse::<u64>().unwrap());
    assert_eq!(
        debits, expected,
        "the campaign, the sold order and the budget, not the refunded order"
    );
    let ended: String = sqlx::query_scalar("SELECT outcome::text FROM ledger_hold_ends WHERE hold_id = $1")
        .bind(sold_hold)
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(ended, "released");
    world.assert_settled_once(1, 3_500).await;
    sync(&mut follower).await;

    // Each payee claims once, with the API's proof.
    for (index, amount) in [(HOSTER, "2000"), (SELLER, "850"), (REFERRER, "500")] {
        let claimer = world.key(index);
        let balance = world.token_balance(claimer.address()).await;
        claim_with_api_proof(&world, &claimer, amount, "0", amount).await;
        assert_eq!(
            world.token_balance(claimer.address()).await,
            balance + U256::from(amount.parse::<u64>().unwrap())
        );
    }
    sync(&mut follower).await;
    let seller_view = world.app.get(&format!("/v1/payouts/{seller}"), None).await;
    let token = &seller_view.ok()["tokens"][0];
    assert_eq!(
        (&token["accrued"], &token["released"], &token["claimed"], &token["owed"]),
        (&json!("850"), &json!("850"), &json!("850"), &json!("0")),
        "{token}"
    );
    assert!(token["claimedTx"].is_string(), "{token}");

    // The chain mirror names each escrow's kind.
    let escrow = world
        .app
        .get(&format!("/v1/escrow/campaigns/{}", refunded.chain_escrow_id), None)
        .await;
    assert_eq!(
        (&escrow.ok()["kind"], &escrow.body["debited"]),
        (&json!("order"), &json!("0"))
    );

    // After end + grace the buyer takes the refunded order's escrow back, with no operator.
    let provider = world.chain.wallet(0);
    provider.anvil_increase_time(86_400 + 10).await.unwrap();
    world.chain.mine(1).await;
    let before = world.token_balance(buyer).await;
    let withdraw = AdEscrow::withdrawCall {
        campaignId: refunded.chain_escrow_id,
    };
    send(&world, &world.key(BUYER), withdraw.abi_encode().into()).await;
    assert_eq!(world.token_balance(buyer).await, before + U256::from(400));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_funding_the_chain_refuses_fails_with_its_reason_and_the_next_one_opens_the_budget(pool: PgPool) {
    let world = World::new(pool).await;
    let treasury_address = world.chain.anvil.addresses()[TREASURY];
    let now = OffsetDateTime::now_utc();
    let admin = world.admin_id().await;
    let new = NewBudget {
        name: Name::parse("Promo credits").unwrap(),
        token: world.chain.token,
        ends_at: now + time::Duration::days(30),
        amount: Amount(3_000),
    };
    let mut conn = world.pool.acquire().await.unwrap();
    let budget = treasury::create(&mut conn, treasury_address, &new, admin, now)
        .await
        .unwrap();
    let treasury = world.treasury();

    // The treasury holds no tokens: the opening is refused in simulation, before any gas.
    for _ in 0..6 {
        treasury.tick().await.unwrap();
        world.chain.mine(1).await;
    }
    let shown = treasury::get(&world.pool, CHAIN_ID, budget).await.unwrap().unwrap();
    let first = &shown.fundings[0];
    assert_eq!(first.status, "failed", "{shown:?}");
    assert!(
        first.error.as_deref().is_some_and(|e| e.contains("refuses")),
        "{first:?}"
    );
    assert_eq!(first.tx_hash, None);

    // Funded now, a new funding opens the budget; the failed one stays failed.
    TestToken::new(world.chain.token, world.chain.wallet(TREASURY))
        .mint(treasury_address, U256::from(1_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let second = treasury::fund(&mut conn, budget, Amount(1_000), admin, now)
        .await
        .unwrap();
    for _ in 0..20 {
        treasury.tick().await.unwrap();
        world.chain.mine(1).await;
    }
    let mut follower = world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0);
    sync(&mut follower).await;
    let shown = treasury::get(&world.pool, CHAIN_ID, budget).await.unwrap().unwrap();
    let statuses: Vec<(&str, bool)> = shown
        .fundings
        .iter()
        .map(|f| (f.status.as_str(), f.id == second))
        .collect();
    assert_eq!(statuses, [("failed", false), ("confirmed", true)], "{shown:?}");
    assert_eq!(shown.funded, "1000");
    let opens: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'budget_open'")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(opens, 2, "the refused opening and the one that opened it");
}

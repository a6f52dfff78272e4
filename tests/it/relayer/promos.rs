//! A promo credit on anvil, through the API: an advertiser who funded its campaign with
//! 5,000 redeems a 10,000 credit. Billing can spend only the advertiser's 5,000 until the
//! treasury's funding of the campaign is confirmed on chain; then the credit is real escrow
//! that billing spends and the epoch debits, and the program budget repays the treasury,
//! which claims it. A credit whose campaign closed before the treasury could fund it fails,
//! and the budget is not charged for it.

use adescrow::money::treasury::{self, NewBudget};
use adescrow::platform::values::Name;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

const ADVERTISER: usize = 3;
const TREASURY: usize = 4;
const WITNESS: usize = 9;

impl World {
    /// Ticks the treasury (mining a block after each tick) until no promo credit is waiting
    /// for its funding to be mined and confirmed, or failed.
    async fn send_credits(&self, treasury: &adescrow::money::treasury::Treasury) {
        for _ in 0..40 {
            treasury.tick().await.unwrap();
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM promo_redemptions r WHERE r.offer = 'ad_credit' AND NOT EXISTS (
                     SELECT 1 FROM outbox o WHERE o.key = r.id::text AND o.status IN ('confirmed', 'failed'))",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if open == 0 {
                return;
            }
            self.chain.mine(1).await;
        }
        panic!("the credits were never sent");
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_promo_credit_lands_in_the_campaigns_escrow_is_spent_and_repays_the_treasury(pool: PgPool) {
    let world = World::new(pool.clone()).await;
    let mut follower = world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0);
    let relayer = world.relayer(1);
    let escrow = world.chain.deployment.ad_escrow.address;
    let keys = |i: usize| PrivateKeySigner::from(world.chain.anvil.keys()[i].clone());
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool.clone(), |config| {
        config.escrow_address = Some(escrow);
        config.consent_address = Some(world.chain.deployment.consent_registry.address);
        config.grace_period = Some(86_400);
        config.admin_addresses = vec![admin.address()];
    });
    let admin_token = app.token(&admin).await;
    let now = OffsetDateTime::now_utc();

    // The treasury funds a 100,000 budget for promotions on chain.
    let treasury_wallet = keys(TREASURY);
    TestToken::new(world.chain.token, world.chain.wallet(TREASURY))
        .mint(treasury_wallet.address(), U256::from(1_000_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let mut conn = world.pool.acquire().await.unwrap();
    let new = NewBudget {
        name: Name::parse("Promotions").unwrap(),
        token: world.chain.token,
        ends_at: now + time::Duration::days(30),
        amount: Amount(100_000),
    };
    let budget = treasury::create(&mut conn, treasury_wallet.address(), &new, world.admin_id().await, now)
        .await
        .unwrap();
    let treasury = world.treasury();
    world.fund_all(&treasury).await;
    sync(&mut follower).await;

    let window = |days: i64| (now + time::Duration::days(days)).format(&Rfc3339).unwrap();
    let mut codes = Vec::new();
    for code in ["WELCOME-10K", "AGAIN-10K"] {
        let created = app
            .post(
                "/v1/admin/promotions",
                Some(&admin_token),
                json!({ "code": code, "name": "Welcome", "startsAt": window(-1), "endsAt": window(30),
                        "offer": { "kind": "adCredit", "budget": budget, "credit": "10000" },
                        "minBudget": "5000", "firstTimeOnly": code == "WELCOME-10K", "publish": true }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        codes.push(code);
    }

    // The advertiser funds a campaign with 5,000 of its own and redeems the welcome credit.
    let advertiser = chain_advertiser(&world, &app, ADVERTISER).await;
    let mut campaigns = Vec::new();
    for name in ["credited", "closed"] {
        campaigns.push(open_campaign(&world, &app, &advertiser, ADVERTISER, name, 5_000).await);
    }
    sync(&mut follower).await;
    let (campaign, escrow_id) = campaigns[0].clone();
    let redeemed = app
        .post(
            "/v1/promotions/welcome-10k/redemptions",
            Some(&advertiser.token),
            json!({ "campaignId": campaign }),
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::CREATED, "{}", redeemed.text);
    assert_eq!(redeemed.body["credit"], "10000");
    assert_eq!(redeemed.body["creditStatus"], "waiting");

    // Until the credit lands, billing spends only what the advertiser funded: 5 of 10.
    let mut serving = Serving::start(&world, &app, &campaign, &keys(WITNESS)).await;
    assert_eq!(
        serving.bill(&world, &app, 10).await,
        5,
        "the advertiser's own 5,000 at 1,000 each"
    );

    // The treasury funds the campaign; once confirmed the credit is the campaign's escrow.
    world.send_credits(&treasury).await;
    sync(&mut follower).await;
    let on_chain = AdEscrow::new(escrow, world.chain.wallet(0))
        .campaign(escrow_id)
        .call()
        .await
        .unwrap();
    assert_eq!(
        on_chain.remaining,
        U256::from(15_000),
        "5,000 of its own and the 10,000 credit"
    );
    let mine = app.get("/v1/me/promotions", Some(&advertiser.token)).await;
    assert_eq!(mine.ok()[0]["creditStatus"], "confirmed", "{}", mine.text);
    assert!(mine.body[0]["creditTx"].as_str().unwrap().starts_with("0x"));
    assert_eq!(
        serving.bill(&world, &app, 10).await,
        10,
        "the credit is spent like the advertiser's own"
    );
    assert_eq!(serving.bill(&world, &app, 10).await, 0, "and no more than it");

    // The epoch debits the campaign for all 15 billed and the budget for the credit, which
    // the treasury claims back with the API's proof.
    world.settle(&relayer, 1).await;
    sync(&mut follower).await;
    let before = world.token_balance(treasury_wallet.address()).await;
    claim_with_api_proof(&world, &treasury_wallet, "10000", "0", "10000").await;
    assert_eq!(
        world.token_balance(treasury_wallet.address()).await - before,
        U256::from(10_000)
    );
    let settled = AdEscrow::new(escrow, world.chain.wallet(0))
        .campaign(escrow_id)
        .call()
        .await
        .unwrap();
    assert_eq!(settled.remaining, U256::ZERO, "15,000 debited by the epoch");

    // A first-time credit is not for an advertiser now billed; the other code is, but its
    // campaign closes before the treasury can fund it: the funding fails, the budget keeps
    // its money, and the advertiser sees why.
    let (closed, closed_escrow) = campaigns[1].clone();
    let returning = app
        .post(
            "/v1/promotions/WELCOME-10K/redemptions",
            Some(&advertiser.token),
            json!({ "campaignId": closed }),
        )
        .await;
    returning.problem(StatusCode::CONFLICT, "conflict");
    let redeemed = app
        .post(
            &format!("/v1/promotions/{}/redemptions", codes[1]),
            Some(&advertiser.token),
            json!({ "campaignId": closed }),
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::CREATED, "{}", redeemed.text);
    AdEscrow::new(escrow, world.chain.wallet(ADVERTISER))
        .closeCampaign(closed_escrow)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    world.chain.mine(1).await;
    world.send_credits(&treasury).await;
    let mine = app.get("/v1/me/promotions", Some(&advertiser.token)).await;
    let failed = &mine.ok()[0];
    assert_eq!(failed["creditStatus"], "failed", "{}", mine.text);
    assert!(failed["creditError"].as_str().is_some(), "{}", mine.text);
    let budget = app
        .get(&format!("/v1/program-budgets/{budget}"), Some(&admin_token))
        .await;
    assert_eq!(
        budget.ok()["spent"],
        "10000",
        "only the credit that landed: {}",
        budget.text
    );
}

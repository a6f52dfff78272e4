//! A referrer and an affiliate on anvil, through the API: a hoster signs up with the
//! referrer's code, an advertiser names the affiliate's code with a campaign, and real
//! witnessed impressions are billed. The referrer's bonus waits for the referral budget to be
//! funded on chain, the commission for its spend to be settled; both are then paid by an
//! epoch and claimed with the API's proofs, the affiliate's in the same claim as what it
//! earned witnessing.

use adescrow::money::treasury::{self, NewBudget};
use adescrow::platform::values::Name;
use adescrow::programs::affiliates::{self, Status};
use adescrow::programs::growth;
use adescrow::programs::referrals::rules::{self, NewRules, TokenRule};
use alloy::primitives::aliases::U40;
use time::OffsetDateTime;

use super::*;
use crate::fixtures::{Node, decide, node_token, tick};
use crate::receipts::{receipt, signed_under};

const ADVERTISER: usize = 3;
const TREASURY: usize = 4;
const REFERRER: usize = 7;
const AFFILIATE: usize = 9;

/// `owner` takes the hoster role and registers a node with a proof of possession.
pub(super) async fn register_node(app: &TestApp, owner: &PrivateKeySigner, token: &str, can_witness: bool) -> Node {
    app.post("/v1/me/roles", Some(token), json!({ "role": "hoster" }))
        .await
        .ok();
    let key = PrivateKeySigner::random();
    let message = adescrow::accounts::nodes::registration_message(owner.address(), key.address(), CHAIN_ID);
    let registered = app
        .post(
            "/v1/nodes",
            Some(token),
            json!({ "address": key.address(), "name": "edge", "canWitness": can_witness,
                    "signature": crate::support::personal_sign(&key, &message) }),
        )
        .await;
    Node {
        key,
        id: registered.ok()["id"].as_str().unwrap().to_owned(),
        owner: owner.clone(),
        owner_token: token.to_owned(),
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_referrer_and_an_affiliate_earn_wait_out_their_holds_and_claim(pool: PgPool) {
    let world = World::new(pool.clone()).await;
    let mut follower = world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0);
    let relayer = world.relayer(1);
    let keys = |i: usize| PrivateKeySigner::from(world.chain.anvil.keys()[i].clone());
    let (escrow, registry) = (
        world.chain.deployment.ad_escrow.address,
        world.chain.deployment.consent_registry.address,
    );
    // The API as it runs: commissions held for no time beyond their spend's settlement.
    let app = TestApp::with(pool.clone(), |config| {
        config.escrow_address = Some(escrow);
        config.consent_address = Some(registry);
        config.grace_period = Some(86_400);
        config.growth.affiliate_hold = Duration::ZERO;
    });
    let now = OffsetDateTime::now_utc();

    // The referral program: one qualified referral earns 300 from a budget the treasury has
    // been asked to fund, but has not funded yet.
    let treasury_address = world.chain.anvil.addresses()[TREASURY];
    TestToken::new(world.chain.token, world.chain.wallet(TREASURY))
        .mint(treasury_address, U256::from(1_000_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let admin = world.admin_id().await;
    let mut conn = world.pool.acquire().await.unwrap();
    let new = NewBudget {
        name: Name::parse("Referral rewards").unwrap(),
        token: world.chain.token,
        ends_at: now + time::Duration::days(30),
        amount: Amount(500),
    };
    let budget = treasury::create(&mut conn, treasury_address, &new, admin, now)
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    let rules = NewRules {
        milestone: 1,
        cooldown: Duration::ZERO,
        network_window: Duration::from_secs(30 * 86_400),
        // In process, requests carry no peer address to hash.
        require_network: false,
        tokens: vec![TokenRule {
            token: world.chain.token,
            min_billed: Amount(1),
            min_earned: Amount(1),
            bonus: Amount(300),
            budget_id: budget,
        }],
    };
    rules::create(&mut tx, &rules, admin).await.unwrap();
    tx.commit().await.unwrap();

    // The hoster signs up with the referrer's code and registers a node.
    let referrer = keys(REFERRER);
    let referrer_token = app.token(&referrer).await;
    let code = app.get("/v1/referrals/me", Some(&referrer_token)).await.ok()["code"].clone();
    let hoster = PrivateKeySigner::random();
    let signed_up = app.sign_in_with(&hoster, code.as_str()).await;
    let hoster_token = signed_up.ok()["accessToken"].as_str().unwrap().to_owned();
    let node = register_node(&app, &hoster, &hoster_token, false).await;

    // The affiliate runs the witness node too, and is approved as an affiliate.
    let partner = keys(AFFILIATE);
    let partner_token = app.token(&partner).await;
    let witness = register_node(&app, &partner, &partner_token, true).await;
    let applied = app
        .post("/v1/affiliates/me", Some(&partner_token), json!({ "reason": "agency" }))
        .await;
    let partner_id: Uuid = applied.ok()["userId"].as_str().unwrap().parse().unwrap();
    affiliates::change_status(&world.pool, partner_id, Status::Active, admin, "approved")
        .await
        .unwrap();
    let partner_token = app.token(&partner).await;
    let affiliate_code = app
        .post("/v1/affiliates/me/codes", Some(&partner_token), json!({}))
        .await
        .ok()["code"]
        .clone();
    // The advertiser (anvil's account 3) names the code with its campaign, and funds that
    // campaign's escrow from its wallet.
    let advertiser = chain_advertiser(&world, &app, ADVERTISER).await;
    let escrow_id = keccak256("attributed campaign");
    let (campaign, _) = advertiser
        .campaign(
            &app,
            json!({ "token": world.chain.token, "chainCampaignId": escrow_id, "affiliateCode": affiliate_code }),
            json!({ "cpm": "1000000" }),
        )
        .await;
    AdEscrow::new(escrow, world.chain.wallet(ADVERTISER))
        .openCampaign(
            escrow_id,
            world.chain.token,
            U256::from(1_000_000),
            U40::from(4_000_000_000u64),
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    // Ten witnessed impressions of 1,000: the hoster earns 9,000, the platform 900, of which
    // the affiliate's 20% is 180.
    sync(&mut follower).await;
    let campaign = campaign["id"].as_str().unwrap().to_owned();
    let at = now.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(tick(&world.pool, &campaign, &at).await, "RUNNING");
    app.state.ad_server.refresh().await.unwrap();
    let session = node_token(&app, &node).await;
    let mut receipts = Vec::new();
    for _ in 0..10 {
        let decision = decide(&app, &session, json!({ "placement": "feed-top-banner" })).await;
        let ticket = decision["ads"][0]["ticket"].as_str().expect("an ad").to_owned();
        receipts.push(receipt(
            &ticket,
            "impression",
            OffsetDateTime::now_utc().unix_timestamp(),
            None,
        ));
    }
    let batch = signed_under(CHAIN_ID, escrow, &node.key, Some(&witness.key), 1, &receipts);
    let billed = app.post("/v1/receipts", None, batch).await;
    assert_eq!(billed.ok()["billed"], 10, "{}", billed.text);

    // The programs' pass: the commission accrues held, the bonus waits for its budget.
    let pass = growth::tick(&world.pool, CHAIN_ID, &app.state.growth, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!((pass.accrued, pass.bonuses.awarded, pass.released), (1, 1, 0));
    let snapshot = app.get("/v1/referrals/me/snapshot", Some(&referrer_token)).await;
    assert_eq!(snapshot.ok()["qualified"], 1);
    assert_eq!(snapshot.body["bonuses"][0]["state"], "held", "{}", snapshot.text);
    let dashboard = app.get("/v1/affiliates/me/dashboard", Some(&partner_token)).await;
    assert_eq!(dashboard.ok()["commissions"][0]["state"], "held", "{}", dashboard.text);
    assert_eq!(dashboard.body["commissions"][0]["amount"], "180");

    // The treasury funds the budget on chain; the next epoch releases the bonus and pays it
    // with everything billed, while the commission waits for that epoch to settle.
    let treasury = world.treasury();
    world.fund_all(&treasury).await;
    sync(&mut follower).await;
    world.settle(&relayer, 1).await;
    sync(&mut follower).await;
    let snapshot = app.get("/v1/referrals/me/snapshot", Some(&referrer_token)).await;
    assert_eq!(snapshot.ok()["bonuses"][0]["state"], "released", "{}", snapshot.text);
    let pass = growth::tick(&world.pool, CHAIN_ID, &app.state.growth, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(pass.released, 1, "settled and past its (zero) window: released");
    world.settle(&relayer, 2).await;
    sync(&mut follower).await;
    let dashboard = app.get("/v1/affiliates/me/dashboard", Some(&partner_token)).await;
    assert_eq!(
        dashboard.ok()["commissions"][0]["state"],
        "claimable",
        "{}",
        dashboard.text
    );
    assert_eq!(dashboard.body["commissions"][0]["epoch"], 2);

    // Each claims with the API's proof, and receives exactly what it was owed: the
    // affiliate's one claim pays its witness share (100) and its commission together.
    for (claimer, owed) in [(&referrer, 300u64), (&partner, 280)] {
        let before = world.token_balance(claimer.address()).await;
        let owed = owed.to_string();
        claim_with_api_proof(&world, claimer, &owed, "0", &owed).await;
        let after = world.token_balance(claimer.address()).await;
        assert_eq!(after - before, U256::from_str_radix(&owed, 10).unwrap());
    }
    let hoster_payout = app.get(&format!("/v1/payouts/{}", hoster.address()), None).await;
    assert_eq!(
        hoster_payout.ok()["tokens"][0]["claimable"],
        "9000",
        "the referee's own earnings are whole"
    );
    sync(&mut follower).await;
    let dashboard = app.get("/v1/affiliates/me/dashboard", Some(&partner_token)).await;
    let commission = &dashboard.ok()["commissions"][0];
    assert_eq!(commission["state"], "claimed", "{}", dashboard.text);
    assert!(commission["claimedTx"].as_str().unwrap().starts_with("0x"));
}

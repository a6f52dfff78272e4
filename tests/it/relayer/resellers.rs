//! A reseller's markup on anvil: an advertiser joins an agency in business, its witnessed
//! impressions are billed, the markup leaves the platform's share at the agency's tier, an
//! epoch pays it, and the agency claims exactly it with the API's proof.

use adescrow::programs::growth;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

const ADVERTISER: usize = 3;
const AGENCY: usize = 7;
const WITNESS: usize = 9;

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_reseller_claims_its_markup_on_chain(pool: PgPool) {
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
    let admin = app.token(&admin).await;
    let now = OffsetDateTime::now_utc();
    let at = |days: i64| (now + time::Duration::days(days)).format(&Rfc3339).unwrap();

    // The agency applies; an admin approves and activates its contract and sets its tier:
    // the platform keeps 5% of the price, the rest of its 9% share is the agency's.
    let agency = keys(AGENCY);
    let agency_token = app.token(&agency).await;
    let reseller = app
        .post(
            "/v1/resellers/me",
            Some(&agency_token),
            json!({ "name": "North Agency", "application": "We resell in the north" }),
        )
        .await
        .ok()
        .clone();
    let contract = app
        .post(
            "/v1/resellers/me/contracts",
            Some(&agency_token),
            json!({ "startsAt": at(-1), "endsAt": at(365), "terms": "5% platform fee" }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let submit = json!({ "status": "pending_approval", "reason": "signed" });
    app.post(
        &format!("/v1/resellers/me/contracts/{contract}/status"),
        Some(&agency_token),
        submit,
    )
    .await
    .ok();
    for status in ["approved", "active"] {
        app.post(
            &format!("/v1/admin/reseller-contracts/{contract}/status"),
            Some(&admin),
            json!({ "status": status, "reason": "agreed" }),
        )
        .await
        .ok();
    }
    let today = now.date().to_string();
    let tiers = app
        .call(
            axum::http::Method::PUT,
            &format!("/v1/admin/resellers/{}/tiers", reseller["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({ "token": world.chain.token, "effectiveFrom": today,
                         "tiers": [{ "minVolume": "0", "feeBps": 500 }] })),
        )
        .await;
    tiers.ok();

    // The advertiser joins with the agency's code and funds a campaign on chain.
    let advertiser = chain_advertiser(&world, &app, ADVERTISER).await;
    app.post(
        "/v1/resellers/join",
        Some(&advertiser.token),
        json!({ "code": reseller["code"] }),
    )
    .await
    .ok();
    let (campaign, _) = open_campaign(&world, &app, &advertiser, ADVERTISER, "resold campaign", 1_000_000).await;
    sync(&mut follower).await;

    // Ten impressions of 1,000: the platform's share is 900, its 5% fee 500, the markup 400.
    let mut serving = Serving::start(&world, &app, &campaign, &keys(WITNESS)).await;
    assert_eq!(serving.bill(&world, &app, 10).await, 10);
    let pass = growth::tick(&world.pool, CHAIN_ID, &app.state.growth, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(pass.markups, 1);
    let dashboard = app.get("/v1/resellers/me", Some(&agency_token)).await;
    let markup = &dashboard.ok()["markups"][0];
    assert_eq!(
        (markup["amount"].clone(), markup["feeBps"].clone()),
        (json!("400"), json!(500))
    );

    world.settle(&relayer, 1).await;
    sync(&mut follower).await;
    let before = world.token_balance(agency.address()).await;
    claim_with_api_proof(&world, &agency, "400", "0", "400").await;
    assert_eq!(world.token_balance(agency.address()).await - before, U256::from(400));
    let platform = app
        .get(&format!("/v1/payouts/{}", app.state.split.platform), None)
        .await;
    assert_eq!(
        platform.ok()["tokens"][0]["cumulative"],
        "500",
        "the platform keeps its fee"
    );
}

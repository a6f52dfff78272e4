//! Tracking with real keys and signatures: witnessed batches are billed once and split
//! exactly; every refusal has its reason; resubmission and concurrency never bill twice or
//! past a budget; the ledger always balances.

use std::collections::HashSet;
use std::time::Duration;

use adescrow::contracts::ReceiptBatch;
use adescrow::db::MIGRATOR;
use adescrow::pricing::EventType;
use adescrow::tracking::batch::{self, Receipt};
use alloy::primitives::{Address, B256, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use rand::Rng;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::fixtures::*;
use crate::support::*;

const ESCROW: Address = Address::repeat_byte(0xe5);
const PLATFORM: Address = Address::repeat_byte(0xfa);

/// An advertiser's running campaign, a hoster node with a session, and a witness node of
/// another owner. The campaign targets a region of its own, so that decisions in a test
/// with several worlds pick this world's campaign.
struct World {
    app: TestApp,
    advertiser: Advertiser,
    campaign: String,
    region: String,
    hoster: Node,
    witness: Node,
    hoster_session: String,
}

impl World {
    async fn new(pool: PgPool, campaign: Value, prices: Value, funded: u128) -> World {
        Self::with(TestApp::new(pool), campaign, prices, funded, 1_000_000_000).await
    }

    async fn with(app: TestApp, mut campaign: Value, prices: Value, funded: u128, daily_budget: u128) -> World {
        let region = format!("region-{}", rand::rng().random::<u32>());
        let targeting = campaign
            .as_object_mut()
            .unwrap()
            .entry("targeting")
            .or_insert_with(|| json!({}));
        targeting["regions"] = json!([region]);
        let advertiser = Advertiser::new(&app, "UTC", daily_budget, daily_budget * 30).await;
        let (created, _) = advertiser.campaign(&app, campaign, prices).await;
        advertiser.fund(&app.pool, &created, funded).await;
        let campaign = created["id"].as_str().unwrap().to_owned();
        let now = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        assert_eq!(tick(&app.pool, &campaign, &now).await, "RUNNING");
        let hoster = hoster_node(&app, false).await;
        let witness = hoster_node(&app, true).await;
        app.state.ad_server.refresh().await.unwrap();
        let hoster_session = node_token(&app, &hoster).await;
        World {
            app,
            advertiser,
            campaign,
            region,
            hoster,
            witness,
            hoster_session,
        }
    }

    /// `n` tickets for the hoster, for `viewer` when given.
    async fn tickets(&self, n: usize, viewer: Option<&str>) -> Vec<String> {
        self.tickets_for(&self.hoster_session, n, viewer).await
    }

    async fn tickets_for(&self, session: &str, n: usize, viewer: Option<&str>) -> Vec<String> {
        let mut tickets = Vec::with_capacity(n);
        for _ in 0..n {
            let mut request = json!({ "placement": "feed-top-banner", "region": self.region });
            if let Some(viewer) = viewer {
                request["viewer"] = json!(viewer);
            }
            let decision = decide(&self.app, session, request).await;
            tickets.push(decision["ads"][0]["ticket"].as_str().expect("an ad").to_owned());
        }
        tickets
    }

    async fn submit(&self, sequence: u64, receipts: &[Value], witnessed: bool) -> Reply {
        let witness = witnessed.then_some(&self.witness.key);
        self.app
            .post(
                "/v1/receipts",
                None,
                signed(&self.hoster.key, witness, sequence, receipts),
            )
            .await
    }

    async fn earned(&self, payee: Address) -> u128 {
        sqlx::query_scalar::<_, String>("SELECT coalesce(sum(earned), 0)::text FROM payee_balances WHERE payee = $1")
            .bind(payee.as_slice())
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn receipt(ticket: &str, event: &str, at: i64, viewer: Option<&str>) -> Value {
    json!({ "ticket": ticket, "event": event, "at": at, "viewer": viewer })
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A batch body signed by the hoster key (and the witness key), as a node would make it.
fn signed(hoster: &PrivateKeySigner, witness: Option<&PrivateKeySigner>, sequence: u64, receipts: &[Value]) -> Value {
    signed_for(CHAIN_ID, hoster, witness, sequence, receipts)
}

fn signed_for(
    chain_id: u64,
    hoster: &PrivateKeySigner,
    witness: Option<&PrivateKeySigner>,
    sequence: u64,
    receipts: &[Value],
) -> Value {
    let parsed: Vec<Receipt> = receipts
        .iter()
        .map(|r| Receipt {
            ticket: r["ticket"].as_str().unwrap().to_owned(),
            event: serde_json::from_value::<EventType>(r["event"].clone()).unwrap(),
            at: OffsetDateTime::from_unix_timestamp(r["at"].as_i64().unwrap()).unwrap(),
            viewer: r["viewer"].as_str().map(String::from),
            order_ref: r["orderRef"].as_str().map(String::from),
        })
        .collect();
    let message = ReceiptBatch {
        hoster: hoster.address(),
        witness: witness.map_or(Address::ZERO, |w| w.address()),
        sequence,
        receiptsHash: batch::receipts_hash(&parsed),
    };
    let digest = batch::signing_hash(chain_id, ESCROW, &message);
    let sign = |key: &PrivateKeySigner| format!("0x{}", hex::encode(key.sign_hash_sync(&digest).unwrap().as_bytes()));
    let mut body = json!({
        "chainId": CHAIN_ID,
        "hoster": hoster.address(),
        "sequence": sequence,
        "receipts": receipts,
        "hosterSignature": sign(hoster),
    });
    if let Some(witness) = witness {
        body["witness"] = json!(witness.address());
        body["witnessSignature"] = json!(sign(witness));
    }
    body
}

fn outcomes(answer: &Value) -> Vec<String> {
    answer["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            if r["billed"] == true {
                "billed".to_owned()
            } else {
                r["reason"].as_str().unwrap().to_owned()
            }
        })
        .collect()
}

/// Every posting sums to zero, campaigns spent what was billed, payees earned it.
async fn assert_ledger_consistent(pool: &PgPool) {
    let unbalanced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT posting_id FROM ledger_entries GROUP BY posting_id HAVING sum(amount) <> 0) u",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(unbalanced, 0, "every posting balances");
    let (billed, spent, earned, counted): (String, String, String, String) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(price), 0) FROM billed_events)::text,
                (SELECT coalesce(-sum(amount), 0) FROM ledger_entries WHERE role = 'campaign')::text,
                (SELECT coalesce(sum(earned), 0) FROM payee_balances)::text,
                (SELECT coalesce(sum(billed), 0) FROM campaign_spend)::text",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(billed, spent, "campaigns spent what was billed");
    assert_eq!(billed, earned, "payees earned what was billed");
    assert_eq!(billed, counted, "running totals agree");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn witnessed_batches_bill_once_and_split_exactly(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({}),
        json!({ "cpm": "2001000", "cpc": "50007" }),
        1_000_000_000,
    )
    .await;
    let tickets = world.tickets(3, Some("anon-7")).await;
    let at = now();
    let receipts = [
        receipt(&tickets[0], "impression", at, Some("anon-7")),
        receipt(&tickets[0], "click", at + 1, Some("anon-7")),
        receipt(&tickets[1], "impression", at, Some("anon-7")),
        receipt(&tickets[2], "impression", at, Some("anon-7")),
    ];
    let reply = world.submit(1, &receipts, true).await;
    let answer = reply.ok().clone();
    assert_eq!(outcomes(&answer), ["billed"; 4]);
    assert_eq!(answer["witnessed"], true);
    assert_eq!(answer["receipts"][0]["price"], "2001");
    assert_eq!(answer["receipts"][1]["price"], "50007");

    // 3 impressions of 2001 and a click of 50007: 56010 in all.
    let hoster = world.earned(world.hoster.owner.address()).await;
    let witness = world.earned(world.witness.owner.address()).await;
    let platform = world.earned(PLATFORM).await;
    assert_eq!(hoster + witness + platform, 56_010);
    // Per event, largest remainder: 2001 -> 1801 / 180 / 20; 50007 -> 45006 / 4501 / 500.
    assert_eq!(hoster, 3 * 1801 + 45_006);
    assert_eq!(platform, 3 * 180 + 4501);
    assert_eq!(witness, 3 * 20 + 500);
    assert_ledger_consistent(&pool).await;

    // The hoster's owner sees it as earnings.
    let owner_token = world.app.token(&world.hoster.owner).await;
    let earnings = world.app.get("/v1/me/earnings", Some(&owner_token)).await;
    assert_eq!(earnings.ok()[0]["earned"], hoster.to_string());

    // Billed numbers reach the advertiser's analytics.
    let analytics = world
        .app
        .get(
            &format!("/v1/campaigns/{}/analytics", world.campaign),
            Some(&world.advertiser.token),
        )
        .await;
    assert_eq!(analytics.ok()["totals"]["impressions"], 3);
    assert_eq!(analytics.body["totals"]["clicks"], 1);
    assert_eq!(analytics.body["totals"]["spend"], "56010");
    assert_eq!(analytics.body["budget"]["billed"], "56010");
    assert_eq!(
        analytics.body["budget"]["available"],
        (1_000_000_000u128 - 56_010).to_string()
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn unwitnessed_batches_pay_the_hoster_half(pool: PgPool) {
    let world = World::new(pool.clone(), json!({}), json!({ "cpm": "3001000" }), 1_000_000_000).await;
    let tickets = world.tickets(1, None).await;
    let reply = world
        .submit(1, &[receipt(&tickets[0], "impression", now(), None)], false)
        .await;
    assert_eq!(reply.ok()["witnessed"], false);
    // 3001 / 2: the odd unit goes to the hoster (a tie, first payee).
    assert_eq!(world.earned(world.hoster.owner.address()).await, 1501);
    assert_eq!(world.earned(PLATFORM).await, 1500);
    assert_eq!(world.earned(world.witness.owner.address()).await, 0);
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_refusal_has_its_reason(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({ "frequencyCaps": { "impressionsPerHour": 1, "clicksPerHour": 1 } }),
        json!({ "cpm": "1000000", "cpc": "10000" }),
        1_000_000_000,
    )
    .await;
    let other = hoster_node(&world.app, false).await;
    world.app.state.ad_server.refresh().await.unwrap();
    let other_session = node_token(&world.app, &other).await;
    let other_ticket = world.tickets_for(&other_session, 1, None).await.remove(0);
    let tickets = world.tickets(6, None).await;
    // The decision-time cap lets bob have one ticket per process; a second API process
    // (its own in-memory counts) issues him another, which billing must catch.
    let mut viewer_tickets = world.tickets(1, Some("bob")).await;
    let second_process = TestApp::new(pool.clone());
    second_process.state.ad_server.refresh().await.unwrap();
    let request = json!({ "placement": "feed-top-banner", "viewer": "bob", "region": world.region });
    let decision = decide(&second_process, &world.hoster_session, request).await;
    viewer_tickets.push(decision["ads"][0]["ticket"].as_str().unwrap().to_owned());
    // A process issuing one-second tickets, for one that expires.
    let short_lived = TestApp::with(pool.clone(), |config| config.ticket_ttl = Duration::from_secs(1));
    short_lived.state.ad_server.refresh().await.unwrap();
    let request = json!({ "placement": "feed-top-banner", "region": world.region });
    let expiring = decide(&short_lived, &world.hoster_session, request).await["ads"][0]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered = tickets[0].clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let at = now();

    let receipts = [
        receipt(&tampered, "impression", at, None),
        receipt("not-a-ticket", "impression", at, None),
        receipt(&other_ticket, "impression", at, None),
        receipt(&expiring, "impression", at + 60, None),
        receipt(&tickets[1], "impression", at + 3600, None),
        receipt(&viewer_tickets[0], "impression", at, Some("mallory")),
        receipt(&tickets[2], "click", at, None),
        receipt(&tickets[3], "view", at, None),
        receipt(&tickets[4], "impression", at, None),
        receipt(&tickets[4], "impression", at, None),
        receipt(&viewer_tickets[0], "impression", at, Some("bob")),
        receipt(&viewer_tickets[1], "impression", at, Some("bob")),
    ];
    let reply = world.submit(1, &receipts, true).await;
    assert_eq!(
        outcomes(reply.ok()),
        [
            "ticket_invalid",
            "ticket_invalid",
            "wrong_hoster",
            "ticket_expired",
            "time_in_future",
            "viewer_mismatch",
            "click_without_impression",
            "not_priced",
            "billed",
            "duplicate",
            "billed",
            "frequency_capped",
        ]
    );
    // Across batches too.
    let again = world
        .submit(2, &[receipt(&tickets[4], "impression", at, None)], true)
        .await;
    assert_eq!(outcomes(again.ok()), ["duplicate"]);
    let refused: i64 = sqlx::query_scalar("SELECT count(*) FROM refused_receipts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(refused, 11, "refusals are recorded, not dropped");
    // A later batch's cap counts what is billed (looked up through the frequency index): a
    // third process issues bob a ticket its own counts allow, and billing refuses it.
    let third_process = TestApp::new(pool.clone());
    third_process.state.ad_server.refresh().await.unwrap();
    let request = json!({ "placement": "feed-top-banner", "viewer": "bob", "region": world.region });
    let decision = decide(&third_process, &world.hoster_session, request).await;
    let third = decision["ads"][0]["ticket"].as_str().unwrap().to_owned();
    let capped = world
        .submit(3, &[receipt(&third, "impression", at, Some("bob"))], true)
        .await;
    assert_eq!(outcomes(capped.ok()), ["frequency_capped"]);
    // The keys billing writes are the ones the migration derives in SQL for older rows.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM billed_events WHERE viewer_hash IS NOT NULL AND frequency_key IS DISTINCT FROM
             ('x' || encode(substr(sha256(uuid_send(ad_id) || viewer_hash), 1, 8), 'hex'))::bit(64)::bigint",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0, "frequency keys agree with their SQL definition");
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn consent_and_budgets_refuse_with_reasons(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    // Escrow for two impressions of 1000; brand daily budget for three.
    let scope = keccak256(b"sports");
    let world = World::with(app, json!({}), json!({ "cpm": "1000000" }), 2_000, 1_000_000_000).await;
    let tickets = world.tickets(3, None).await;
    let at = now();
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", at, None)).collect();
    assert_eq!(
        outcomes(world.submit(1, &receipts, true).await.ok()),
        ["billed", "billed", "campaign_budget_exhausted"]
    );

    let brand_world = World::with(
        TestApp::new(pool.clone()),
        json!({}),
        json!({ "cpm": "1000000" }),
        1_000_000,
        2_500,
    )
    .await;
    let tickets = brand_world.tickets(3, None).await;
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", at, None)).collect();
    assert_eq!(
        outcomes(brand_world.submit(1, &receipts, true).await.ok()),
        ["billed", "billed", "brand_budget_reached"]
    );

    let consent_world = World::new(
        pool.clone(),
        json!({ "targeting": { "consentScope": scope } }),
        json!({ "cpm": "1000000" }),
        1_000_000,
    )
    .await;
    // The decision needs consent too, so the ticket is issued while the viewer holds it.
    let viewer = PrivateKeySigner::random();
    let viewer_token = consent_world.app.token(&viewer).await;
    let viewer_id = consent_world
        .app
        .post("/v1/me/viewer-id", Some(&viewer_token), json!({}))
        .await
        .ok()["viewerId"]
        .as_str()
        .unwrap()
        .to_owned();
    mirror_consent(&pool, viewer.address(), scope, 1, Some(at + 60)).await;
    consent_world.app.state.ad_server.refresh().await.unwrap();
    let ticket = consent_world.tickets(1, Some(&viewer_id)).await.remove(0);
    // At the event's time the consent had expired.
    let late = receipt(&ticket, "impression", at + 120, Some(&viewer_id));
    let reply = consent_world.submit(1, &[late], true).await;
    assert_eq!(outcomes(reply.ok()), ["consent_missing"], "{}", reply.text);
    let in_time = receipt(&ticket, "impression", at + 30, Some(&viewer_id));
    assert_eq!(
        outcomes(consent_world.submit(2, &[in_time], true).await.ok()),
        ["billed"]
    );
    assert_ledger_consistent(&pool).await;
}

async fn mirror_consent(pool: &PgPool, user: Address, scope: B256, block: i64, expiry: Option<i64>) {
    sqlx::query(
        "INSERT INTO mirror_consent_events (chain_id, block_number, log_index, tx_hash, user_address, scope, expiry)
         VALUES ($1, $2, 0, '\\x02', $3, $4, $5)",
    )
    .bind(CHAIN_ID as i64)
    .bind(block)
    .bind(user.as_slice())
    .bind(scope.as_slice())
    .bind(expiry)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn viewers_holding_consent_earn_from_the_platform_share(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({}),
        json!({ "cpm": "1000000", "cpc": "100000" }),
        1_000_000_000,
    )
    .await;
    let viewer = PrivateKeySigner::random();
    let viewer_token = world.app.token(&viewer).await;
    let viewer_id = world
        .app
        .post("/v1/me/viewer-id", Some(&viewer_token), json!({}))
        .await
        .ok()["viewerId"]
        .as_str()
        .unwrap()
        .to_owned();
    mirror_consent(&pool, viewer.address(), keccak256(b"rewards"), 1, Some(now() + 3600)).await;
    let ticket = world.tickets(1, Some(&viewer_id)).await.remove(0);
    let at = now();
    let receipts = [
        receipt(&ticket, "impression", at, Some(&viewer_id)),
        receipt(&ticket, "click", at, Some(&viewer_id)),
    ];
    assert_eq!(
        outcomes(world.submit(1, &receipts, true).await.ok()),
        ["billed", "billed"]
    );
    // Clicks reward 5% (5000 of 100000) out of the platform's 9%; impressions nothing.
    assert_eq!(world.earned(viewer.address()).await, 5_000);
    assert_eq!(world.earned(PLATFORM).await, 90 + 9_000 - 5_000);
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bad_batches_are_refused_whole_and_write_nothing(pool: PgPool) {
    let app = TestApp::with(pool.clone(), |config| config.max_batch_receipts = 3);
    let world = World::with(
        app,
        json!({}),
        json!({ "cpm": "1000000" }),
        1_000_000_000,
        1_000_000_000,
    )
    .await;
    let tickets = world.tickets(1, None).await;
    let receipts = [receipt(&tickets[0], "impression", now(), None)];
    let same_owner_witness = {
        let key = PrivateKeySigner::random();
        let message = adescrow::nodes::registration_message(world.hoster.owner.address(), key.address(), CHAIN_ID);
        world
            .app
            .post(
                "/v1/nodes",
                Some(&world.hoster.owner_token),
                json!({ "address": key.address(), "name": "twin", "canWitness": true, "signature": personal_sign(&key, &message) }),
            )
            .await
            .ok();
        key
    };
    let not_a_witness = hoster_node(&world.app, false).await;
    world.app.state.ad_server.refresh().await.unwrap();

    let mut forged = signed(&world.hoster.key, Some(&world.witness.key), 1, &receipts);
    forged["hosterSignature"] = signed(&PrivateKeySigner::random(), None, 1, &receipts)["hosterSignature"].clone();
    let mut high_s = signed(&world.hoster.key, None, 1, &receipts);
    high_s["hosterSignature"] = json!("0x1234");
    let mut wrong_chain = signed(&world.hoster.key, None, 1, &receipts);
    wrong_chain["chainId"] = json!(1);
    let mut witness_unsigned = signed(&world.hoster.key, Some(&world.witness.key), 1, &receipts);
    witness_unsigned.as_object_mut().unwrap().remove("witnessSignature");
    let too_many: Vec<Value> = (0..4).map(|_| receipts[0].clone()).collect();
    let cases = [
        (forged, "hosterSignature"),
        (high_s, "hosterSignature"),
        (signed_for(1, &world.hoster.key, None, 1, &receipts), "hosterSignature"),
        (wrong_chain, "chainId"),
        (signed(&PrivateKeySigner::random(), None, 1, &receipts), "hoster"),
        (
            signed(&world.hoster.key, Some(&world.hoster.key), 1, &receipts),
            "witness",
        ),
        (
            signed(&world.hoster.key, Some(&same_owner_witness), 1, &receipts),
            "witness",
        ),
        (
            signed(&world.hoster.key, Some(&not_a_witness.key), 1, &receipts),
            "witness",
        ),
        (witness_unsigned, "witnessSignature"),
        (signed(&world.hoster.key, None, 1, &too_many), "receipts"),
    ];
    for (body, field) in cases {
        let reply = world.app.post("/v1/receipts", None, body).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field,
            "{}",
            reply.text
        );
    }
    assert_eq!(world.app.count("receipt_batches").await, 0);
    assert_eq!(world.app.count("billed_events").await, 0);

    // A retired hoster's batches stop counting.
    world
        .app
        .call(
            axum::http::Method::DELETE,
            &format!("/v1/nodes/{}", world.hoster.id),
            Some(&world.hoster.owner_token),
            None,
        )
        .await
        .ok();
    world.app.state.ad_server.refresh().await.unwrap();
    let retired = world.submit(1, &receipts, true).await;
    assert_eq!(
        retired.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "hoster"
    );
}

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
    let router = world.app.router.clone();
    let answers = futures_all(bodies.into_iter().map(|body| {
        let app = TestAppRef(router.clone());
        async move { app.post("/v1/receipts", body).await }
    }))
    .await;
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
    let router = world.app.router.clone();
    let answers = futures_all(bodies.into_iter().map(|body| {
        let app = TestAppRef(router.clone());
        async move { app.post("/v1/receipts", body).await }
    }))
    .await;
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

/// A new posting without entries, as an adjustment would start.
async fn adjustment_posting(tx: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO ledger_postings (token, source, source_id) VALUES ($1, 'adjustment', 'test') RETURNING id",
    )
    .bind(TOKEN.as_slice())
    .fetch_one(tx)
    .await
    .unwrap()
}

/// A cloneable handle for concurrent requests against the same router.
struct TestAppRef(axum::Router);

impl TestAppRef {
    async fn post(&self, path: &str, body: Value) -> Reply {
        use tower::ServiceExt;
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let response = self.0.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }
}

/// Runs the futures concurrently on the test runtime and collects their outputs in order.
async fn futures_all<F: std::future::Future<Output = Reply> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<Reply> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut replies = Vec::with_capacity(handles.len());
    for handle in handles {
        replies.push(handle.await.unwrap());
    }
    replies
}

//! The hoster node and the witness node, for real: the API served on a port, both nodes
//! with their own SQLite stores, beacons over HTTP. The batch the API bills is witnessed for
//! exactly the receipts the witness saw itself; the node survives a restart without losing
//! or repeating a receipt; a slow or absent witness does not hold the hoster's pay back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adescrow::adserver::pricing::EventType;
use adescrow::platform::db::MIGRATOR;
use adescrow::witnessing::api::ApiClient;
use adescrow::witnessing::beacons::Beacon;
use adescrow::witnessing::hoster::{HosterConfig, HosterNode};
use adescrow::witnessing::routes;
use adescrow::witnessing::witness::{CosignError, Witness, WitnessConfig};
use adescrow::witnessing::{CosignRequest, WireReceipt};
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use url::Url;

use crate::fixtures::*;
use crate::support::*;

const ESCROW: Address = Address::repeat_byte(0xe5);

/// Serves `router` on a free local port; its base URL.
async fn serve(router: axum::Router) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/").parse().unwrap()
}

fn store_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adescrow-witnessing-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn witness_config(key: &PrivateKeySigner) -> WitnessConfig {
    WitnessConfig {
        signer: key.clone(),
        chain_id: CHAIN_ID,
        escrow: ESCROW,
        tolerance_secs: 60,
        retention_secs: 86_400,
    }
}

/// The API with a running campaign, a hoster node and another owner's witness node, both
/// registered.
struct Devnet {
    app: TestApp,
    api: Url,
    hoster: Node,
    witness: Node,
}

impl Devnet {
    async fn new(pool: PgPool) -> Self {
        let app = TestApp::new(pool);
        let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 30_000_000_000).await;
        running(
            &app,
            &advertiser,
            json!({}),
            json!({ "cpm": "2001000", "cpc": "50007", "cpv": "3000" }),
        )
        .await;
        let hoster = hoster_node(&app, false).await;
        let witness = hoster_node(&app, true).await;
        app.state.ad_server.refresh().await.unwrap();
        let api = serve(app.router.clone()).await;
        Self {
            app,
            api,
            hoster,
            witness,
        }
    }

    async fn node(&self, store: &std::path::Path, witness: Option<Url>, patience: Duration) -> HosterNode {
        let client = ApiClient::new(
            self.api.clone(),
            self.hoster.key.clone(),
            CHAIN_ID,
            Duration::from_secs(10),
        )
        .unwrap();
        let config = HosterConfig {
            signer: self.hoster.key.clone(),
            chain_id: CHAIN_ID,
            escrow: ESCROW,
            witness,
            batch_size: 100,
            batch_age: Duration::ZERO,
            witness_timeout: Duration::from_secs(2),
            witness_patience: patience,
        };
        HosterNode::open(store, client, config).await.unwrap()
    }

    /// A witness node served on a port, with its URL.
    async fn witness(&self) -> (Arc<Witness>, Url) {
        let witness =
            Arc::new(Witness::open(&store_path("witness.sqlite"), witness_config(&self.witness.key)).unwrap());
        let url = serve(routes::witness_router(witness.clone())).await;
        (witness, url)
    }

    /// The billed events of the hoster's node: (ticket id, event, witnessed).
    async fn billed(&self) -> Vec<(uuid::Uuid, String, bool)> {
        sqlx::query_as(
            "SELECT ticket_id, event::text, witness_node_id IS NOT NULL FROM billed_events
             WHERE hoster_node_id = $1 ORDER BY ticket_id, event",
        )
        .bind(self.hoster.id.parse::<uuid::Uuid>().unwrap())
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

async fn post_text(url: &Url, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url.join(path).unwrap())
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn beacon(ticket: &str, event: &str) -> Value {
    json!({ "ticket": ticket, "event": event })
}

/// Three slots on a page; the witness misses the second slot's impression and its click.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_batch_is_witnessed_for_exactly_what_the_witness_saw(pool: PgPool) {
    let devnet = Devnet::new(pool.clone()).await;
    let (_witness, witness_url) = devnet.witness().await;
    let node = Arc::new(
        devnet
            .node(
                &store_path("node.sqlite"),
                Some(witness_url.clone()),
                Duration::from_secs(60),
            )
            .await,
    );
    let node_url = serve(routes::hoster_router(node.clone())).await;

    // The page asks the node for three slots' ads, as the SDK does: text/plain JSON.
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let (status, decision) = post_text(&node_url, "v1/fill", &json!({ "placement": "feed-top-banner" })).await;
        assert_eq!(status, 200, "{decision}");
        tickets.push(decision["ads"][0]["ticket"].as_str().unwrap().to_owned());
    }
    let (t1, t2, t3) = (&tickets[0], &tickets[1], &tickets[2]);
    let page = json!({ "events": [
        beacon(t1, "impression"), beacon(t1, "view"),
        beacon(t2, "impression"), beacon(t2, "click"),
        beacon(t3, "impression"),
    ]});
    let (status, taken) = post_text(&node_url, "v1/e", &page).await;
    assert_eq!((status, taken["accepted"].as_u64()), (200, Some(5)));
    // The browser sends one beacon twice, and one for a ticket the node never issued.
    let (_, taken) = post_text(
        &node_url,
        "v1/e",
        &json!({ "events": [beacon(t1, "impression"), beacon("forged", "click")] }),
    )
    .await;
    assert_eq!(
        (taken["accepted"].as_u64(), taken["ignored"].as_u64()),
        (Some(1), Some(1))
    );
    let seen_by_witness = json!({ "events": [beacon(t1, "impression"), beacon(t1, "view"), beacon(t3, "impression")] });
    assert_eq!(post_text(&witness_url, "v1/e", &seen_by_witness).await.0, 200);
    // A malformed beacon is refused naming the field, and changes nothing.
    let (status, problem) = post_text(
        &node_url,
        "v1/e",
        &json!({ "events": [{ "ticket": t1, "event": "acquisition" }] }),
    )
    .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("events[0].event")));

    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(node.cut(now).await.unwrap(), 1, "one batch of five receipts");
    assert_eq!(node.advance(now).await.unwrap(), 1, "answered by the API");
    assert_eq!(node.advance(now).await.unwrap(), 0, "nothing left to send");
    assert_eq!(node.cut(now).await.unwrap(), 0, "no receipt twice");

    let ticket = |t: &str| adescrow::adserver::serving::Ticket::read_unverified(t).unwrap().id;
    let mut expected = vec![
        (ticket(t1), "impression".to_owned(), true),
        (ticket(t1), "view".to_owned(), true),
        (ticket(t2), "impression".to_owned(), false),
        (ticket(t2), "click".to_owned(), false),
        (ticket(t3), "impression".to_owned(), true),
    ];
    expected.sort();
    assert_eq!(devnet.billed().await, expected);
    let witness_share: String = sqlx::query_scalar("SELECT sum(witness_share)::text FROM billed_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    // 1% of what it confirmed: two impressions of 2001 (20 each) and a view of 3000 (30).
    assert_eq!(witness_share, "70");
}

/// The witness signs only what it saw, at the time it saw it, once per observation; a
/// hoster's retry gets the same signature, another batch under the same sequence none.
#[tokio::test]
async fn a_witness_confirms_only_its_own_timely_observations_once() {
    let key = PrivateKeySigner::random();
    let witness = Witness::open(&store_path("witness.sqlite"), witness_config(&key)).unwrap();
    let tickets: Vec<String> = (0..10).map(test_ticket).collect();
    let ticket = |n: u8| tickets[usize::from(n)].clone();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let seen = vec![
        Beacon {
            ticket: ticket(1),
            event: EventType::Impression,
        },
        Beacon {
            ticket: ticket(2),
            event: EventType::Impression,
        },
        Beacon {
            ticket: ticket(3),
            event: EventType::Impression,
        },
        Beacon {
            ticket: "not a ticket".into(),
            event: EventType::Impression,
        },
    ];
    let taken = witness.observe(seen, now).await.unwrap();
    assert_eq!((taken.accepted, taken.ignored), (3, 1));

    let receipt = |n: u8, event: EventType, at: i64| WireReceipt {
        ticket: ticket(n),
        event,
        at,
        viewer: None,
        order_ref: None,
    };
    let hoster = PrivateKeySigner::random();
    let request = |sequence: u64, receipts: Vec<WireReceipt>| {
        CosignRequest::signed(&hoster, CHAIN_ID, sequence, receipts).unwrap()
    };
    let batch = vec![
        receipt(1, EventType::Impression, now),
        receipt(1, EventType::Impression, now), // the same receipt twice: confirmed once
        receipt(1, EventType::Click, now),      // never seen
        receipt(2, EventType::Impression, now + 3600), // a hoster lying about the time
        receipt(3, EventType::Impression, now - 30), // within the tolerance
        receipt(9, EventType::Impression, now), // a ticket it never saw
    ];
    let signed = witness.cosign(request(1, batch.clone())).await.unwrap();
    assert_eq!(signed.confirmed.to_vec(), vec![0b0001_0001]);
    assert_eq!((signed.confirmed_count, signed.witness), (2, key.address()));
    assert_eq!(
        witness.cosign(request(1, batch.clone())).await.unwrap(),
        signed,
        "a retry is answered alike"
    );

    let other = vec![receipt(3, EventType::Impression, now)];
    assert!(matches!(
        witness.cosign(request(1, other.clone())).await,
        Err(CosignError::SequenceReused(1))
    ));
    // Confirmed again in another batch: billing takes a ticket's event once, whoever asks.
    assert_eq!(
        witness.cosign(request(2, other.clone())).await.unwrap().confirmed_count,
        1
    );
    // Only the hoster's own key takes its sequences: an impostor's request is refused.
    let impostor = CosignRequest::signed(&PrivateKeySigner::random(), CHAIN_ID, 3, other).unwrap();
    let forged = CosignRequest {
        hoster: hoster.address(),
        ..impostor
    };
    assert!(matches!(witness.cosign(forged).await, Err(CosignError::NotTheHoster)));
    let elsewhere = CosignRequest::signed(&hoster, 1, 4, batch).unwrap();
    assert!(matches!(
        witness.cosign(elsewhere).await,
        Err(CosignError::WrongChain { expected: CHAIN_ID })
    ));
}

/// A ticket as the ad server issues it, readable by a witness (which holds no key).
fn test_ticket(n: u8) -> String {
    let keys = adescrow::adserver::serving::TicketKeys::new(&[n; 32]);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    keys.issue(&adescrow::adserver::serving::Ticket {
        id: uuid::Uuid::new_v4(),
        ad_id: uuid::Uuid::new_v4(),
        campaign_id: uuid::Uuid::new_v4(),
        hoster_node_id: uuid::Uuid::new_v4(),
        placement_id: None,
        viewer: None,
        prices: Default::default(),
        issued_at: now,
        expires_at: now + 3600,
    })
}

/// An absent witness delays the batch only up to the node's patience; then it is billed,
/// unwitnessed. A node restarted meanwhile neither loses nor repeats a receipt, and a
/// batch the API did not answer is sent again under its sequence.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_absent_witness_or_a_restart_loses_and_repeats_nothing(pool: PgPool) {
    let devnet = Devnet::new(pool.clone()).await;
    // A witness URL nobody listens on.
    let absent: Url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap()
    };
    let store = store_path("node.sqlite");
    let node = Arc::new(devnet.node(&store, Some(absent.clone()), Duration::from_secs(30)).await);
    let node_url = serve(routes::hoster_router(node.clone())).await;
    let (_, decision) = post_text(&node_url, "v1/fill", &json!({ "placement": "feed-top-banner" })).await;
    let ticket = decision["ads"][0]["ticket"].as_str().unwrap().to_owned();
    post_text(&node_url, "v1/e", &json!({ "events": [beacon(&ticket, "impression")] })).await;

    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(node.cut(now).await.unwrap(), 1);
    assert_eq!(node.advance(now).await.unwrap(), 0, "waiting for the witness");
    assert!(devnet.billed().await.is_empty());

    // The node restarts: the same store, the same batch, nothing cut twice.
    drop(node);
    let node = devnet.node(&store, Some(absent), Duration::from_secs(30)).await;
    assert_eq!(
        node.cut(now + 31).await.unwrap(),
        0,
        "the receipt is in its batch already"
    );
    assert_eq!(
        node.advance(now + 31).await.unwrap(),
        1,
        "past its patience: sent unwitnessed"
    );
    let billed = devnet.billed().await;
    assert_eq!(billed.len(), 1);
    assert!(!billed[0].2, "billed as unwitnessed");
    let states = node.batch_states().await.unwrap();
    assert_eq!(states.get("done"), Some(&1));
    assert_eq!(devnet.app.count("receipt_batches").await, 1);
}

/// The SDK on a page in Debian's Chromium, driven over the DevTools protocol by
/// `web/sdk/e2e/drive.mjs`, against the API and both nodes. In tab A, slot 1 is in view for
/// more than a second (impression and view), slot 2 for half a second (impression only) and
/// slot 3 goes to a background tab (impression only); the witness sees all of it. Tab B is
/// the same page while the witness is unreachable: billed, but unwitnessed. The one batch
/// arrives witnessed for exactly what the witness saw.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_page_in_chromium_is_billed_for_what_it_showed_and_witnessed_for_what_the_witness_saw(pool: PgPool) {
    let devnet = Devnet::new(pool.clone()).await;
    let (_witness, witness_url) = devnet.witness().await;
    let store = store_path("node.sqlite");
    let client = ApiClient::new(
        devnet.api.clone(),
        devnet.hoster.key.clone(),
        CHAIN_ID,
        Duration::from_secs(10),
    )
    .unwrap();
    // One full batch of the eight receipts the two tabs make; nothing is cut by age.
    let config = HosterConfig {
        signer: devnet.hoster.key.clone(),
        chain_id: CHAIN_ID,
        escrow: ESCROW,
        witness: Some(witness_url.clone()),
        batch_size: 8,
        batch_age: Duration::from_secs(3600),
        witness_timeout: Duration::from_secs(2),
        witness_patience: Duration::from_secs(60),
    };
    let node = Arc::new(HosterNode::open(&store, client, config).await.unwrap());
    let node_url = serve(routes::hoster_router(node.clone())).await;
    // The publisher's page, from an origin of its own.
    let page = include_str!("../../web/sdk/e2e/page.html");
    let site = serve(axum::Router::new().route(
        "/page.html",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    ))
    .await;
    let url = format!(
        "{site}page.html?node={}&witness={}&placement=feed-top-banner",
        origin(&node_url),
        origin(&witness_url)
    );

    let screenshots = std::env::temp_dir().join("adescrow-browser-screenshots");
    let output = tokio::process::Command::new("node")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "web/sdk/e2e/drive.mjs",
            "--page",
            &url,
            "--page-missing",
            &url,
            "--witness-origin",
            &origin(&witness_url),
        ])
        .arg("--screenshots")
        .arg(&screenshots)
        .output()
        .await
        .expect("node runs (scripts/test installs it, with Chromium)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser driver failed: {stderr}");
    let tabs: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(
        tabs["a"]["views"],
        json!(["slot-1"]),
        "the page's own events: {}",
        tabs["a"]
    );

    // The beacons are in: the batch of eight is cut as soon as all arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if node.cut(now).await.unwrap() == 1 {
            assert_eq!(node.advance(now).await.unwrap(), 1, "answered by the API");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never got the eight beacons"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let ticket = |tab: &str, slot: &str| -> uuid::Uuid { tabs[tab]["slots"][slot].as_str().unwrap().parse().unwrap() };
    let mut expected = vec![
        (ticket("a", "slot-1"), "impression".to_owned(), true),
        (ticket("a", "slot-1"), "view".to_owned(), true),
        (ticket("a", "slot-2"), "impression".to_owned(), true),
        (ticket("a", "slot-3"), "impression".to_owned(), true),
        (ticket("b", "slot-1"), "impression".to_owned(), false),
        (ticket("b", "slot-1"), "view".to_owned(), false),
        (ticket("b", "slot-2"), "impression".to_owned(), false),
        (ticket("b", "slot-3"), "impression".to_owned(), false),
    ];
    expected.sort();
    assert_eq!(devnet.billed().await, expected);
}

/// `http://host:port` of a base URL, as the page takes it.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A click whose beacon overtakes its impression's waits for it: the batch carries the
/// impression first, so billing takes both. A beacon for an expired ticket is ignored.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_click_that_arrives_before_its_impression_waits_for_it(pool: PgPool) {
    let devnet = Devnet::new(pool.clone()).await;
    let node = devnet
        .node(&store_path("node.sqlite"), None, Duration::from_secs(60))
        .await;
    let decision = node
        .fill(&adescrow::witnessing::api::DecisionRequest {
            placement: "feed-top-banner".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ticket = decision.ads[0].ticket.clone();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let click = Beacon {
        ticket: ticket.clone(),
        event: EventType::Click,
    };
    assert_eq!(node.observe(vec![click], now).await.unwrap().accepted, 1);
    assert_eq!(node.cut(now).await.unwrap(), 0, "the click waits for its impression");
    let impression = Beacon {
        ticket: ticket.clone(),
        event: EventType::Impression,
    };
    node.observe(vec![impression], now).await.unwrap();
    assert_eq!(node.cut(now).await.unwrap(), 1);
    assert_eq!(node.advance(now).await.unwrap(), 1);
    let id = adescrow::adserver::serving::Ticket::read_unverified(&ticket)
        .unwrap()
        .id;
    let mut expected = vec![(id, "click".to_owned(), false), (id, "impression".to_owned(), false)];
    expected.sort();
    assert_eq!(devnet.billed().await, expected, "both billed (unwitnessed: no witness)");

    node.remember(vec![("expired-ticket".into(), None, now - 1)])
        .await
        .unwrap();
    let late = Beacon {
        ticket: "expired-ticket".into(),
        event: EventType::Impression,
    };
    let taken = node.observe(vec![late], now).await.unwrap();
    assert_eq!((taken.accepted, taken.ignored), (0, 1));

    // Two days on, the answered batch is forgotten; its ticket expired, so a replay of its
    // beacon is ignored rather than billed again.
    let later = now + 2 * 86_400;
    node.forget_expired(later).await.unwrap();
    assert_eq!(node.batch_states().await.unwrap().get("done"), None);
    let replay = Beacon {
        ticket,
        event: EventType::Impression,
    };
    assert_eq!(node.observe(vec![replay], later).await.unwrap().ignored, 1);
    assert_eq!(node.cut(later).await.unwrap(), 0);
}

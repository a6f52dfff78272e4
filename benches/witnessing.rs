//! The two nodes' figures (issue: the hoster node takes at least 20,000 beacons a second;
//! the witness co-signs a 1,000-receipt batch in under 20 ms):
//!
//! - **beacons/s**: a hoster node served on a local port with its SQLite store, and 64
//!   keep-alive clients in the same process posting one-event beacons (each a new ticket
//!   and event, so each is a row written) as fast as it answers. A beacon is answered only
//!   once it is committed. The clients share the machine's cores with the node, so the
//!   figure is a floor.
//! - **co-sign**: a witness holding 1,000 fresh observations co-signs a batch of those
//!   1,000 receipts (hashing, 1,000 lookups and updates, one signature, one commit), timed
//!   in process; a new batch and new observations each round.
//!
//! Medians of `ROUNDS` rounds are printed.
//!
//!     cargo bench --bench witnessing

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a bench binary"
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adescrow::adserver::pricing::EventType;
use adescrow::adserver::serving::{Ticket, TicketKeys};
use adescrow::witnessing::api::ApiClient;
use adescrow::witnessing::beacons::Beacon;
use adescrow::witnessing::hoster::{HosterConfig, HosterNode};
use adescrow::witnessing::routes;
use adescrow::witnessing::witness::{Witness, WitnessConfig};
use adescrow::witnessing::{CosignRequest, WireReceipt};
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use time::OffsetDateTime;
use tokio::net::TcpListener;

const ROUNDS: usize = 5;
const BEACONS_PER_ROUND: usize = 40_000;
const CLIENTS: usize = 64;
const COSIGN_ROUNDS: usize = 15;
const BATCH: usize = 1_000;
const ESCROW: Address = Address::repeat_byte(0xe5);
const MIN_BEACONS_PER_SEC: f64 = 20_000.0;
const MAX_COSIGN_MS: f64 = 20.0;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rates = beacons_per_second().await;
        let cosign = cosign_latency().await;
        let median = |values: &mut Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let (mut rates, mut cosign) = (rates, cosign);
        let (rate, latency) = (median(&mut rates), median(&mut cosign));
        println!(
            "hoster node beacons/s: median {rate:.0} of {ROUNDS} rounds of {BEACONS_PER_ROUND} ({:?}); target {MIN_BEACONS_PER_SEC}",
            rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>()
        );
        println!(
            "witness co-sign of {BATCH} receipts: median {latency:.2} ms of {COSIGN_ROUNDS} (min {:.2}, max {:.2}); target {MAX_COSIGN_MS} ms",
            cosign[0],
            cosign[cosign.len() - 1]
        );
        assert!(rate >= MIN_BEACONS_PER_SEC, "the hoster node takes fewer beacons/s than the target");
        assert!(latency <= MAX_COSIGN_MS, "the witness co-signs slower than the target");
    });
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("adescrow-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

async fn beacons_per_second() -> Vec<f64> {
    let key = PrivateKeySigner::random();
    // No API is called: the node's tickets are remembered directly, as `fill` does.
    let api = ApiClient::new(
        "http://127.0.0.1:9/".parse().unwrap(),
        key.clone(),
        31337,
        Duration::from_secs(1),
    )
    .unwrap();
    let config = HosterConfig {
        signer: key,
        chain_id: 31337,
        escrow: ESCROW,
        witness: None,
        batch_size: 1000,
        batch_age: Duration::from_secs(10),
        witness_timeout: Duration::from_secs(1),
        witness_patience: Duration::from_secs(1),
    };
    let node = Arc::new(HosterNode::open(&temp("node.sqlite"), api, config).await.unwrap());
    let expires = OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let tickets: Vec<String> = (0..ROUNDS * BEACONS_PER_ROUND / 3 + 1)
        .map(|i| format!("bench-ticket-{i:08}"))
        .collect();
    node.remember(tickets.iter().map(|t| (t.clone(), None, expires)).collect())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/e", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, routes::hoster_router(node)).into_future());

    // Each beacon is a distinct (ticket, event): three events per ticket.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..ROUNDS * BEACONS_PER_ROUND)
            .map(|i| {
                let event = ["impression", "view", "click"][i % 3];
                format!(r#"{{"events":[{{"ticket":"{}","event":"{event}"}}]}}"#, tickets[i / 3])
            })
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let mut rates = Vec::new();
    for round in 0..ROUNDS {
        let started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
                tokio::spawn(async move {
                    let mut i = round * BEACONS_PER_ROUND + c;
                    while i < (round + 1) * BEACONS_PER_ROUND {
                        let response = client
                            .post(&url)
                            .header("content-type", "text/plain")
                            .body(bodies[i].clone())
                            .send()
                            .await
                            .unwrap();
                        assert!(response.status().is_success());
                        let _ = response.bytes().await.unwrap();
                        i += CLIENTS;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        rates.push(BEACONS_PER_ROUND as f64 / started.elapsed().as_secs_f64());
    }
    rates
}

async fn cosign_latency() -> Vec<f64> {
    let key = PrivateKeySigner::random();
    let config = WitnessConfig {
        signer: key,
        chain_id: 31337,
        escrow: ESCROW,
        tolerance_secs: 60,
        retention_secs: 86_400,
    };
    let witness = Witness::open(&temp("witness.sqlite"), config).unwrap();
    let keys = TicketKeys::new(&[7; 32]);
    let hoster = PrivateKeySigner::random();
    let mut timings = Vec::new();
    for round in 0..COSIGN_ROUNDS {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let tickets: Vec<String> = (0..BATCH)
            .map(|_| {
                keys.issue(&Ticket {
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
            })
            .collect();
        let beacons = tickets
            .iter()
            .map(|ticket| Beacon {
                ticket: ticket.clone(),
                event: EventType::Impression,
            })
            .collect();
        witness.observe(beacons, now).await.unwrap();
        let receipts = tickets
            .into_iter()
            .map(|ticket| WireReceipt {
                ticket,
                event: EventType::Impression,
                at: now,
                viewer: Some("vw_bench".into()),
                order_ref: None,
            })
            .collect();
        let request = CosignRequest::signed(&hoster, 31337, round as u64, receipts).unwrap();
        let started = Instant::now();
        let signed = witness.cosign(request).await.unwrap();
        timings.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(signed.confirmed_count, BATCH, "every receipt observed");
    }
    timings
}

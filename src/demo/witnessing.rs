//! Witnessing for real: hoster node edge-2 runs as `adescrow node` and the witness as
//! `adescrow witness` (both in this process, each with its own SQLite store and port). A
//! page's events reach both as the publisher SDK sends them, except that the witness's
//! connection drops the second ad's beacon; the node batches, the witness co-signs what it
//! saw, and billing pays the witnessed split for exactly those receipts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

use super::advertiser::DemoCampaign;
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::hoster::Hosting;
use super::receipts::{Billed, earned};
use super::report::{Probe, Report, wait_for};
use super::viewer::Viewer;
use crate::app::nodes::{serve_node, serve_witness};
use crate::witnessing::api::ApiClient;
use crate::witnessing::hoster::{HosterConfig, HosterNode};
use crate::witnessing::witness::{Witness, WitnessConfig};

/// The node edge-2 becomes.
const NODE: usize = 1;

pub async fn run_nodes(
    devnet: &Devnet,
    report: &mut Report<'_>,
    api_url: &Url,
    hosting: &Hosting,
    viewer: &Viewer,
    campaign: &DemoCampaign,
    billed: &mut Billed,
) -> Result<()> {
    let setup = |error: &dyn std::fmt::Display| Failure::Setup(error.to_string());
    let dir = std::env::temp_dir().join(format!("adescrow-demo-nodes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| setup(&e))?;
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };

    let witness = Witness::open(
        &dir.join("witness.sqlite"),
        WitnessConfig {
            signer: hosting.witness_node.key.clone(),
            chain_id: devnet.chain_id,
            escrow: devnet.deployment.ad_escrow.address,
            tolerance_secs: 60,
            retention_secs: 86_400,
        },
    )
    .map_err(|e| setup(&e))?;
    let (witness_url, witness_listener) = listen().await?;
    tokio::spawn(serve_witness(Arc::new(witness), witness_listener, shutdown.clone()));

    let key = hosting.nodes[NODE].key.clone();
    let api = ApiClient::new(api_url.clone(), key.clone(), devnet.chain_id, Duration::from_secs(10))
        .map_err(|e| setup(&e))?;
    let config = HosterConfig {
        signer: key,
        chain_id: devnet.chain_id,
        escrow: devnet.deployment.ad_escrow.address,
        witness: Some(witness_url.clone()),
        batch_size: 100,
        batch_age: Duration::from_secs(1),
        witness_timeout: Duration::from_secs(5),
        witness_patience: Duration::from_secs(30),
    };
    let node = Arc::new(
        HosterNode::open(&dir.join("node.sqlite"), api, config)
            .await
            .map_err(|e| setup(&e))?,
    );
    let (node_url, node_listener) = listen().await?;
    tokio::spawn(serve_node(
        node.clone(),
        node_listener,
        Duration::from_millis(200),
        shutdown,
    ));
    report.ok(format_args!(
        "edge-2 runs as a hoster node at {node_url} and the witness node at {witness_url}, each with its own SQLite store"
    ));

    let result = page(
        devnet,
        report,
        &node_url,
        &witness_url,
        &node,
        hosting,
        viewer,
        campaign,
        billed,
    )
    .await;
    let _ = stop.send(true);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One page with three ads: its decisions through the node, its beacons to both nodes, and
/// the batch the node submits.
#[allow(clippy::too_many_arguments)]
async fn page(
    devnet: &Devnet,
    report: &mut Report<'_>,
    node_url: &Url,
    witness_url: &Url,
    node: &HosterNode,
    hosting: &Hosting,
    viewer: &Viewer,
    campaign: &DemoCampaign,
    billed: &mut Billed,
) -> Result<()> {
    let hoster_before = earned(devnet, &hosting.hoster).await?;
    let witness_before = earned(devnet, &hosting.witness).await?;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let decision = post_text(
            node_url,
            "v1/fill",
            &json!({ "placement": "feed-top-banner", "viewer": viewer.id, "region": campaign.region, "pageUrl": "https://forum.example/t/espresso" }),
        )
        .await?;
        let ticket = decision["ads"][0]["ticket"]
            .as_str()
            .ok_or_else(|| Failure::mismatch("the node's decision", "an ad", &decision))?;
        tickets.push(ticket.to_owned());
    }
    report.ok("the page's three slots got their ads from the node (tickets remembered in its store)");
    let event = |ticket: &str, event: &str| json!({ "ticket": ticket, "event": event });
    let (t1, t2, t3) = (&tickets[0], &tickets[1], &tickets[2]);
    let all = json!({ "events": [event(t1, "impression"), event(t1, "click"), event(t2, "impression"), event(t3, "impression")] });
    let seen = json!({ "events": [event(t1, "impression"), event(t1, "click"), event(t3, "impression")] });
    // The page sends each event to both at once; here the witness's go first, so that the
    // node's batcher cannot ask it before they arrived.
    let taken = post_text(witness_url, "v1/e", &seen).await?;
    Failure::expect_eq("beacons the witness kept", json!(3), taken["accepted"].clone())?;
    let taken = post_text(node_url, "v1/e", &all).await?;
    Failure::expect_eq("beacons the node kept", json!(4), taken["accepted"].clone())?;
    // The browser retries a beacon it is unsure of: kept once.
    post_text(node_url, "v1/e", &json!({ "events": [event(t1, "impression")] })).await?;
    report.ok("the page sent 4 beacons to the node (one twice) and the witness saw 3: the second ad's was lost");

    wait_for(
        report,
        "the node's batch to be billed",
        devnet.wait_timeout,
        POLL,
        async || {
            let states = node.batch_states().await.map_err(|e| Failure::Setup(e.to_string()))?;
            Ok(match states.get("done") {
                Some(1) => Probe::Ready(()),
                _ => Probe::Waiting(format!("batches {states:?}")),
            })
        },
    )
    .await?;

    let economics = &devnet.economics;
    let (impression, click) = (economics.impression_price(), economics.cpc);
    let witness_earned = earned(devnet, &hosting.witness).await? - witness_before;
    let expected = 2 * economics.witness_share(impression) + economics.witness_share(click);
    Failure::expect_eq("the witness's share: 3 confirmed receipts", expected, witness_earned)?;
    let hoster_earned = earned(devnet, &hosting.hoster).await?;
    let witnessed = 2 * economics.hoster_share(impression) + economics.hoster_share(click);
    let unwitnessed = hoster_earned - hoster_before - witnessed;
    if unwitnessed == 0 || unwitnessed >= economics.hoster_share(impression) {
        return Err(Failure::mismatch(
            "the hoster's share of the unconfirmed impression",
            "the unwitnessed split, less than the witnessed one",
            unwitnessed,
        ));
    }
    report.ok(format_args!(
        "billed as witnessed: 2 impressions and a click ({} to the witness); the unseen impression paid the hoster {} (the unwitnessed split)",
        devnet.units(witness_earned),
        devnet.units(unwitnessed)
    ));
    billed.spend += 3 * impression + click;
    billed.hoster_earned = hoster_earned;
    Ok(())
}

async fn listen() -> Result<(Url, TcpListener)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Setup(e.to_string()))?;
    let address = listener.local_addr().map_err(|e| Failure::Setup(e.to_string()))?;
    let url = format!("http://{address}/")
        .parse()
        .map_err(|e: url::ParseError| Failure::Setup(e.to_string()))?;
    Ok((url, listener))
}

/// Posts JSON as `text/plain`, as the SDK does.
async fn post_text(base: &Url, path: &str, body: &Value) -> Result<Value> {
    let url = base.join(path).map_err(|e| Failure::Setup(e.to_string()))?;
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| Failure::Setup(format!("cannot reach the node at {base}: {e}")))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(Failure::Api {
            method: "POST".into(),
            path: path.into(),
            status: status.as_u16(),
            body: answer.to_string(),
        });
    }
    Ok(answer)
}

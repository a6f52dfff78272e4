//! The hosters' side: a hoster with two nodes and an independent witness with one, each
//! node key registered with a proof of possession; node sessions; decisions for the
//! viewer; and receipt batches signed once per batch by the hoster node and co-signed by
//! the witness node (EIP-712 `ReceiptBatch`, `docs/ENCODING.md`). Also the batches that
//! must be refused, each for its own reason.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DemoAccounts;
use super::advertiser::DemoCampaign;
use super::api::{amount, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::report::{Probe, Report, wait_for};
use super::viewer::Viewer;
use super::wallet::{self, personal_sign};
use crate::accounts::node_session::session_message;
use crate::accounts::nodes::registration_message;

/// Tickets each hoster node takes: node 1 bills three and keeps three for the refusals.
const NODE_1_TICKETS: usize = 6;
const NODE_2_TICKETS: usize = 2;

/// A signed-in operator (hoster or witness).
#[derive(Debug)]
pub struct Operator {
    pub wallet: PrivateKeySigner,
    pub session: String,
}

#[derive(Debug)]
pub struct Node {
    pub key: PrivateKeySigner,
    pub id: String,
}

/// The hoster, its two nodes with open sessions, and the witness.
#[derive(Debug)]
pub struct Hosting {
    pub hoster: Operator,
    pub nodes: [Node; 2],
    /// Node session tokens, per hoster node.
    pub sessions: [String; 2],
    pub witness: Operator,
    pub witness_node: Node,
    /// The next batch sequence per hoster node. Started from the clock, so that reruns
    /// against the same devnet never reuse a sequence.
    sequences: [u64; 2],
}

impl Hosting {
    pub fn next_sequence(&mut self, node: usize) -> u64 {
        self.sequences[node] += 1;
        self.sequences[node]
    }
}

/// One ad a node was told to show.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub token: String,
    pub id: String,
}

/// The tickets of both hoster nodes, in the order they were issued.
#[derive(Debug)]
pub struct Tickets {
    pub node: [Vec<Ticket>; 2],
}

pub async fn register(devnet: &Devnet, report: &mut Report<'_>, accounts: &DemoAccounts) -> Result<Hosting> {
    let hoster = operator(devnet, &accounts.hoster).await?;
    report.ok(format_args!(
        "hoster {} signed in and holds the hoster role",
        hoster.wallet.address()
    ));
    let mut nodes = Vec::new();
    for (i, key) in accounts.hoster_nodes.iter().enumerate() {
        let id = node(devnet, report, &hoster, key, &format!("edge-{}", i + 1), false).await?;
        nodes.push(Node { key: key.clone(), id });
    }
    let witness = operator(devnet, &accounts.witness).await?;
    report.ok(format_args!(
        "witness {} signed in: another owner, so it can vouch for the hoster",
        witness.wallet.address()
    ));
    let witness_node = Node {
        id: node(devnet, report, &witness, &accounts.witness_node, "witness-1", true).await?,
        key: accounts.witness_node.clone(),
    };
    let [first, second]: [Node; 2] = nodes
        .try_into()
        .map_err(|_| Failure::Setup("two hoster nodes".into()))?;
    let sessions = [
        open_session(devnet, &first).await?,
        open_session(devnet, &second).await?,
    ];
    report.ok("both hoster nodes opened sessions (one signature each, then MAC-checked tokens)");
    let clock = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let clock = u64::try_from(clock).unwrap_or_default();
    Ok(Hosting {
        hoster,
        nodes: [first, second],
        sessions,
        witness,
        witness_node,
        sequences: [clock, clock],
    })
}

async fn operator(devnet: &Devnet, wallet: &PrivateKeySigner) -> Result<Operator> {
    let session = wallet::sign_in(&devnet.api, wallet).await?;
    devnet
        .api
        .post("/v1/me/roles", Some(&session), &json!({ "role": "hoster" }))
        .await?;
    Ok(Operator {
        wallet: wallet.clone(),
        session,
    })
}

/// Registers `key` under `owner`, or finds it registered by an earlier run.
async fn node(
    devnet: &Devnet,
    report: &mut Report<'_>,
    owner: &Operator,
    key: &PrivateKeySigner,
    name: &str,
    can_witness: bool,
) -> Result<String> {
    let address = key.address();
    let token = Some(owner.session.as_str());
    let existing = devnet.api.get("/v1/nodes", token).await?;
    let found = existing
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["address"].as_str().and_then(|a| a.parse::<Address>().ok()) == Some(address));
    if let Some(found) = found {
        if !found["retiredAt"].is_null() {
            return Err(Failure::Setup(format!(
                "node {address} was retired; use other node keys or a fresh devnet"
            )));
        }
        Failure::expect_eq("node's witness flag", json!(can_witness), found["canWitness"].clone())?;
        let id = text(found, "/id")?.to_owned();
        report.ok(format_args!("node {name} {address} already registered ({id})"));
        return Ok(id);
    }
    let proof = personal_sign(
        key,
        &registration_message(owner.wallet.address(), address, devnet.chain_id),
    )?;
    let registered = devnet
        .api
        .post(
            "/v1/nodes",
            token,
            &json!({ "address": address, "name": name, "canWitness": can_witness, "signature": proof }),
        )
        .await?;
    let id = text(&registered, "/id")?.to_owned();
    report.ok(format_args!(
        "node {name} {address} registered ({id}){} with a proof of possession",
        if can_witness { " as a witness" } else { "" }
    ));
    Ok(id)
}

async fn open_session(devnet: &Devnet, node: &Node) -> Result<String> {
    let issued_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(|e| Failure::Setup(e.to_string()))?;
    let message = session_message(node.key.address(), devnet.chain_id, &issued_at);
    let session = devnet
        .api
        .post(
            "/v1/nodes/sessions",
            None,
            &json!({ "address": node.key.address(), "issuedAt": issued_at, "signature": personal_sign(&node.key, &message)? }),
        )
        .await?;
    Failure::expect_eq("session's node", node.id.as_str(), text(&session, "/nodeId")?)?;
    Ok(text(&session, "/token")?.to_owned())
}

/// A decision for the viewer on this run's region, as node `node` asks for it.
pub async fn decide(
    devnet: &Devnet,
    hosting: &Hosting,
    node: usize,
    viewer: &Viewer,
    campaign: &DemoCampaign,
) -> Result<Value> {
    let reply = devnet
        .api
        .send(
            Method::POST,
            "/v1/decisions",
            Some(&hosting.sessions[node]),
            Some(&json!({
                "placement": "feed-top-banner",
                "viewer": viewer.id,
                "region": campaign.region,
                "pageUrl": "https://forum.example/t/espresso",
            })),
        )
        .await?;
    if reply.status == StatusCode::UNAUTHORIZED {
        // The serving index has not seen the new node yet: as good as no answer.
        return Ok(json!({ "ads": [], "reason": "node not in the serving index yet" }));
    }
    if !reply.status.is_success() {
        return Err(Failure::Api {
            method: "POST".into(),
            path: "/v1/decisions".into(),
            status: reply.status.as_u16(),
            body: reply.body.to_string(),
        });
    }
    Ok(reply.body)
}

pub async fn decisions(
    devnet: &Devnet,
    report: &mut Report<'_>,
    hosting: &Hosting,
    viewer: &Viewer,
    campaign: &DemoCampaign,
) -> Result<Tickets> {
    // The first filled decision shows that the ad server now sees the consent.
    let first = wait_for(
        report,
        "the ad server to see the consent",
        devnet.wait_timeout,
        POLL,
        async || {
            let decision = decide(devnet, hosting, 0, viewer, campaign).await?;
            Ok(if decision["ads"].as_array().is_some_and(|ads| !ads.is_empty()) {
                Probe::Ready(decision)
            } else {
                Probe::Waiting(format!("reason {}", decision["reason"]))
            })
        },
    )
    .await?;
    let mut tickets = [vec![ticket(devnet, hosting, 0, campaign, &first)?], Vec::new()];
    for (node, wanted) in [(0, NODE_1_TICKETS), (1, NODE_2_TICKETS)] {
        while tickets[node].len() < wanted {
            let decision = decide(devnet, hosting, node, viewer, campaign).await?;
            tickets[node].push(ticket(devnet, hosting, node, campaign, &decision)?);
        }
        report.ok(format_args!(
            "node edge-{} got {wanted} ads of the campaign, each with a single-use ticket",
            node + 1
        ));
    }
    report.info(format_args!(
        "a ticket: id {}, {} characters of MACed binary, valid for the ticket TTL",
        tickets[0][0].id,
        tickets[0][0].token.len()
    ));
    Ok(Tickets { node: tickets })
}

/// Checks that a decision is this run's ad for `node` at the campaign's prices.
fn ticket(
    devnet: &Devnet,
    hosting: &Hosting,
    node: usize,
    campaign: &DemoCampaign,
    decision: &Value,
) -> Result<Ticket> {
    let ad = &decision["ads"][0];
    Failure::expect_eq("decided ad", json!(campaign.ad), ad["adId"].clone())?;
    Failure::expect_eq(
        "ticket's hoster node",
        json!(hosting.nodes[node].id),
        ad["hosterNodeId"].clone(),
    )?;
    let economics = &devnet.economics;
    Failure::expect_eq(
        "ticket's impression price",
        economics.impression_price(),
        amount(ad, "/prices/impression")?,
    )?;
    Failure::expect_eq("ticket's click price", economics.cpc, amount(ad, "/prices/click")?)?;
    Ok(Ticket {
        token: text(ad, "/ticket")?.to_owned(),
        id: text(ad, "/ticketId")?.to_owned(),
    })
}

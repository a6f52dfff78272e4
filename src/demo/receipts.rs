//! Receipt batches: each signed once by the hoster node that showed the ads and co-signed by
//! the witness node (EIP-712 `ReceiptBatch`, `docs/ENCODING.md`), so signing costs one
//! signature per node per batch. The witnessed batches are billed at the campaign's
//! prices and split as the devnet is configured; then come the receipts and the batch that
//! must be refused, each for its own reason, and a resubmission that must bill nothing.

use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::api::amount;
use super::devnet::Devnet;
use super::error::{Failure, Result};
use super::hoster::{Hosting, Operator, Tickets};
use super::report::Report;
use super::viewer::Viewer;
use crate::adserver::pricing::EventType;
use crate::billing::batch::{self, Confirmations, Receipt};

/// What the witnessed batches billed.
#[derive(Debug)]
pub struct Billed {
    /// Spend charged to the campaign.
    pub spend: u128,
    /// The hoster's earnings in the ledger after billing (all runs so far).
    pub hoster_earned: u128,
    /// Node 1's first batch, as sent, and its answer (resubmitted in the refusals step).
    pub first_batch: (Value, Value),
}

/// One receipt, both as JSON for the API and as the node hashes it.
#[derive(Debug, Clone)]
struct Line {
    ticket: String,
    event: EventType,
    at: i64,
    viewer: Option<String>,
}

impl Line {
    fn new(ticket: &str, event: EventType, at: i64, viewer: &str) -> Self {
        Self {
            ticket: ticket.to_owned(),
            event,
            at,
            viewer: Some(viewer.to_owned()),
        }
    }
}

/// A batch body: the receipts, the hoster node's signature and the witness node's.
/// `witness_key` normally is the witness node's key; the refusals step forges it.
fn signed_batch(
    devnet: &Devnet,
    hoster: &PrivateKeySigner,
    witness: Address,
    witness_key: &PrivateKeySigner,
    sequence: u64,
    lines: &[Line],
) -> Result<Value> {
    let receipts: Vec<Receipt> = lines
        .iter()
        .map(|line| {
            Ok(Receipt {
                ticket: line.ticket.clone(),
                event: line.event,
                at: OffsetDateTime::from_unix_timestamp(line.at).map_err(|e| Failure::Setup(e.to_string()))?,
                viewer: line.viewer.clone(),
                order_ref: None,
            })
        })
        .collect::<Result<_>>()?;
    // These batches stand for a witness that saw every beacon; the witnessing step runs
    // real nodes, whose witness confirms only what it observed.
    let confirmed = Confirmations::from_fn(receipts.len(), |_| true);
    let message = batch::message(
        hoster.address(),
        Some((witness, &confirmed)),
        sequence,
        batch::receipts_hash(&receipts),
    );
    let digest = batch::signing_hash(devnet.chain_id, devnet.deployment.ad_escrow.address, &message);
    let sign = |key: &PrivateKeySigner| -> Result<String> {
        Ok(format!("0x{}", hex::encode(key.sign_hash_sync(&digest)?.as_bytes())))
    };
    Ok(json!({
        "chainId": devnet.chain_id,
        "hoster": hoster.address(),
        "witness": witness,
        "sequence": sequence,
        "receipts": lines.iter().map(|l| json!({
            "ticket": l.ticket, "event": l.event.label(), "at": l.at, "viewer": l.viewer,
        })).collect::<Vec<_>>(),
        "hosterSignature": sign(hoster)?,
        "witnessSignature": sign(witness_key)?,
        "confirmed": format!("0x{}", hex::encode(confirmed.as_bytes())),
    }))
}

/// The body of hoster node `node`'s next batch of `lines`, co-signed by the witness node,
/// and its sequence.
fn witnessed_batch(devnet: &Devnet, hosting: &mut Hosting, node: usize, lines: &[Line]) -> Result<(u64, Value)> {
    let sequence = hosting.next_sequence(node);
    let witness = &hosting.witness_node.key;
    let body = signed_batch(
        devnet,
        &hosting.nodes[node].key,
        witness.address(),
        witness,
        sequence,
        lines,
    )?;
    Ok((sequence, body))
}

/// Per receipt: `billed` or the refusal reason.
fn outcomes(answer: &Value) -> Vec<String> {
    answer["receipts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| match (r["billed"].as_bool(), r["reason"].as_str()) {
            (Some(true), _) => "billed".to_owned(),
            (_, Some(reason)) => reason.to_owned(),
            _ => r.to_string(),
        })
        .collect()
}

pub async fn earned(devnet: &Devnet, operator: &Operator) -> Result<u128> {
    let balances = devnet.api.get("/v1/me/earnings", Some(&operator.session)).await?;
    let token = devnet.token;
    for balance in balances.as_array().into_iter().flatten() {
        if balance["token"].as_str().and_then(|t| t.parse::<Address>().ok()) == Some(token) {
            return amount(balance, "/earned");
        }
    }
    Ok(0)
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub async fn submit(
    devnet: &Devnet,
    report: &mut Report<'_>,
    hosting: &mut Hosting,
    viewer: &Viewer,
    tickets: &Tickets,
) -> Result<Billed> {
    let economics = devnet.economics.clone();
    let (impression, click) = (economics.impression_price(), economics.cpc);
    let hoster_before = earned(devnet, &hosting.hoster).await?;
    let witness_before = earned(devnet, &hosting.witness).await?;
    let at = now();
    let [one, two] = &tickets.node;
    let batches = [
        (
            0,
            vec![
                Line::new(&one[0].token, EventType::Impression, at, &viewer.id),
                Line::new(&one[0].token, EventType::Click, at + 1, &viewer.id),
                Line::new(&one[1].token, EventType::Impression, at, &viewer.id),
                Line::new(&one[2].token, EventType::Impression, at, &viewer.id),
            ],
            vec![impression, click, impression, impression],
        ),
        (
            1,
            vec![
                Line::new(&two[0].token, EventType::Impression, at, &viewer.id),
                Line::new(&two[1].token, EventType::Impression, at, &viewer.id),
            ],
            vec![impression, impression],
        ),
    ];
    let mut spend = 0;
    let (mut hoster_share, mut witness_share) = (0, 0);
    let mut first_batch = None;
    for (node, lines, prices) in batches {
        let (sequence, body) = witnessed_batch(devnet, hosting, node, &lines)?;
        let answer = devnet.api.post("/v1/receipts", None, &body).await?;
        Failure::expect_eq("batch witnessed", json!(true), answer["witnessed"].clone())?;
        Failure::expect_eq(
            "receipt outcomes",
            format!("{:?}", vec!["billed"; lines.len()]),
            format!("{:?}", outcomes(&answer)),
        )?;
        for (i, price) in prices.iter().enumerate() {
            let pointer = format!("/receipts/{i}/price");
            Failure::expect_eq(&format!("price of receipt {i}"), *price, amount(&answer, &pointer)?)?;
            spend += price;
            hoster_share += economics.hoster_share(*price);
            witness_share += economics.witness_share(*price);
        }
        report.ok(format_args!(
            "node edge-{} batch {sequence}: {} receipts billed, {} in all, signed by the node and witness-1",
            node + 1,
            lines.len(),
            devnet.units(prices.iter().sum())
        ));
        first_batch.get_or_insert((body, answer));
    }

    let hoster_earned = earned(devnet, &hosting.hoster).await?;
    Failure::expect_eq(
        "hoster's new earnings in the ledger",
        hoster_share,
        hoster_earned - hoster_before,
    )?;
    let witness_earned = earned(devnet, &hosting.witness).await?;
    Failure::expect_eq(
        "witness's new earnings in the ledger",
        witness_share,
        witness_earned - witness_before,
    )?;
    report.ok(format_args!(
        "ledger: campaign spent {}, hoster earned {}, witness earned {} (split {:?} bps)",
        devnet.units(spend),
        devnet.units(hoster_share),
        devnet.units(witness_share),
        economics.split_witnessed
    ));
    Ok(Billed {
        spend,
        hoster_earned,
        first_batch: first_batch.ok_or_else(|| Failure::Setup("no batch sent".into()))?,
    })
}

pub async fn refused(
    devnet: &Devnet,
    report: &mut Report<'_>,
    hosting: &mut Hosting,
    viewer: &Viewer,
    tickets: &Tickets,
    billed: &Billed,
) -> Result<()> {
    let [one, two] = &tickets.node;
    let at = now();
    let mut tampered = one[5].token.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).map_err(|e| Failure::Setup(e.to_string()))?;
    let cases = [
        (
            Line::new(&one[0].token, EventType::Impression, at, &viewer.id),
            "duplicate",
        ),
        (
            Line::new(&two[0].token, EventType::Impression, at, &viewer.id),
            "wrong_hoster",
        ),
        (
            Line::new(&one[3].token, EventType::Click, at, &viewer.id),
            "click_without_impression",
        ),
        (
            Line::new(&one[4].token, EventType::Impression, at, "someone-else"),
            "viewer_mismatch",
        ),
        (
            Line::new(&tampered, EventType::Impression, at, &viewer.id),
            "ticket_invalid",
        ),
        (
            Line::new(&one[5].token, EventType::Impression, at + 3_600, &viewer.id),
            "time_in_future",
        ),
    ];
    let lines: Vec<Line> = cases.iter().map(|(line, _)| line.clone()).collect();
    let (_, body) = witnessed_batch(devnet, hosting, 0, &lines)?;
    let answer = devnet.api.post("/v1/receipts", None, &body).await?;
    let expected: Vec<&str> = cases.iter().map(|(_, reason)| *reason).collect();
    Failure::expect_eq(
        "refusal reasons",
        format!("{expected:?}"),
        format!("{:?}", outcomes(&answer)),
    )?;
    let explain = [
        "ticket already billed",
        "node 2's ticket in node 1's batch",
        "a click on a ticket never shown",
        "another viewer than the ticket's",
        "altered ticket",
        "an hour in the future",
    ];
    for (reason, why) in expected.iter().zip(explain) {
        report.ok(format_args!("refused: {reason:<26} ({why})"));
    }

    // A witness signature from a key that is not the witness node's: the whole batch is refused.
    let sequence = hosting.next_sequence(0);
    let forged = signed_batch(
        devnet,
        &hosting.nodes[0].key,
        hosting.witness_node.key.address(),
        &PrivateKeySigner::random(),
        sequence,
        &lines[2..3],
    )?;
    let refused = devnet
        .api
        .send(Method::POST, "/v1/receipts", None, Some(&forged))
        .await?;
    Failure::expect_eq("forged witness batch status", 422, refused.status.as_u16())?;
    Failure::expect_eq(
        "forged witness batch field",
        json!("witnessSignature"),
        refused.body["field"].clone(),
    )?;
    report.ok("refused: a batch whose witness signature is not the witness node's (422, field witnessSignature)");

    // The first batch again, byte for byte: the first answer comes back and nothing is billed twice.
    let (first_body, first_answer) = &billed.first_batch;
    let again = devnet.api.post("/v1/receipts", None, first_body).await?;
    Failure::expect_eq("resubmitted batch's answer", first_answer.clone(), again)?;
    Failure::expect_eq(
        "hoster's earnings after the resubmission",
        billed.hoster_earned,
        earned(devnet, &hosting.hoster).await?,
    )?;
    report.ok("resubmitting the first batch returns its first answer; nothing billed twice");
    Ok(())
}

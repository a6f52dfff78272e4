//! Tracking with real keys and signatures: witnessed batches are billed once and split
//! exactly; every refusal has its reason; resubmission and concurrency never bill twice or
//! past a budget; the ledger always balances.

use std::collections::HashSet;
use std::time::Duration;

use adescrow::adserver::pricing::EventType;
use adescrow::billing::batch::{self, Confirmations, Receipt};
use adescrow::platform::db::MIGRATOR;
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

mod billing;
mod commissions;
mod concurrency;
mod ledger;
mod promos;
mod referrals;
mod refusals;
mod resellers;

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

    /// A world at 2,000 an impression (witnessed: 1,800 to the hoster, 180 to the platform,
    /// 20 to the witness), well funded, whose API has an admin; returns the admin's token.
    async fn priced_with_admin(pool: PgPool) -> (World, String) {
        let admin = PrivateKeySigner::random();
        let app = TestApp::with(pool, |config| config.admin_addresses = vec![admin.address()]);
        let admin = app.token(&admin).await;
        let world = Self::with(
            app,
            json!({}),
            json!({ "cpm": "2000000" }),
            1_000_000_000,
            1_000_000_000,
        )
        .await;
        (world, admin)
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

    /// Posts the signed batch bodies at once, each from its own task; the answers in order.
    async fn submit_concurrently(&self, bodies: Vec<Value>) -> Vec<Reply> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let app = self.app.clone();
                tokio::spawn(async move { app.post("/v1/receipts", None, body).await })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    /// A viewer signed in with a fresh wallet, and the pseudonymous id hosters see.
    async fn signed_in_viewer(&self) -> (PrivateKeySigner, String) {
        let viewer = PrivateKeySigner::random();
        let token = self.app.token(&viewer).await;
        let id = self.app.post("/v1/me/viewer-id", Some(&token), json!({})).await.ok()["viewerId"]
            .as_str()
            .unwrap()
            .to_owned();
        (viewer, id)
    }

    async fn earned(&self, payee: Address) -> u128 {
        sqlx::query_scalar::<_, String>("SELECT coalesce(sum(released), 0)::text FROM payee_balances WHERE payee = $1")
            .bind(payee.as_slice())
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
            .parse()
            .unwrap()
    }
}

pub(crate) fn receipt(ticket: &str, event: &str, at: i64, viewer: Option<&str>) -> Value {
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
    signed_under(chain_id, ESCROW, hoster, witness, sequence, receipts)
}

/// A batch body signed for the escrow at `escrow` (the EIP-712 verifying contract), whose
/// witness (if any) confirms every receipt.
pub(crate) fn signed_under(
    chain_id: u64,
    escrow: Address,
    hoster: &PrivateKeySigner,
    witness: Option<&PrivateKeySigner>,
    sequence: u64,
    receipts: &[Value],
) -> Value {
    let all = Confirmations::from_fn(receipts.len(), |_| true);
    signed_confirming(chain_id, escrow, hoster, witness.map(|w| (w, &all)), sequence, receipts)
}

/// A batch body whose witness confirms the receipts `confirmed` names.
pub(crate) fn signed_confirming(
    chain_id: u64,
    escrow: Address,
    hoster: &PrivateKeySigner,
    witness: Option<(&PrivateKeySigner, &Confirmations)>,
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
    let message = batch::message(
        hoster.address(),
        witness.map(|(w, confirmed)| (w.address(), confirmed)),
        sequence,
        batch::receipts_hash(&parsed),
    );
    let digest = batch::signing_hash(chain_id, escrow, &message);
    let sign = |key: &PrivateKeySigner| format!("0x{}", hex::encode(key.sign_hash_sync(&digest).unwrap().as_bytes()));
    let mut body = json!({
        "chainId": CHAIN_ID,
        "hoster": hoster.address(),
        "sequence": sequence,
        "receipts": receipts,
        "hosterSignature": sign(hoster),
    });
    if let Some((witness, confirmed)) = witness {
        body["witness"] = json!(witness.address());
        body["witnessSignature"] = json!(sign(witness));
        body["confirmed"] = json!(format!("0x{}", hex::encode(confirmed.as_bytes())));
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
                (SELECT coalesce(-sum(amount), 0) FROM ledger_entries WHERE role = 'escrow')::text,
                (SELECT coalesce(sum(released), 0) FROM payee_balances)::text,
                (SELECT coalesce(sum(billed), 0) FROM campaign_spend)::text",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(billed, spent, "campaigns spent what was billed");
    assert_eq!(billed, earned, "payees earned what was billed");
    assert_eq!(billed, counted, "running totals agree");
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

//! Ad-server fixtures: an advertiser with a brand, a campaign, an ad set and an ad, made
//! through the API; the escrow funding the indexer would have mirrored; billed spend.

use adescrow::accounts::node_session::session_message;
use adescrow::accounts::nodes::registration_message;
use adescrow::adserver::scheduler;
use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::support::*;

/// The token campaigns pay in.
pub const TOKEN: Address = Address::repeat_byte(0x70);

pub struct Advertiser {
    pub wallet: PrivateKeySigner,
    pub token: String,
    pub brand: String,
}

impl Advertiser {
    /// Signs in as a new advertiser and creates a brand in `zone` with the given budgets.
    pub async fn new(app: &TestApp, zone: &str, daily: u128, monthly: u128) -> Self {
        let wallet = PrivateKeySigner::random();
        let token = app.token_with_role(&wallet, "advertiser").await;
        let brand = app
            .post(
                "/v1/brands",
                Some(&token),
                json!({ "name": "Acme", "dailyBudget": daily.to_string(), "monthlyBudget": monthly.to_string(), "timeZone": zone }),
            )
            .await;
        let brand = brand.ok()["id"].as_str().unwrap().to_owned();
        Self { wallet, token, brand }
    }

    /// Creates a campaign (merging `extra` into a default body), schedules it, and adds one
    /// ad set with one ad priced by `prices`. Returns the campaign document and the ad id.
    pub async fn campaign(&self, app: &TestApp, extra: Value, prices: Value) -> (Value, String) {
        let mut body = json!({
            "brandId": self.brand,
            "name": "Launch",
            "token": TOKEN,
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2030-01-01T00:00:00Z",
        });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let campaign = app.post("/v1/campaigns", Some(&self.token), body).await.ok().clone();
        let id = campaign["id"].as_str().unwrap();
        let ad_set = app
            .post(
                "/v1/ad-sets",
                Some(&self.token),
                json!({ "campaignId": id, "name": "Set" }),
            )
            .await
            .ok()["id"]
            .clone();
        let ad = app
            .post(
                "/v1/ads",
                Some(&self.token),
                json!({
                    "adSetId": ad_set,
                    "name": "Ad",
                    "creative": { "kind": "text", "title": "Coffee", "clickUrl": "https://acme.example/" },
                    "prices": prices,
                }),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.post(
            &format!("/v1/campaigns/{id}/status"),
            Some(&self.token),
            json!({ "status": "SCHEDULED" }),
        )
        .await
        .ok();
        (campaign, ad)
    }

    /// Mirrors an escrow campaign opened and funded by this advertiser, as the indexer would.
    pub async fn fund(&self, pool: &PgPool, campaign: &Value, amount: u128) {
        let chain_id: B256 = campaign["chainCampaignId"].as_str().unwrap().parse().unwrap();
        fund_escrow(pool, chain_id, self.wallet.address(), amount).await;
    }
}

static NEXT_BLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// Inserts mirrored `CampaignOpened` and `Funded` events for an escrow campaign.
pub async fn fund_escrow(pool: &PgPool, campaign: B256, advertiser: Address, amount: u128) {
    let block = NEXT_BLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sqlx::query(
        "INSERT INTO mirror_campaign_events (chain_id, block_number, log_index, tx_hash, kind, campaign_id, account, token, amount, remaining, end_time)
         VALUES ($1, $2, 0, $3, 'opened', $4, $5, $6, NULL, NULL, 1893456000),
                ($1, $2, 1, $3, 'funded', $4, $5, NULL, $7::text::numeric, $7::text::numeric, NULL)",
    )
    .bind(CHAIN_ID as i64)
    .bind(block)
    .bind(B256::repeat_byte(1).as_slice())
    .bind(campaign.as_slice())
    .bind(advertiser.as_slice())
    .bind(TOKEN.as_slice())
    .bind(amount.to_string())
    .execute(pool)
    .await
    .unwrap();
}

/// Records billed spend for an ad at `at`, as billing would: the event, the campaign's
/// running total and the brand's local day.
pub async fn bill(pool: &PgPool, campaign: &str, ad: &str, price: u128, at: OffsetDateTime) {
    let node = any_node(pool).await;
    sqlx::query(
        "WITH e AS (
             INSERT INTO billed_events (ticket_id, event, campaign_id, ad_id, hoster_node_id, price, occurred_at, billed_at, platform_share)
             VALUES ($1, 'impression', $2, $3, $4, $5::text::numeric, $6, $6, $5::text::numeric)
         ), c AS (
             INSERT INTO campaign_spend (campaign_id, billed) VALUES ($2, $5::text::numeric)
             ON CONFLICT (campaign_id) DO UPDATE SET billed = campaign_spend.billed + EXCLUDED.billed
         )
         INSERT INTO brand_daily_spend (brand_id, day, spend)
         SELECT c.brand_id, ($6 AT TIME ZONE b.time_zone)::date, $5::text::numeric
         FROM campaigns c JOIN brands b ON b.id = c.brand_id WHERE c.id = $2
         ON CONFLICT (brand_id, day) DO UPDATE SET spend = brand_daily_spend.spend + EXCLUDED.spend",
    )
    .bind(Uuid::new_v4())
    .bind(campaign.parse::<Uuid>().unwrap())
    .bind(ad.parse::<Uuid>().unwrap())
    .bind(node)
    .bind(price.to_string())
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

/// Some registered node, created on first use, for billed-event fixtures.
async fn any_node(pool: &PgPool) -> Uuid {
    if let Some(id) = sqlx::query_scalar("SELECT id FROM nodes LIMIT 1")
        .fetch_optional(pool)
        .await
        .unwrap()
    {
        return id;
    }
    let owner: Uuid = sqlx::query_scalar("INSERT INTO users (address) VALUES ($1) RETURNING id")
        .bind(PrivateKeySigner::random().address().as_slice())
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query_scalar("INSERT INTO nodes (owner_id, address, name) VALUES ($1, $2, 'billing') RETURNING id")
        .bind(owner)
        .bind(PrivateKeySigner::random().address().as_slice())
        .fetch_one(pool)
        .await
        .unwrap()
}

pub struct Node {
    pub key: PrivateKeySigner,
    pub id: String,
    pub owner: PrivateKeySigner,
    pub owner_token: String,
}

/// A new hoster with one registered node.
pub async fn hoster_node(app: &TestApp, can_witness: bool) -> Node {
    let owner = PrivateKeySigner::random();
    let key = PrivateKeySigner::random();
    let owner_token = app.token_with_role(&owner, "hoster").await;
    let message = registration_message(owner.address(), key.address(), CHAIN_ID);
    let node = app
        .post(
            "/v1/nodes",
            Some(&owner_token),
            json!({ "address": key.address(), "name": "edge", "canWitness": can_witness, "signature": personal_sign(&key, &message) }),
        )
        .await;
    let id = node.ok()["id"].as_str().unwrap().to_owned();
    Node {
        key,
        id,
        owner,
        owner_token,
    }
}

pub fn session_body(key: &PrivateKeySigner, issued_at: OffsetDateTime) -> Value {
    let issued_at = issued_at.format(&Rfc3339).unwrap();
    let message = session_message(key.address(), CHAIN_ID, &issued_at);
    json!({ "address": key.address(), "issuedAt": issued_at, "signature": personal_sign(key, &message) })
}

pub async fn node_token(app: &TestApp, node: &Node) -> String {
    let session = app
        .post(
            "/v1/nodes/sessions",
            None,
            session_body(&node.key, OffsetDateTime::now_utc()),
        )
        .await;
    assert_eq!(session.ok()["nodeId"], node.id.as_str());
    session.body["token"].as_str().unwrap().to_owned()
}

/// A running, funded campaign with one ad; returns (campaign id, ad id).
pub async fn running(app: &TestApp, advertiser: &Advertiser, extra: Value, prices: Value) -> (String, String) {
    let (campaign, ad) = advertiser.campaign(app, extra, prices).await;
    advertiser.fund(&app.pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    assert_eq!(tick(&app.pool, &id, &now).await, "RUNNING");
    (id, ad)
}

pub async fn decide(app: &TestApp, token: &str, body: Value) -> Value {
    app.post("/v1/decisions", Some(token), body).await.ok().clone()
}

/// Runs the scheduler at `at` (RFC 3339) and returns the campaign's status afterwards.
pub async fn tick(pool: &PgPool, campaign: &str, at: &str) -> String {
    let now = OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    scheduler::tick(pool, CHAIN_ID, now).await.unwrap();
    status(pool, campaign).await
}

pub async fn status(pool: &PgPool, campaign: &str) -> String {
    sqlx::query_scalar("SELECT upper(status::text) FROM campaigns WHERE id = $1")
        .bind(campaign.parse::<Uuid>().unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

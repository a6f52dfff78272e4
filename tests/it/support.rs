//! Test harness: an app over a test database, request helpers, and wallet sign-in.

use std::time::Duration;

use adescrow::http::{AppState, app};
use adescrow::platform::config::ApiArgs;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;

pub mod devnet;
mod foundry;

pub const DOMAIN: &str = "api.adescrow.test";
pub const CHAIN_ID: u64 = 31337;

/// Settings for tests: generous rate limits, an RPC nobody listens on unless a test says so.
pub fn config() -> ApiArgs {
    ApiArgs {
        public_url: format!("https://{DOMAIN}").parse().unwrap(),
        rpc_url: "http://127.0.0.1:9".parse().unwrap(),
        chain_id: CHAIN_ID,
        jwt_secret: "test-secret-test-secret-test-secret!".into(),
        session_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(86_400),
        nonce_ttl: Duration::from_secs(600),
        nonces_per_client: std::num::NonZeroU32::new(32).unwrap(),
        admin_addresses: Vec::new(),
        body_limit: 64 * 1024,
        request_timeout: Duration::from_secs(10),
        idempotency_key_lifetime: Duration::from_secs(86_400),
        cors_origins: Vec::new(),
        rate_limit_per_second: 10_000,
        rate_limit_burst: 10_000,
        indexer_max_lag: 64,
        ticket_secret: "ticket-secret-ticket-secret-ticket!".into(),
        ticket_ttl: Duration::from_secs(3600),
        node_session_ttl: Duration::from_secs(3600),
        serving_refresh: Duration::from_secs(5),
        escrow_address: Some(alloy::primitives::Address::repeat_byte(0xe5)),
        consent_address: Some(alloy::primitives::Address::repeat_byte(0xc0)),
        treasury_address: None,
        grace_period: None,
        web_dir: "web/app/dist".into(),
        explorer_tx_url: None,
        platform_address: alloy::primitives::Address::repeat_byte(0xfa),
        split_witnessed: vec![9000, 900, 100],
        split_unwitnessed: vec![5000, 5000],
        viewer_reward_bps: vec![0, 500, 0, 500],
        max_batch_receipts: 1000,
        leaderboard_zones: Vec::new(),
        // Tests read a board right after the events that change it.
        leaderboard_refresh: Duration::ZERO,
        metrics_addr: None,
        market: adescrow::platform::config::MarketArgs {
            secret: "market-secret-market-secret-market-secret".into(),
            store: std::env::temp_dir().join("adescrow-test-market").display().to_string(),
            fee_bps: 1500,
            refund_window: Duration::from_secs(14 * 86_400),
            pay_within: Duration::from_secs(3600),
            download_entitlement: Duration::from_secs(30 * 86_400),
            link_ttl: Duration::from_secs(600),
            max_file_size: 1024 * 1024,
        },
        growth: adescrow::platform::config::GrowthArgs {
            referral_link_ttl: Duration::from_secs(30 * 86_400),
            affiliate_rate_bps: 2000,
            affiliate_max_rate_bps: 5000,
            affiliate_months: 3,
            affiliate_hold: Duration::from_secs(30 * 86_400),
            affiliate_min_payout: Vec::new(),
        },
    }
}

/// A JSON (or text) response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts the reply is a problem document of the given status and type slug; returns it.
    #[track_caller]
    pub fn problem(&self, status: StatusCode, slug: &str) -> &Value {
        assert_eq!(self.status, status, "status; body: {}", self.text);
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json",
            "content type; body: {}",
            self.text
        );
        assert_eq!(
            self.body["type"],
            format!("/problems/{slug}"),
            "type; body: {}",
            self.text
        );
        assert_eq!(self.body["status"], status.as_u16(), "status member");
        &self.body
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        &self.body
    }
}

/// The API over a test database. Cloning shares the router and pool, for concurrent requests.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub pool: PgPool,
    pub state: AppState,
}

impl TestApp {
    pub fn new(pool: PgPool) -> Self {
        Self::with(pool, |_| {})
    }

    pub fn with(pool: PgPool, adjust: impl FnOnce(&mut ApiArgs)) -> Self {
        let mut config = config();
        adjust(&mut config);
        let state = AppState::new(config, pool.clone()).expect("valid test config");
        Self {
            router: app(state.clone()),
            pool,
            state,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    /// Signs in with a wallet through the real SIWE flow; returns the session document.
    pub async fn sign_in(&self, wallet: &PrivateKeySigner) -> Value {
        self.sign_in_with(wallet, None).await.ok().clone()
    }

    /// Signs in presenting `referral` (a referral code or link, or an affiliate code); the
    /// answer as it came.
    pub async fn sign_in_with(&self, wallet: &PrivateKeySigner, referral: Option<&str>) -> Reply {
        let nonce = self.get("/v1/auth/nonce", None).await.ok()["nonce"]
            .as_str()
            .unwrap()
            .to_owned();
        let message = siwe_message(
            wallet.address(),
            DOMAIN,
            &format!("https://{DOMAIN}"),
            CHAIN_ID,
            &nonce,
            OffsetDateTime::now_utc(),
        );
        let mut body = sign_in_body(wallet, &message);
        if let Some(referral) = referral {
            body["referral"] = serde_json::json!(referral);
        }
        self.post("/v1/auth/siwe", None, body).await
    }

    /// Signs in and returns the access token.
    pub async fn token(&self, wallet: &PrivateKeySigner) -> String {
        self.sign_in(wallet).await["accessToken"].as_str().unwrap().to_owned()
    }

    /// Signs in, takes `role`, and returns the access token.
    pub async fn token_with_role(&self, wallet: &PrivateKeySigner, role: &str) -> String {
        let token = self.token(wallet).await;
        self.post("/v1/me/roles", Some(&token), serde_json::json!({ "role": role }))
            .await
            .ok();
        token
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// An EIP-4361 message, as a wallet would compose it.
pub fn siwe_message(
    address: Address,
    domain: &str,
    uri: &str,
    chain_id: u64,
    nonce: &str,
    issued_at: OffsetDateTime,
) -> String {
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{}\n\nSign in to adescrow.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {}",
        address.to_checksum(None),
        issued_at.format(&Rfc3339).unwrap()
    )
}

/// `personal_sign` of `message`, 0x-hex encoded.
pub fn personal_sign(wallet: &PrivateKeySigner, message: &str) -> String {
    format!(
        "0x{}",
        hex::encode(wallet.sign_message_sync(message.as_bytes()).unwrap().as_bytes())
    )
}

pub fn sign_in_body(wallet: &PrivateKeySigner, message: &str) -> Value {
    serde_json::json!({ "message": message, "signature": personal_sign(wallet, message) })
}

/// A local anvil: the native binary of the pinned Foundry (see `foundry`).
pub fn spawn_anvil() -> AnvilInstance {
    Anvil::at(foundry::anvil()).chain_id(CHAIN_ID).spawn()
}

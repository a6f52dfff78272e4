//! The hoster node's calls to the API and to its witness: a node session (renewed before it
//! expires), decisions, co-signatures and receipt batches, each outcome classified so the
//! node knows whether to retry, change the batch, or give up on it.

use std::time::Duration;

use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;
use url::Url;

use super::{CosignRequest, Cosigned, WireReceipt};
use crate::accounts::node_session::session_message;

/// Why a call did not give an answer to use.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Worth trying again later: the network, a timeout, a 5xx or a 429.
    #[error("{0}")]
    Transient(String),
    /// The other side refused the request itself: a problem document's field and detail.
    #[error("refused ({status}): {field} {detail}")]
    Refused { status: u16, field: String, detail: String },
}

/// A decision request as the hoster node forwards it (`POST /v1/decisions`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    pub placement: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

/// The parts of a decision the node keeps and passes on to the page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecidedAd {
    pub ticket: String,
    pub ticket_id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Passed through to the page as the API wrote it.
    pub creative: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub ads: Vec<DecidedAd>,
    pub reason: Option<String>,
}

/// A receipt batch as `POST /v1/receipts` takes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchBody {
    pub chain_id: u64,
    pub hoster: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Address>,
    pub sequence: u64,
    pub receipts: Vec<WireReceipt>,
    pub hoster_signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<alloy::primitives::Bytes>,
}

#[derive(Debug)]
struct Session {
    token: String,
    renew_at: OffsetDateTime,
}

/// The node's client of the API.
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    signer: PrivateKeySigner,
    chain_id: u64,
    session: Mutex<Option<Session>>,
}

impl ApiClient {
    /// `base` is the API's root (`http://host:port`); calls go under `/v1`.
    pub fn new(base: Url, signer: PrivateKeySigner, chain_id: u64, timeout: Duration) -> Result<Self, CallError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| CallError::Transient(error.to_string()))?;
        Ok(Self {
            http,
            base,
            signer,
            chain_id,
            session: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> Result<Url, CallError> {
        self.base
            .join(path)
            .map_err(|error| CallError::Transient(format!("bad API URL: {error}")))
    }

    /// A node session token, opened or renewed a minute before it expires.
    async fn token(&self) -> Result<String, CallError> {
        let mut session = self.session.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(open) = session.as_ref().filter(|s| s.renew_at > now) {
            return Ok(open.token.clone());
        }
        let issued_at = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&Rfc3339)
            .map_err(|error| CallError::Transient(error.to_string()))?;
        let message = session_message(self.signer.address(), self.chain_id, &issued_at);
        let signature = self
            .signer
            .sign_message_sync(message.as_bytes())
            .map_err(|error| CallError::Transient(format!("cannot sign the session: {error}")))?;
        let body = serde_json::json!({
            "address": self.signer.address(),
            "issuedAt": issued_at,
            "signature": format!("0x{}", hex::encode(signature.as_bytes())),
        });
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Opened {
            token: String,
            #[serde(with = "time::serde::rfc3339")]
            expires_at: OffsetDateTime,
        }
        let opened: Opened = answer(self.http.post(self.url("v1/nodes/sessions")?).json(&body).send().await).await?;
        let renew_at = opened.expires_at - time::Duration::minutes(1);
        *session = Some(Session {
            token: opened.token.clone(),
            renew_at,
        });
        Ok(opened.token)
    }

    /// Asks the ad server for a decision; a session the API no longer knows is reopened once.
    pub async fn decide(&self, request: &DecisionRequest) -> Result<Decision, CallError> {
        for _ in 0..2 {
            let token = self.token().await?;
            let sent = self
                .http
                .post(self.url("v1/decisions")?)
                .bearer_auth(token)
                .json(request)
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    *self.session.lock().await = None;
                }
                sent => return answer(sent).await,
            }
        }
        Err(CallError::Transient("the API keeps refusing the node session".into()))
    }

    /// Submits a signed batch; the answer is the API's, passed on as JSON.
    pub async fn submit(&self, body: &BatchBody) -> Result<Value, CallError> {
        answer(self.http.post(self.url("v1/receipts")?).json(body).send().await).await
    }

    /// Asks a witness node to co-sign.
    pub async fn cosign(
        &self,
        witness: &Url,
        request: &CosignRequest,
        timeout: Duration,
    ) -> Result<Cosigned, CallError> {
        let url = witness
            .join("v1/cosign")
            .map_err(|error| CallError::Transient(format!("bad witness URL: {error}")))?;
        answer(self.http.post(url).timeout(timeout).json(request).send().await).await
    }
}

/// Reads a response as `T`, or classifies why not.
async fn answer<T: serde::de::DeserializeOwned>(sent: reqwest::Result<reqwest::Response>) -> Result<T, CallError> {
    let response = sent.map_err(|error| CallError::Transient(error.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return response
            .json()
            .await
            .map_err(|error| CallError::Transient(format!("unreadable answer: {error}")));
    }
    let problem: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
        return Err(CallError::Transient(format!("{status}: {problem}")));
    }
    let text = |key: &str| problem[key].as_str().unwrap_or_default().to_owned();
    Err(CallError::Refused {
        status: status.as_u16(),
        field: text("field"),
        detail: text("detail"),
    })
}

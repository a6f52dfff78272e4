//! The ad server's hoster-facing side: node sessions and decisions.

use std::collections::BTreeMap;

use alloy::primitives::Address;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiResult, ProblemSchema};
use super::extract::{Json, NodeCaller};
use crate::adserver::creatives::Creative;
use crate::adserver::pricing::EventType;
use crate::adserver::serving::{Context, NoAdReason, ServedAd};
use crate::money::Amount;
use crate::platform::values::{At, Label, Labels, Reference, WebUrl};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(node_session))
        .routes(routes!(decide))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSessionRequest {
    /// The node's registered signing address.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    pub address: Address,
    /// RFC 3339 time of signing, within 60 seconds of the server's clock.
    #[schema(example = "2026-11-21T12:00:00Z")]
    pub issued_at: String,
    /// The node key's `personal_sign` of
    /// `"adescrow node session\nnode: <address>\nchain id: <chain id>\nissued at: <issuedAt>"`,
    /// the address EIP-55 checksummed and `issuedAt` exactly as sent.
    #[schema(value_type = crate::platform::wire::schema::Signature)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSession {
    pub node_id: Uuid,
    /// Bearer token for node calls such as `POST /v1/decisions`.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Opens a node session: the node proves it holds its registered key.
#[utoipa::path(
    post, path = "/nodes/sessions", tag = "decisions", request_body = NodeSessionRequest,
    responses((status = 200, body = NodeSession), (status = 403, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn node_session(
    State(state): State<AppState>,
    Json(request): Json<NodeSessionRequest>,
) -> ApiResult<Json<NodeSession>> {
    let now = OffsetDateTime::now_utc();
    let node = state
        .node_sessions
        .sign_in(
            &state.db,
            request.address,
            state.config.chain_id,
            &request.issued_at,
            &request.signature,
            now,
        )
        .await?;
    let (token, expires_at) = state.node_sessions.issue(node, now);
    Ok(Json(NodeSession {
        node_id: node,
        token,
        expires_at,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    /// The placement's slug.
    #[schema(example = "sidebar")]
    pub placement: String,
    /// The viewer's pseudonymous id: a linked `vw_...` id for signed-in viewers (their
    /// on-chain consent then counts), or any stable id the hoster keeps for anonymous ones.
    #[schema(value_type = Option<crate::platform::wire::schema::Reference>)]
    pub viewer: Option<String>,
    #[schema(value_type = Option<crate::platform::wire::schema::Label>)]
    pub region: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::platform::wire::schema::Label>, max_items = 100)]
    pub communities: Vec<String>,
    #[schema(value_type = Option<crate::platform::wire::schema::Label>)]
    pub user_type: Option<String>,
    /// The page the ad will appear on.
    #[schema(value_type = Option<crate::platform::wire::schema::WebUrl>, example = "https://forum.example.com/t/42")]
    pub page_url: Option<Url>,
}

/// One ad to show, and the ticket to report its events with.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecidedAd {
    /// Pass this back with every receipt for this ad.
    pub ticket: String,
    pub ticket_id: Uuid,
    pub ad_id: Uuid,
    pub campaign_id: Uuid,
    pub hoster_node_id: Uuid,
    /// Unit price per event type, in base units of the campaign's token.
    #[schema(value_type = Object, example = json!({"impression": "2000", "click": "50000"}))]
    pub prices: BTreeMap<EventType, Amount>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub creative: Creative,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionResponse {
    /// Best first; at most the placement's `maxAds`.
    pub ads: Vec<DecidedAd>,
    /// Why there are no ads, when there are none.
    pub reason: Option<NoAdReason>,
}

impl From<ServedAd> for DecidedAd {
    fn from(served: ServedAd) -> Self {
        let ticket = served.ticket;
        Self {
            ticket: served.token,
            ticket_id: ticket.id,
            ad_id: ticket.ad_id,
            campaign_id: ticket.campaign_id,
            hoster_node_id: ticket.hoster_node_id,
            prices: EventType::ALL
                .into_iter()
                .filter_map(|event| ticket.prices.get(event).map(|price| (event, price)))
                .collect(),
            expires_at: OffsetDateTime::from_unix_timestamp(ticket.expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            creative: (*served.creative).clone(),
        }
    }
}

/// Chooses ads for a placement and viewer. Needs a node session token. Answered from
/// memory: running campaigns inside their schedule, targeting matched, consent held where
/// required, frequency caps not reached, budget left; best priority, then expected revenue.
#[utoipa::path(
    post, path = "/decisions", tag = "decisions", security(("nodeSession" = [])), request_body = DecisionRequest,
    responses((status = 200, body = DecisionResponse), (status = 401, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn decide(
    State(state): State<AppState>,
    NodeCaller(node): NodeCaller,
    Json(request): Json<DecisionRequest>,
) -> ApiResult<Json<DecisionResponse>> {
    let viewer = request
        .viewer
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .at("viewer")?;
    let region = request.region.as_deref().map(Label::parse).transpose().at("region")?;
    let communities = Labels::parse(&request.communities).at("communities")?.to_strings();
    let user_type = request
        .user_type
        .as_deref()
        .map(Label::parse)
        .transpose()
        .at("userType")?;
    // Decisions do not read the page; a link that is not a web URL is refused all the same.
    request.page_url.map(WebUrl::parse).transpose().at("pageUrl")?;
    let context = Context {
        viewer: viewer.as_ref().map(Reference::as_str),
        region: region.as_ref().map(Label::as_str),
        communities: &communities,
        user_type: user_type.as_ref().map(Label::as_str),
    };
    let decision = state
        .ad_server
        .decide(node, request.placement.trim(), &context, OffsetDateTime::now_utc())?;
    metrics::counter!("adescrow_decisions_total", "filled" => if decision.is_ok() { "yes" } else { "no" }).increment(1);
    Ok(Json(match decision {
        Ok(ads) => DecisionResponse {
            ads: ads.into_iter().map(DecidedAd::from).collect(),
            reason: None,
        },
        Err(reason) => DecisionResponse {
            ads: Vec::new(),
            reason: Some(reason),
        },
    }))
}

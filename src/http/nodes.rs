//! Node registry over HTTP: hosters register, rename, flag and retire their node keys.

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access::{Caller, Hosters, NodeManagers};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use super::{AppState, validate};
use crate::accounts::nodes::{self, Node, Registration};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list))
        .routes(routes!(get_node, update, retire))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterNode {
    /// The node's secp256k1 signing address.
    #[schema(value_type = crate::platform::wire::schema::Address, example = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")]
    pub address: Address,
    #[schema(value_type = crate::platform::wire::schema::Name, example = "edge-eu-1")]
    pub name: String,
    /// Whether the node may witness other hosters' impressions.
    #[serde(default)]
    pub can_witness: bool,
    /// Proof of possession: the node key's `personal_sign` of
    /// `"adescrow node registration\nowner: <owner address>\nnode: <node address>\nchain id: <chain id>"`
    /// with both addresses EIP-55 checksummed.
    #[schema(value_type = crate::platform::wire::schema::Signature)]
    pub signature: String,
}

/// Registers a node signing key. Needs the hoster role.
#[utoipa::path(
    post, path = "/nodes", tag = "nodes", security(("bearer" = ["hoster"])), request_body = RegisterNode,
    responses(
        (status = 201, body = Node), (status = 403, body = ProblemSchema),
        (status = 409, description = "Address already registered", body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn register(
    State(state): State<AppState>,
    principal: Caller<Hosters>,
    Json(request): Json<RegisterNode>,
) -> ApiResult<(StatusCode, Json<Node>)> {
    let name = validate::name("name", &request.name)?;
    let registration = Registration {
        owner_id: principal.user_id,
        owner: principal.address,
        chain_id: state.config.chain_id,
        address: request.address,
        name,
        can_witness: request.can_witness,
        signature: &request.signature,
    };
    let node = nodes::register(&state.db, &registration).await?;
    tracing::info!(node = %node.id, address = %node.address, owner = %principal.user_id, "node registered");
    Ok((StatusCode::CREATED, Json(node)))
}

/// The caller's nodes (every node for admins).
#[utoipa::path(
    get, path = "/nodes", tag = "nodes", security(("bearer" = ["hoster", "admin"])),
    responses((status = 200, body = [Node]), (status = 401, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, principal: Caller<NodeManagers>) -> ApiResult<Json<Vec<Node>>> {
    Ok(Json(nodes::list(&state.db, principal.scope()).await?))
}

/// One node.
#[utoipa::path(
    get, path = "/nodes/{id}", tag = "nodes", security(("bearer" = ["hoster", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Node), (status = 404, body = ProblemSchema))
)]
async fn get_node(
    State(state): State<AppState>,
    principal: Caller<NodeManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Node>> {
    let node = nodes::find(&state.db, id, principal.scope()).await?;
    node.map(Json).ok_or(ApiError::NotFound("node"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateNode {
    #[schema(value_type = Option<crate::platform::wire::schema::Name>)]
    pub name: Option<String>,
    pub can_witness: Option<bool>,
}

/// Renames a node or changes whether it may witness.
#[utoipa::path(
    patch, path = "/nodes/{id}", tag = "nodes", security(("bearer" = ["hoster", "admin"])), params(("id" = Uuid, Path)),
    request_body = UpdateNode,
    responses((status = 200, body = Node), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn update(
    State(state): State<AppState>,
    principal: Caller<NodeManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateNode>,
) -> ApiResult<Json<Node>> {
    let name = request
        .name
        .as_deref()
        .map(|name| validate::name("name", name))
        .transpose()?;
    let node = nodes::update(&state.db, id, principal.scope(), name, request.can_witness).await?;
    node.map(Json).ok_or(ApiError::NotFound("node"))
}

/// Retires a node; its signatures stop counting. Idempotent.
#[utoipa::path(
    delete, path = "/nodes/{id}", tag = "nodes", security(("bearer" = ["hoster", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Node), (status = 404, body = ProblemSchema))
)]
async fn retire(
    State(state): State<AppState>,
    principal: Caller<NodeManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Node>> {
    let node = nodes::retire(&state.db, id, principal.scope()).await?;
    node.map(Json).ok_or(ApiError::NotFound("node"))
}

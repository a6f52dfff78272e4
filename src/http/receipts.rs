//! Receipt batches over HTTP: hoster nodes report what they showed, signed by themselves and
//! co-signed by a witness node; each receipt comes back billed or refused with a reason.
//! Also each payee's earnings, from the ledger.

use alloy::primitives::{Address, Bytes};
use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Caller, SignedIn};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{self, Json, JsonBody};
use super::{AppState, validate};
use crate::adserver::pricing::EventType;
use crate::billing::batch::Receipt;
use crate::billing::store;
use crate::billing::verify::{self, BatchLimits, SignedBatch};
use crate::billing::{BatchAnswer, Checked, VerifiedBatch, check_receipts};
use crate::money::ledger::{self, Balance};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(submit)).routes(routes!(earnings))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptInput {
    /// The decision ticket, exactly as issued.
    pub ticket: String,
    pub event: EventType,
    /// When it happened, in unix seconds.
    pub at: i64,
    /// The viewer's pseudonymous id, as given in the decision request.
    #[schema(value_type = Option<crate::platform::wire::schema::Reference>)]
    pub viewer: Option<String>,
    /// For acquisitions: the advertiser's order reference.
    #[schema(value_type = Option<crate::platform::wire::schema::Reference>)]
    pub order_ref: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitBatch {
    pub chain_id: u64,
    /// The hoster node's signing address.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    pub hoster: Address,
    /// The witness node's signing address; leave out for an unwitnessed batch.
    #[schema(value_type = Option<crate::platform::wire::schema::Address>)]
    pub witness: Option<Address>,
    /// Per hoster node, a number never used for a different batch.
    pub sequence: u64,
    pub receipts: Vec<ReceiptInput>,
    /// The hoster key's signature of the `ReceiptBatch` EIP-712 message (`docs/ENCODING.md`).
    pub hoster_signature: String,
    /// The witness key's signature of the same message.
    pub witness_signature: Option<String>,
    /// With a witness: which receipts it observed itself, a bitmap (receipt `i` is bit
    /// `i % 8` of byte `i / 8`, `docs/ENCODING.md`) as 0x-hex. The others are billed as
    /// unwitnessed.
    #[schema(value_type = Option<String>, example = "0x0b")]
    pub confirmed: Option<Bytes>,
}

/// Submits a batch of receipts. Each is billed or refused with a reason; a batch submitted
/// again with the same sequence gets the first answer and bills nothing twice. Receipts the
/// witness confirmed are billed as witnessed; the rest, and every receipt of a batch without
/// a witness, as unwitnessed (a smaller hoster share).
#[utoipa::path(
    post, path = "/receipts", tag = "tracking", request_body = SubmitBatch,
    responses(
        (status = 200, body = BatchAnswer),
        (status = 409, description = "The sequence was used for a different batch", body = ProblemSchema),
        (status = 422, body = ProblemSchema), (status = 503, body = ProblemSchema),
    )
)]
async fn submit(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult<Json<BatchAnswer>> {
    let now = OffsetDateTime::now_utc();
    // Parsing, hashing and checking a thousand receipts is milliseconds of CPU. It runs on
    // the blocking pool so that the runtime's workers stay free to drive other batches'
    // database work: a batch that waits for a worker while it holds its campaigns' spend
    // rows holds up every batch billing the same campaigns.
    let (verified, checked) = tokio::task::spawn_blocking({
        let state = state.clone();
        move || prepare(&state, &body, now)
    })
    .await
    .map_err(|error| ApiError::Internal(error.into()))??;
    let answer = store::bill(
        &state.db,
        state.config.chain_id,
        &state.split,
        &state.leaderboard_zones,
        &verified,
        &checked,
        now,
    )
    .await?;
    metrics::counter!("adescrow_receipts_total", "outcome" => "billed").increment(answer.billed as u64);
    metrics::counter!("adescrow_receipts_total", "outcome" => "refused").increment(answer.refused as u64);
    Ok(Json(answer))
}

/// A batch ready to bill: its signatures verified, each receipt checked on its own
/// (`checked[i]` for receipt `i`).
type Prepared = (VerifiedBatch, Vec<Checked>);

/// Everything about a batch that needs no database: its shape, its signatures against the
/// node registry, and each receipt's ticket.
fn prepare(state: &AppState, body: &[u8], now: OffsetDateTime) -> ApiResult<Prepared> {
    let mut request: SubmitBatch = extract::parse(body)?;
    let limits = BatchLimits {
        chain_id: state.config.chain_id,
        max_receipts: state.config.max_batch_receipts,
    };
    limits.check(request.chain_id, request.receipts.len())?;
    let escrow = state.config.escrow_address.ok_or_else(|| {
        ApiError::Unavailable("billing needs the escrow address (ADESCROW_ESCROW_ADDRESS or a deployment file)".into())
    })?;
    let mut receipts = Vec::with_capacity(request.receipts.len());
    for (i, input) in std::mem::take(&mut request.receipts).into_iter().enumerate() {
        let field = || format!("receipts[{i}].at");
        let at = OffsetDateTime::from_unix_timestamp(input.at)
            .map_err(|_| ApiError::invalid(field(), "must be unix seconds"))
            .and_then(|at| validate::instant(&field(), at))?;
        if let Some(viewer) = &input.viewer {
            validate::text(&format!("receipts[{i}].viewer"), viewer, 1, 128)?;
        }
        if let Some(order) = &input.order_ref {
            validate::text(&format!("receipts[{i}].orderRef"), order, 1, 128)?;
        }
        receipts.push(Receipt {
            ticket: input.ticket,
            event: input.event,
            at,
            viewer: input.viewer,
            order_ref: input.order_ref,
        });
    }
    let signed = SignedBatch {
        chain_id: state.config.chain_id,
        hoster: request.hoster,
        witness: request.witness,
        sequence: request.sequence,
        hoster_signature: &request.hoster_signature,
        witness_signature: request.witness_signature.as_deref(),
        confirmed: request.confirmed.as_ref().map(|bits| bits.as_ref()),
    };
    let verified = verify::verify(escrow, &signed, receipts, |address| {
        state.ad_server.node_by_address(address)
    })?;
    let checked = check_receipts(state.ad_server.tickets(), &verified, now);
    Ok((verified, checked))
}

/// What the caller's wallet has earned per token (as hoster operator, witness, viewer or
/// platform), from the ledger.
#[utoipa::path(
    get, path = "/me/earnings", tag = "tracking", security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = [Balance]), (status = 401, body = ProblemSchema))
)]
async fn earnings(State(state): State<AppState>, principal: Caller<SignedIn>) -> ApiResult<Json<Vec<Balance>>> {
    Ok(Json(ledger::balances(&state.db, principal.address).await?))
}

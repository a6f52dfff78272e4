//! White-label resellers over HTTP: an agency applies, drafts and submits its contracts,
//! brands itself and proves its domain, and follows its usage and markups; admins move its
//! contracts along and set its quotas and pricing; advertisers join one; anyone reads the
//! branding a host name serves.

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Advertisers, Caller, SignedIn};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::adserver::schedule;
use crate::money::ledger::LedgerError;
use crate::platform::values::{At, Date, Instant, Name};
use crate::programs::resellers::branding::{self, Branding, Domain, PublicBranding};
use crate::programs::resellers::contracts::{self, Actor, Contract, NewContract, Status};
use crate::programs::resellers::members::{self, JoinBy, Membership, SoftWarning, Usage};
use crate::programs::resellers::pricing::{self, Markup, Schedule, Tier};
use crate::programs::resellers::{self, Quotas, Reseller, ResellerError};

/// Says a count went past a soft quota: `<quota>; used=<n>; soft=<n>`.
pub const QUOTA_WARNING: HeaderName = HeaderName::from_static("quota-warning");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(apply, dashboard))
        .routes(routes!(set_branding))
        .routes(routes!(claim_domain))
        .routes(routes!(verify_domain))
        .routes(routes!(draft_contract))
        .routes(routes!(move_own_contract))
        .routes(routes!(list))
        .routes(routes!(admin_dashboard))
        .routes(routes!(move_contract))
        .routes(routes!(set_quotas))
        .routes(routes!(set_tiers))
        .routes(routes!(join, my_membership))
        .routes(routes!(branding_here))
}

impl From<ResellerError> for ApiError {
    fn from(error: ResellerError) -> Self {
        let message = error.to_string();
        match error {
            ResellerError::Invalid { field, error } => Self::invalid(field, error.to_string()),
            ResellerError::NotAReseller => Self::NotFound("reseller (apply first)"),
            ResellerError::UnknownReseller => Self::NotFound("reseller"),
            ResellerError::UnknownContract => Self::NotFound("contract"),
            ResellerError::UnknownCode => Self::NotFound("reseller with this code or domain"),
            ResellerError::AlreadyApplied => Self::conflict("name", message),
            ResellerError::Workflow { .. } | ResellerError::AnotherLive | ResellerError::ContractEnded => {
                Self::conflict("status", message)
            }
            ResellerError::NotInBusiness | ResellerError::AlreadyJoined => Self::conflict("code", message),
            ResellerError::DomainTaken(_) | ResellerError::NoDomain | ResellerError::Unproven(_) => {
                Self::conflict("domain", message)
            }
            ResellerError::QuotaExceeded {
                quota,
                retry_after_secs,
                ..
            } => Self::QuotaExceeded {
                quota: quota.label(),
                message,
                retry_after_secs,
            },
            ResellerError::Ledger(LedgerError::Database(error)) | ResellerError::Database(error) => error.into(),
            ResellerError::Ledger(error) => Self::Internal(error.into()),
        }
    }
}

/// A response with the soft-quota warning, when a count passed one.
fn warned(response: impl IntoResponse, warning: Option<SoftWarning>) -> Response {
    let mut response = response.into_response();
    if let Some(value) = warning.and_then(|w| HeaderValue::from_str(&w.header()).ok()) {
        response.headers_mut().insert(QUOTA_WARNING, value);
    }
    response
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResellerApplication {
    /// The brand it resells under.
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    /// Who the agency is and whom it will bring.
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub application: String,
}

/// Applies as a reseller: the agency gets the code its advertisers join with, and drafts a
/// contract for an admin to approve.
#[utoipa::path(
    post, path = "/resellers/me", tag = "resellers", request_body = ResellerApplication,
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 201, body = Reseller), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn apply(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Json(request): Json<ResellerApplication>,
) -> ApiResult<(StatusCode, Json<Reseller>)> {
    let name = Name::parse(&request.name).at("name")?;
    let reseller = resellers::apply(
        &state.db,
        caller.user_id,
        &name,
        &request.application,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(reseller)))
}

/// A reseller's dashboard: its standing, contracts with their history, usage against its
/// quotas for the last twelve months, pricing, and latest markups.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResellerDashboard {
    pub reseller: Reseller,
    pub contracts: Vec<Contract>,
    pub usage: Vec<Usage>,
    pub pricing: Vec<Schedule>,
    pub markups: Vec<Markup>,
}

async fn dashboard_of(state: &AppState, reseller: Reseller) -> ApiResult<ResellerDashboard> {
    let now = OffsetDateTime::now_utc();
    let (contracts, usage, pricing, markups) = tokio::try_join!(
        contracts::of_reseller(&state.db, reseller.id, now),
        members::usage(&state.db, reseller.id, 12, now),
        pricing::schedules(&state.db, reseller.id),
        async { Ok(pricing::markups(&state.db, reseller.id, 100).await?) },
    )?;
    Ok(ResellerDashboard {
        reseller,
        contracts,
        usage,
        pricing,
        markups,
    })
}

/// One's reseller dashboard.
#[utoipa::path(
    get, path = "/resellers/me", tag = "resellers",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = ResellerDashboard), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema))
)]
async fn dashboard(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<ResellerDashboard>> {
    let reseller = resellers::of_owner(&state.db, caller.user_id, OffsetDateTime::now_utc()).await?;
    Ok(Json(dashboard_of(&state, reseller).await?))
}

/// Sets one's branding (logo, colours, support contact), served by one's proven domain.
#[utoipa::path(
    put, path = "/resellers/me/branding", tag = "resellers", request_body = Branding,
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Branding), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn set_branding(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Json(request): Json<Branding>,
) -> ApiResult<Json<Branding>> {
    Ok(Json(branding::set(&state.db, caller.user_id, request).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainClaim {
    /// A host name one controls, such as `ads.agency.example`.
    #[schema(min_length = 3, max_length = 253)]
    pub domain: String,
}

/// Claims a custom domain: the answer names the TXT record to publish, then verify.
#[utoipa::path(
    put, path = "/resellers/me/domain", tag = "resellers", request_body = DomainClaim,
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Domain), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn claim_domain(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Json(request): Json<DomainClaim>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(branding::claim(&state.db, caller.user_id, &request.domain).await?))
}

/// Looks the claimed domain's TXT record up; 409 naming `domain` while it is not there.
#[utoipa::path(
    post, path = "/resellers/me/domain/verify", tag = "resellers",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Domain), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema))
)]
async fn verify_domain(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<Domain>> {
    let domain = branding::verify(
        &state.db,
        state.resolver.as_ref(),
        caller.user_id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(domain))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractDraft {
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// The terms agreed, 1 to 10,000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    pub terms: String,
}

/// Drafts the next version of one's contract.
#[utoipa::path(
    post, path = "/resellers/me/contracts", tag = "resellers", request_body = ContractDraft,
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 201, body = Contract), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn draft_contract(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Json(request): Json<ContractDraft>,
) -> ApiResult<(StatusCode, Json<Contract>)> {
    let new = NewContract {
        starts_at: Instant::parse(request.starts_at).at("startsAt")?.get(),
        ends_at: Instant::parse(request.ends_at).at("endsAt")?.get(),
        terms: request.terms,
    };
    let contract = contracts::draft(&state.db, caller.user_id, &new, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::CREATED, Json(contract)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractMove {
    pub status: Status,
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

/// Moves one's contract: submits a draft, withdraws a submission, or terminates an active
/// contract. A move the workflow forbids is 409 naming `status`.
#[utoipa::path(
    post, path = "/resellers/me/contracts/{id}/status", tag = "resellers", request_body = ContractMove,
    params(("id" = Uuid, Path)),
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Contract), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn move_own_contract(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Path(id): Path<Uuid>,
    Json(request): Json<ContractMove>,
) -> ApiResult<Json<Contract>> {
    let actor = Actor::Reseller(caller.user_id);
    let contract = contracts::change(
        &state.db,
        id,
        actor,
        request.status,
        &request.reason,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(contract))
}

/// Every reseller.
#[utoipa::path(
    get, path = "/admin/resellers", tag = "resellers", security(("bearer" = ["admin"])),
    responses((status = 200, body = [Reseller]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, _: Caller<Admins>) -> ApiResult<Json<Vec<Reseller>>> {
    Ok(Json(resellers::list(&state.db, OffsetDateTime::now_utc()).await?))
}

/// A reseller's dashboard, for admins.
#[utoipa::path(
    get, path = "/admin/resellers/{id}", tag = "resellers", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ResellerDashboard), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn admin_dashboard(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ResellerDashboard>> {
    let reseller = resellers::get(&state.db, id, OffsetDateTime::now_utc()).await?;
    Ok(Json(dashboard_of(&state, reseller).await?))
}

/// Moves a reseller's contract: approves or sends back a submission, activates an approved
/// contract, terminates one. A move the workflow forbids is 409 naming `status`.
#[utoipa::path(
    post, path = "/admin/reseller-contracts/{id}/status", tag = "resellers", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = ContractMove,
    responses((status = 200, body = Contract), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
              (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn move_contract(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<ContractMove>,
) -> ApiResult<Json<Contract>> {
    let contract = contracts::change(
        &state.db,
        id,
        Actor::Admin(admin.user_id),
        request.status,
        &request.reason,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(contract))
}

/// Sets a reseller's monthly quotas; a hard one below its soft one is refused.
#[utoipa::path(
    put, path = "/admin/resellers/{id}/quotas", tag = "resellers", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = Quotas,
    responses((status = 200, body = Reseller), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
              (status = 422, body = ProblemSchema))
)]
async fn set_quotas(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<Quotas>,
) -> ApiResult<Json<Reseller>> {
    Ok(Json(
        resellers::set_quotas(&state.db, id, request, OffsetDateTime::now_utc()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSchedule {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    pub token: Address,
    /// `YYYY-MM-DD` (UTC), today or later.
    #[schema(format = Date)]
    pub effective_from: String,
    /// From volume 0, rising: the platform's fee from each volume on.
    #[schema(min_items = 1, max_items = 20)]
    pub tiers: Vec<Tier>,
}

/// Sets a reseller's volume tiers in a token from a date; the same date again replaces them.
#[utoipa::path(
    put, path = "/admin/resellers/{id}/tiers", tag = "resellers", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = TierSchedule,
    responses((status = 200, body = [Schedule]), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
              (status = 422, body = ProblemSchema))
)]
async fn set_tiers(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<TierSchedule>,
) -> ApiResult<Json<Vec<Schedule>>> {
    let from = schedule::civil_date(Date::parse(&request.effective_from).at("effectiveFrom")?.get());
    let schedules = pricing::set_schedule(
        &state.db,
        id,
        request.token,
        from,
        &request.tiers,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(schedules))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinReseller {
    /// The reseller's code; left out, the reseller whose proven domain this request came to.
    #[schema(pattern = "^\\s*[Rr][Ee][Ss][2-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{8}\\s*$")]
    pub code: Option<String>,
}

/// Joins a reseller, by its code or by its domain (the request's host), within its monthly
/// end-user quota: past the hard one, 429 naming `endUsers`; past the soft one, a
/// `Quota-Warning` header.
#[utoipa::path(
    post, path = "/resellers/join", tag = "resellers", security(("bearer" = ["advertiser"])),
    request_body = JoinReseller,
    responses((status = 201, body = Membership), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
              (status = 429, body = ProblemSchema))
)]
async fn join(
    State(state): State<AppState>,
    caller: Caller<Advertisers>,
    headers: HeaderMap,
    Json(request): Json<JoinReseller>,
) -> ApiResult<Response> {
    let by = match request.code {
        Some(code) => JoinBy::Code(code),
        None => JoinBy::Domain(
            host(&headers)
                .ok_or(ApiError::invalid(
                    "code",
                    "give a code, or call from the reseller's domain",
                ))?
                .to_owned(),
        ),
    };
    let (membership, warning) = members::join(&state.db, caller.user_id, &by, OffsetDateTime::now_utc()).await?;
    Ok(warned((StatusCode::CREATED, Json(membership)), warning))
}

/// The reseller one joined.
#[utoipa::path(
    get, path = "/resellers/join", tag = "resellers", security(("bearer" = ["advertiser"])),
    responses((status = 200, body = Membership), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema))
)]
async fn my_membership(State(state): State<AppState>, caller: Caller<Advertisers>) -> ApiResult<Json<Membership>> {
    let membership = members::membership(&state.db, caller.user_id).await?;
    Ok(Json(membership.ok_or(ApiError::NotFound("membership"))?))
}

/// The request's host name, from `Host`.
pub fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|value| value.to_str().ok())
}

/// The branding this host name serves (public): a reseller's, on its proven domain.
#[utoipa::path(
    get, path = "/branding", tag = "resellers",
    responses((status = 200, body = PublicBranding), (status = 404, body = ProblemSchema))
)]
async fn branding_here(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<PublicBranding>> {
    let found = match host(&headers) {
        Some(host) => branding::by_host(&state.db, host).await?,
        None => None,
    };
    Ok(Json(found.ok_or(ApiError::NotFound("branding for this host"))?))
}

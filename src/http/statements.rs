//! Earnings statements over HTTP: the caller's own as JSON or CSV; any payee's, and the
//! platform's, for admins. Private: only an admin reads another payee's statement.

use alloy::primitives::{Address, B256};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::access::{Admins, Caller, SignedIn};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::adserver::schedule;
use crate::statements::read::{self, Body, PayeeStatement, PlatformBody};
use crate::statements::states::TokenStates;
use crate::statements::{PeriodNameError, StatementPeriod};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mine))
        .routes(routes!(mine_csv))
        .routes(routes!(payee_statement))
        .routes(routes!(platform_statement))
}

impl From<PeriodNameError> for ApiError {
    fn from(error: PeriodNameError) -> Self {
        Self::invalid(error.field(), error.to_string())
    }
}

/// The calendar periods a statement or a prize covers (all time is neither's).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "a schema: requests parse the text into `PeriodKind` and refuse all time by name"
)]
pub enum StatementPeriodKind {
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    Month,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `day`, `week` (ISO) or `month` (the default).
    #[param(value_type = Option<StatementPeriodKind>, inline)]
    pub period: Option<String>,
    /// Any local date in the period, `YYYY-MM-DD`; today when left out.
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<String>,
    /// The IANA zone the period's days are counted in (UTC when left out).
    #[param(value_type = Option<crate::platform::wire::schema::TimeZone>)]
    pub zone: Option<String>,
}

impl StatementQuery {
    fn period(&self) -> ApiResult<StatementPeriod> {
        Ok(StatementPeriod::parse(
            self.period.as_deref(),
            self.date.as_deref(),
            self.zone.as_deref(),
            schedule::timestamp(OffsetDateTime::now_utc()),
        )?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatementView {
    /// The statement: once `closed`, exactly the bytes frozen when it was first read.
    #[schema(value_type = Body)]
    pub statement: Box<RawValue>,
    /// Whether its period is closed (no posting can still be booked in it).
    pub closed: bool,
    /// keccak256 of `statement` as served, once closed.
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub hash: Option<B256>,
    /// Where each token's earnings of the period stand now (not frozen).
    pub states: Vec<TokenStates>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatementView {
    #[schema(value_type = PlatformBody)]
    pub statement: Box<RawValue>,
    pub closed: bool,
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub hash: Option<B256>,
}

async fn statement_of(state: &AppState, account: Address, query: &StatementQuery) -> ApiResult<PayeeStatement> {
    let period = query.period()?;
    Ok(read::payee_statement(&state.db, state.config.chain_id, account, &period).await?)
}

fn view(statement: PayeeStatement) -> StatementView {
    let PayeeStatement { statement, states } = statement;
    StatementView {
        statement: statement.json,
        closed: statement.hash.is_some(),
        hash: statement.hash,
        states,
    }
}

/// The caller's earnings statement for a period: opening balance, lines by source (ad
/// revenue and witness fees per node), closing balance per token, and where the period's
/// earnings stand now.
#[utoipa::path(
    get, path = "/statements/me", tag = "statements",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    params(StatementQuery),
    responses((status = 200, body = StatementView), (status = 401, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn mine(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Query(query): Query<StatementQuery>,
) -> ApiResult<Json<StatementView>> {
    Ok(Json(view(statement_of(&state, caller.address, &query).await?)))
}

/// The caller's statement as CSV: one row per balance, line and state.
#[utoipa::path(
    get, path = "/statements/me/csv", tag = "statements",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    params(StatementQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn mine_csv(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Query(query): Query<StatementQuery>,
) -> ApiResult<impl IntoResponse> {
    let statement = statement_of(&state, caller.address, &query).await?;
    let csv = crate::statements::csv::write(&statement).map_err(|error| ApiError::Internal(error.into()))?;
    let body = &statement.statement.body;
    let filename = format!(
        "attachment; filename=\"statement-{:#x}-{}-{}.csv\"",
        caller.address,
        body.period.label(),
        body.starts_on
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        csv,
    ))
}

/// Any payee's statement, for an admin (a payee reads its own at `/statements/me`). The
/// zero address is no payee: what program budgets spend is kept under it, and shown in the
/// platform's statement.
#[utoipa::path(
    get, path = "/admin/statements/{account}", tag = "statements", security(("bearer" = ["admin"])),
    params(("account" = crate::platform::wire::schema::Address, Path, description = "the payee's address"), StatementQuery),
    responses((status = 200, body = StatementView), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn payee_statement(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(account): Path<Address>,
    Query(query): Query<StatementQuery>,
) -> ApiResult<Json<StatementView>> {
    if account == Address::ZERO {
        return Err(ApiError::NotFound(
            "a payee at the zero address (see GET /v1/admin/platform-statement)",
        ));
    }
    Ok(Json(view(statement_of(&state, account, &query).await?)))
}

/// The platform's statement for a period, per token: its fees, the commissions it paid,
/// what its program budgets paid out, and the net.
#[utoipa::path(
    get, path = "/admin/platform-statement", tag = "statements", security(("bearer" = ["admin"])),
    params(StatementQuery),
    responses((status = 200, body = PlatformStatementView), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn platform_statement(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Query(query): Query<StatementQuery>,
) -> ApiResult<Json<PlatformStatementView>> {
    let period = query.period()?;
    let served = read::platform_statement(&state.db, state.split.platform, &period).await?;
    Ok(Json(PlatformStatementView {
        statement: served.json,
        closed: served.hash.is_some(),
        hash: served.hash,
    }))
}

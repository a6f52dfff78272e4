//! Leaderboards over HTTP: the catalog, a page of a board (public: rankings are), and the
//! signed-in caller's own rank with its neighbours.

use alloy::primitives::Address;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::access::{Admins, Caller, SignedIn};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::adserver::schedule;
use crate::leaderboards::prizes::{self, Prize, PrizeError};
use crate::leaderboards::ranking::{Entry, Frozen, Ranked};
use crate::leaderboards::{Board, BoardError, BoardName, Category, PeriodKind};
use crate::money::Amount;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog))
        .routes(routes!(board))
        .routes(routes!(mine))
        .routes(routes!(declare_prize))
}

impl From<PrizeError> for ApiError {
    fn from(error: PrizeError) -> Self {
        match error {
            PrizeError::NoBudget => Self::NotFound("a program budget with this id"),
            PrizeError::Declared => Self::Conflict {
                field: None,
                message: error.to_string(),
            },
            PrizeError::Database(error) => error.into(),
            _ => Self::invalid(error.field().unwrap_or("body"), error.to_string()),
        }
    }
}

/// A board that cannot exist (a zone not kept, a money board without its token, a count
/// with one) is not found; a name that is not a name is invalid.
impl From<BoardError> for ApiError {
    fn from(error: BoardError) -> Self {
        match error {
            BoardError::ZoneNotKept(_) => {
                Self::NotFound("a board in this zone (GET /v1/leaderboards lists the zones kept)")
            }
            BoardError::TokenMissing => {
                Self::NotFound("a board without a token here (money boards are kept per token)")
            }
            BoardError::TokenNotTaken => Self::NotFound("a board per token here (counts have none)"),
            _ => Self::invalid(error.field(), error.to_string()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryInfo {
    pub category: Category,
    /// `base_units` of a token (one board per token) or `count`.
    pub unit: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub categories: Vec<CategoryInfo>,
    pub periods: Vec<PeriodKind>,
    /// The IANA zones boards are kept in; the first is the default.
    pub zones: Vec<String>,
}

/// What boards there are: categories, periods and the zones they are kept in.
#[utoipa::path(get, path = "/leaderboards", tag = "leaderboards", responses((status = 200, body = Catalog)))]
async fn catalog(State(state): State<AppState>) -> Json<Catalog> {
    Json(Catalog {
        categories: Category::ALL
            .into_iter()
            .map(|category| CategoryInfo {
                category,
                unit: if category.is_money() { "base_units" } else { "count" },
            })
            .collect(),
        periods: PeriodKind::ALL.to_vec(),
        zones: state.leaderboard_zones.names(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// `day`, `week` (ISO, Monday to Sunday), `month` or `all` (the default).
    #[param(value_type = Option<PeriodKind>)]
    pub period: Option<String>,
    /// Any local date in the period, `YYYY-MM-DD`; today when left out.
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<String>,
    /// A declared IANA zone (see `GET /v1/leaderboards`); the first declared when left out.
    #[param(value_type = Option<crate::platform::wire::schema::TimeZone>)]
    pub zone: Option<String>,
    /// The token of a money category (required for those, refused for counts).
    #[param(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    pub token: Option<Address>,
    /// Page number, from 1.
    #[param(minimum = 1)]
    pub page: Option<i64>,
    /// Entries per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardPage {
    pub category: Category,
    pub period: PeriodKind,
    /// The period's first local day.
    pub starts_on: String,
    /// When it ends (absent for all time).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    pub zone: String,
    /// The zero address for counts.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    pub token: Address,
    /// Subjects on the board.
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
    pub entries: Vec<Entry>,
    /// Set once the period has ended and its final ranking was hashed.
    pub frozen: Option<Frozen>,
}

fn resolve(state: &AppState, category: &str, query: &BoardQuery) -> ApiResult<Board> {
    let name = BoardName {
        category,
        period: query.period.as_deref(),
        date: query.date.as_deref(),
        zone: query.zone.as_deref(),
        token: query.token,
    };
    Ok(name.resolve(&state.leaderboard_zones, schedule::timestamp(OffsetDateTime::now_utc()))?)
}

fn page_of(board: &Board, ranked: &Ranked, page: u64, per_page: u64, entries: Vec<Entry>) -> BoardPage {
    let zone = crate::adserver::schedule::zone(&board.zone).unwrap_or(jiff::tz::TimeZone::UTC);
    BoardPage {
        category: board.category,
        period: board.period.kind,
        starts_on: board.period.starts_on.to_string(),
        ends_at: board.period.ends_at(&zone).map(schedule::offset_date_time),
        zone: board.zone.clone(),
        token: board.token,
        total: ranked.len() as u64,
        page,
        per_page,
        entries,
        frozen: ranked.frozen.clone(),
    }
}

/// A page of a board, highest score first. Equal scores share a rank and are listed by
/// address; the next rank skips.
#[utoipa::path(
    get, path = "/leaderboards/{category}", tag = "leaderboards",
    params(("category" = Category, Path), BoardQuery),
    responses((status = 200, body = BoardPage), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn board(
    State(state): State<AppState>,
    Path(category): Path<String>,
    Query(query): Query<BoardQuery>,
) -> ApiResult<Json<BoardPage>> {
    let board = resolve(&state, &category, &query)?;
    let per_page = query.per_page.unwrap_or(50);
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::invalid("perPage", "must be 1 to 100"));
    }
    let page = query.page.unwrap_or(1);
    if page < 1 {
        return Err(ApiError::invalid("page", "pages count from 1"));
    }
    let ranked = state.rankings.get(&board).await?;
    let (page, per_page) = (page as u64, per_page as u64);
    let pages = (ranked.len() as u64).div_ceil(per_page).max(1);
    if page > pages {
        return Err(ApiError::NotFound("a page past the last one"));
    }
    let entries = ranked.page(((page - 1) * per_page) as usize, per_page as usize);
    Ok(Json(page_of(&board, &ranked, page, per_page, entries)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// `day`, `week`, `month` or `all` (the default).
    #[param(value_type = Option<PeriodKind>)]
    pub period: Option<String>,
    /// Any local date in the period, `YYYY-MM-DD`; today when left out.
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<String>,
    /// A declared IANA zone; the first declared when left out.
    #[param(value_type = Option<crate::platform::wire::schema::TimeZone>)]
    pub zone: Option<String>,
    /// The token of a money category.
    #[param(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    pub token: Option<Address>,
    /// Entries on each side of the caller's, 0 to 10 (default 2).
    #[param(minimum = 0, maximum = 10)]
    pub neighbours: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyRank {
    /// The caller's entry; absent when it has no score on this board.
    pub entry: Option<Entry>,
    /// The caller's entry with its neighbours, in rank order.
    pub around: Vec<Entry>,
    pub total: u64,
    pub frozen: Option<Frozen>,
}

/// The caller's rank on a board, with its neighbours.
#[utoipa::path(
    get, path = "/leaderboards/{category}/me", tag = "leaderboards",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    params(("category" = Category, Path), MineQuery),
    responses((status = 200, body = MyRank), (status = 401, body = ProblemSchema), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn mine(
    State(state): State<AppState>,
    principal: Caller<SignedIn>,
    Path(category): Path<String>,
    Query(query): Query<MineQuery>,
) -> ApiResult<Json<MyRank>> {
    let neighbours = query.neighbours.unwrap_or(2);
    if !(0..=10).contains(&neighbours) {
        return Err(ApiError::invalid("neighbours", "must be 0 to 10"));
    }
    let board_query = BoardQuery {
        period: query.period,
        date: query.date,
        zone: query.zone,
        token: query.token,
        page: None,
        per_page: None,
    };
    let board = resolve(&state, &category, &board_query)?;
    let ranked = state.rankings.get(&board).await?;
    let (entry, around) = ranked
        .around(principal.address, neighbours as usize)
        .map_or((None, Vec::new()), |(entry, around)| (Some(entry), around));
    Ok(Json(MyRank {
        entry,
        around,
        total: ranked.len() as u64,
        frozen: ranked.frozen.clone(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrizeRequest {
    pub category: Category,
    // A calendar period: the schema says `day`, `week` or `month` (no doc comment here, so
    // that the enum is inlined as it is rather than beside a description object).
    #[schema(value_type = super::statements::StatementPeriodKind, inline)]
    pub period: PeriodKind,
    /// Any local date in the period, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub date: String,
    /// A declared zone; the first declared when left out.
    #[schema(value_type = Option<crate::platform::wire::schema::TimeZone>)]
    pub zone: Option<String>,
    /// The board's token, for a money category.
    #[schema(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    pub token: Option<Address>,
    /// The program budget that pays the prize (see `POST /v1/program-budgets`).
    pub budget: uuid::Uuid,
    /// Base units of the budget's token for the first, second, ... entry.
    #[schema(value_type = Vec<crate::money::PositiveAmount>, min_items = 1, max_items = 100)]
    pub amounts: Vec<Amount>,
}

/// Declares a prize for the top entries of a board's period, paid from a program budget
/// once the period has ended and its board is frozen.
#[utoipa::path(
    post, path = "/admin/leaderboard-prizes", tag = "leaderboards", security(("bearer" = ["admin"])),
    request_body = PrizeRequest,
    responses((status = 201, body = Prize), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
              (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn declare_prize(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Json(request): Json<PrizeRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<Prize>)> {
    let name = BoardName {
        category: request.category.label(),
        period: Some(request.period.label()),
        date: Some(&request.date),
        zone: request.zone.as_deref(),
        token: request.token,
    };
    let now = OffsetDateTime::now_utc();
    let board = name.resolve(&state.leaderboard_zones, schedule::timestamp(now))?;
    let prize = prizes::declare(&state.db, &board, request.budget, request.amounts, admin.user_id, now).await?;
    Ok((axum::http::StatusCode::CREATED, Json(prize)))
}

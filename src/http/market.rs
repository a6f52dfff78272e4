//! The marketplace over HTTP. Sellers list items and refund orders; buyers order, pay from
//! their wallets, and get licenses and download links; admins set fees and see everything.
//! Four routes are public on purpose: the listing (and a for-sale item), a download (its
//! signed token is the credential), the license checks (the key is) and the license public
//! key, since sellers' software calls those without an account.

use alloy::primitives::Address;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Buyers, Caller, ItemManagers, Purchasers, Sellers};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::accounts::Principal;
use crate::money::escrow::Order;
use crate::money::ledger::LedgerError;
use crate::platform::values::{At, Bounded, Text};
use crate::programs::market::files::{self, ContentType, NewFile};
use crate::programs::market::items::{
    self, ActivationLimit, Category, Cursor, Description, FeeBps, FileInfo, Item, ItemChange, ItemState, LicenseDays,
    Listing, NewItem, Price, Prices, Search, Tags, Title,
};
use crate::programs::market::licenses::{self, Device, DownloadLink, License};
use crate::programs::market::orders::{self, NewPurchase, OrderScope, OrderView, Payment, RefundOutcome, Refunder};
use crate::programs::market::{self as market, MarketError, PeriodSales};
use crate::settlement::payouts::{self, Payouts};

pub fn router(max_file_size: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search, create_item))
        .routes(routes!(get_item, update_item))
        // Files are larger than the API's general body limit.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(add_file))
                .layer(DefaultBodyLimit::max(max_file_size.saturating_add(1))),
        )
        .routes(routes!(set_item_fee))
        .routes(routes!(set_seller_fee))
        .routes(routes!(seller_items))
        .routes(routes!(dashboard))
        .routes(routes!(list_orders, create_order))
        .routes(routes!(get_order))
        .routes(routes!(refund))
        .routes(routes!(my_licenses))
        .routes(routes!(download_link))
        .routes(routes!(download))
        .routes(routes!(validate_license))
        .routes(routes!(activate_license))
        .routes(routes!(deactivate_license))
        .routes(routes!(license_public_key))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to find in titles, tags and descriptions (web-search syntax: `"a phrase"`,
    /// `-word`, `or`).
    #[param(inline, value_type = Option<crate::platform::wire::schema::SearchWords>)]
    pub q: Option<String>,
    pub category: Option<Category>,
    #[param(inline, value_type = Option<crate::platform::wire::schema::ItemTag>)]
    pub tag: Option<String>,
    /// Only items sold for this token.
    #[param(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    pub token: Option<Address>,
    /// Items per page (1 to 100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub after: Option<String>,
}

/// The public listing: published items, newest first, by words, category, tag or token.
#[utoipa::path(
    get, path = "/market/items", tag = "market", params(SearchQuery),
    responses((status = 200, body = Listing), (status = 422, body = ProblemSchema))
)]
async fn search(State(state): State<AppState>, Query(query): Query<SearchQuery>) -> ApiResult<Json<Listing>> {
    let search = Search {
        text: query.q.as_deref().map(Text::parse).transpose().at("q")?,
        category: query.category,
        tag: query.tag.as_deref().map(items::Tag::parse).transpose().at("tag")?,
        token: query.token,
        limit: Bounded::parse(query.limit.unwrap_or(20)).at("limit")?,
        after: query.after.as_deref().map(Cursor::parse).transpose().at("after")?,
    };
    Ok(Json(
        items::search(&state.db, &search, state.market.terms.default_fee_bps).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateItem {
    #[schema(value_type = crate::platform::wire::schema::ItemTitle)]
    pub title: String,
    #[serde(default)]
    #[schema(value_type = crate::platform::wire::schema::ItemDescription)]
    pub description: String,
    pub category: Category,
    /// Up to 10 tags of letters, digits and hyphens (lower-cased).
    #[serde(default)]
    #[schema(value_type = Vec<crate::platform::wire::schema::ItemTag>, max_items = 10)]
    pub tags: Vec<String>,
    /// A price per token (one each), in base units.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub prices: Vec<Price>,
    /// Devices a license may be active on at once (1 to 1000, default 1).
    #[schema(minimum = 1, maximum = 1000)]
    pub activation_limit: Option<i64>,
    /// Days a license lasts (1 to 3650); absent: perpetual.
    #[schema(minimum = 1, maximum = 3650)]
    pub license_days: Option<i64>,
}

/// Lists a new item as a draft.
#[utoipa::path(
    post, path = "/market/items", tag = "market", security(("bearer" = ["seller"])), request_body = CreateItem,
    responses(
        (status = 201, body = Item), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn create_item(
    State(state): State<AppState>,
    seller: Caller<Sellers>,
    Json(request): Json<CreateItem>,
) -> ApiResult<(StatusCode, Json<Item>)> {
    let new = NewItem {
        title: Title::parse(&request.title).at("title")?,
        description: Description::parse(&request.description).at("description")?,
        category: request.category,
        tags: Tags::parse(&request.tags).at("tags")?,
        prices: Prices::parse(&request.prices).at("prices")?,
        activation_limit: ActivationLimit::parse(request.activation_limit.unwrap_or(1)).at("activationLimit")?,
        license_days: request
            .license_days
            .map(LicenseDays::parse)
            .transpose()
            .at("licenseDays")?,
    };
    let id = items::create(&state.db, seller.user_id, &new).await?;
    Ok((StatusCode::CREATED, Json(own_item(&state, &seller, id).await?)))
}

async fn own_item(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<Item> {
    let viewer = match principal.scope() {
        Some(user) => items::Viewer::Owner(user),
        None => items::Viewer::Admin,
    };
    items::find(&state.db, id, viewer, state.market.terms.default_fee_bps)
        .await?
        .ok_or(ApiError::NotFound("item"))
}

/// An item that is for sale (published, or unlisted for whoever has its id).
#[utoipa::path(
    get, path = "/market/items/{id}", tag = "market", params(("id" = Uuid, Path)),
    responses((status = 200, body = Item), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn get_item(State(state): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<Json<Item>> {
    let item = items::find(&state.db, id, items::Viewer::Public, state.market.terms.default_fee_bps)
        .await?
        .ok_or(ApiError::NotFound("item"))?;
    Ok(Json(item))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateItem {
    #[schema(value_type = Option<crate::platform::wire::schema::ItemTitle>)]
    pub title: Option<String>,
    #[schema(value_type = Option<crate::platform::wire::schema::ItemDescription>)]
    pub description: Option<String>,
    pub category: Option<Category>,
    #[schema(value_type = Option<Vec<crate::platform::wire::schema::ItemTag>>, max_items = 10)]
    pub tags: Option<Vec<String>>,
    /// Replaces every price (one per token).
    #[schema(max_items = 10)]
    pub prices: Option<Vec<Price>>,
    #[schema(minimum = 1, maximum = 1000)]
    pub activation_limit: Option<i64>,
    /// Days a license lasts; `null` makes it perpetual; absent leaves it.
    #[serde(default, deserialize_with = "crate::platform::wire::double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3650)]
    pub license_days: Option<Option<i64>>,
    /// `published`, `unlisted` or `retired` (final). Selling needs a price and a file.
    pub state: Option<ItemState>,
}

/// Changes an item of one's own (admins: any). Orders already made keep their terms.
#[utoipa::path(
    patch, path = "/market/items/{id}", tag = "market", security(("bearer" = ["seller", "admin"])),
    params(("id" = Uuid, Path)), request_body = UpdateItem,
    responses(
        (status = 200, body = Item), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn update_item(
    State(state): State<AppState>,
    caller: Caller<ItemManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateItem>,
) -> ApiResult<Json<Item>> {
    let change = ItemChange {
        title: request.title.as_deref().map(Title::parse).transpose().at("title")?,
        description: request
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .at("description")?,
        category: request.category,
        tags: request.tags.as_deref().map(Tags::parse).transpose().at("tags")?,
        prices: request.prices.as_deref().map(Prices::parse).transpose().at("prices")?,
        activation_limit: request
            .activation_limit
            .map(ActivationLimit::parse)
            .transpose()
            .at("activationLimit")?,
        license_days: request
            .license_days
            .map(|days| days.map(LicenseDays::parse).transpose())
            .transpose()
            .at("licenseDays")?,
        state: request.state,
    };
    items::update(&state.db, id, caller.scope(), &change).await?;
    Ok(Json(own_item(&state, &caller, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    #[param(inline, value_type = crate::platform::wire::schema::FileName)]
    pub name: String,
}

/// Adds a file to an item of one's own: the request body is the content, its
/// `Content-Type` one of the accepted types, checked against the content.
#[utoipa::path(
    post, path = "/market/items/{id}/files", tag = "market", security(("bearer" = ["seller", "admin"])),
    params(("id" = Uuid, Path), FileQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = FileInfo), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 413, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn add_file(
    State(state): State<AppState>,
    caller: Caller<ItemManagers>,
    Path(id): Path<Uuid>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
    content: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<FileInfo>)> {
    // Past the route's limit the body stops being read; anything else is a broken upload.
    let content = content.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge,
        other => ApiError::invalid("body", other.body_text()),
    })?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let file = NewFile {
        name: Text::parse(&query.name).at("name")?,
        content_type: ContentType::parse(declared).at("Content-Type")?,
        content,
    };
    let market = &state.market;
    let info = files::add(&state.db, &market.store, id, caller.scope(), file, market.max_file_size).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetFee {
    /// Basis points, 0 to 5000; `null` falls back to the seller's fee.
    #[schema(minimum = 0, maximum = 5000)]
    pub fee_bps: Option<i64>,
}

/// Sets the platform's fee on one item, for orders made from now on (admins).
#[utoipa::path(
    put, path = "/market/items/{id}/fee", tag = "market", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = SetFee,
    responses((status = 204), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn set_item_fee(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<SetFee>,
) -> ApiResult<StatusCode> {
    let fee = request.fee_bps.map(FeeBps::parse).transpose().at("feeBps")?;
    items::set_item_fee(&state.db, id, fee).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetSellerFee {
    /// Basis points, 0 to 5000.
    #[schema(minimum = 0, maximum = 5000)]
    pub fee_bps: i64,
}

/// Sets a seller's fee, for its items without one of their own (admins).
#[utoipa::path(
    put, path = "/market/sellers/{address}/fee", tag = "market", security(("bearer" = ["admin"])),
    params(("address" = crate::platform::wire::schema::Address, Path)), request_body = SetSellerFee,
    responses((status = 204), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn set_seller_fee(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(address): Path<Address>,
    Json(request): Json<SetSellerFee>,
) -> ApiResult<StatusCode> {
    let fee = FeeBps::parse(request.fee_bps).at("feeBps")?;
    items::set_seller_fee(&state.db, address, fee, admin.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One's own items in every state, newest first.
#[utoipa::path(
    get, path = "/market/seller/items", tag = "market", security(("bearer" = ["seller", "admin"])),
    responses((status = 200, body = [Item]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn seller_items(State(state): State<AppState>, caller: Caller<ItemManagers>) -> ApiResult<Json<Vec<Item>>> {
    let items = items::of_seller(&state.db, caller.user_id, state.market.terms.default_fee_bps).await?;
    Ok(Json(items))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    pub items: Vec<Item>,
    /// Sales by calendar month (UTC) and token.
    pub sales: Vec<PeriodSales>,
    /// Orders of one's items, newest first.
    pub orders: Vec<OrderView>,
    /// Where the seller's money stands per token: held (until when, why), released,
    /// pending in an epoch, claimable and claimed.
    pub payouts: Payouts,
}

/// A seller's dashboard: items, sales by period, orders and proceeds per token.
#[utoipa::path(
    get, path = "/market/seller/dashboard", tag = "market", security(("bearer" = ["seller"])),
    responses((status = 200, body = Dashboard), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 503, body = ProblemSchema))
)]
async fn dashboard(State(state): State<AppState>, seller: Caller<Sellers>) -> ApiResult<Json<Dashboard>> {
    let escrow = state
        .config
        .escrow_address
        .ok_or(ApiError::Unavailable("the escrow address is not configured".into()))?;
    let default_fee = state.market.terms.default_fee_bps;
    let (items, sales, orders, payouts) = tokio::try_join!(
        items::of_seller(&state.db, seller.user_id, default_fee),
        market::sales(&state.db, seller.user_id),
        orders::select(&state.db, OrderScope::Seller(seller.user_id), None),
        payouts::payouts(&state.db, state.config.chain_id, escrow, seller.address),
    )?;
    Ok(Json(Dashboard {
        items,
        sales,
        orders,
        payouts,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrder {
    pub item_id: Uuid,
    /// One of the tokens the item is priced in.
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    pub token: Address,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    pub order: Order,
    /// What the buyer's wallet sends to pay it.
    pub payment: Payment,
}

/// Orders an item: the answer is the order's escrow and what the buyer's wallet signs and
/// sends. The order is paid once the indexer sees the escrow funded as asked.
#[utoipa::path(
    post, path = "/market/orders", tag = "market", security(("bearer" = ["buyer"])), request_body = CreateOrder,
    responses(
        (status = 201, body = Purchase), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
        (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
        (status = 503, body = ProblemSchema),
    )
)]
async fn create_order(
    State(state): State<AppState>,
    buyer: Caller<Purchasers>,
    Json(request): Json<CreateOrder>,
) -> ApiResult<(StatusCode, Json<Purchase>)> {
    let escrow = state
        .config
        .escrow_address
        .ok_or(ApiError::Unavailable("the escrow address is not configured".into()))?;
    let purchase = NewPurchase {
        buyer_id: buyer.user_id,
        buyer: buyer.address,
        item: request.item_id,
        token: request.token,
    };
    let now = OffsetDateTime::now_utc();
    let mut conn = state.db.acquire().await?;
    let order = orders::create(&mut conn, &purchase, &state.market.terms, now).await?;
    let payment = orders::payment(&state.chain, escrow, &order, buyer.address, now).await;
    tracing::info!(buyer = %buyer.user_id, order = %order.id, "order made");
    Ok((StatusCode::CREATED, Json(Purchase { order, payment })))
}

fn order_scope(principal: &Principal) -> OrderScope {
    match principal.scope() {
        Some(user) => OrderScope::Buyer(user),
        None => OrderScope::Admin,
    }
}

/// One's orders, newest first (admins: everyone's).
#[utoipa::path(
    get, path = "/market/orders", tag = "market", security(("bearer" = ["buyer", "admin"])),
    responses((status = 200, body = [OrderView]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn list_orders(State(state): State<AppState>, buyer: Caller<Buyers>) -> ApiResult<Json<Vec<OrderView>>> {
    Ok(Json(orders::select(&state.db, order_scope(&buyer), None).await?))
}

/// One of one's orders (admins: any).
#[utoipa::path(
    get, path = "/market/orders/{id}", tag = "market", security(("bearer" = ["buyer", "admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn get_order(
    State(state): State<AppState>,
    buyer: Caller<Buyers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<OrderView>> {
    let order = orders::select(&state.db, order_scope(&buyer), Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("order"))?;
    Ok(Json(order))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundRequest {
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refunded {
    pub order: OrderView,
    pub outcome: RefundOutcome,
}

/// Refunds a paid order of one's item (admins: any): inside the refund window the sale is
/// undone and the buyer withdraws the escrow after end + grace; after it the buyer is paid
/// back through the claim. The license and downloads are revoked.
#[utoipa::path(
    post, path = "/market/orders/{id}/refund", tag = "market", security(("bearer" = ["seller", "admin"])),
    params(("id" = Uuid, Path)), request_body = RefundRequest,
    responses(
        (status = 200, body = Refunded), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn refund(
    State(state): State<AppState>,
    caller: Caller<ItemManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<RefundRequest>,
) -> ApiResult<Json<Refunded>> {
    let reason = orders::Reason::parse(&request.reason).at("reason")?;
    let by = Refunder {
        user_id: caller.user_id,
        admin: caller.is_admin(),
    };
    let now = OffsetDateTime::now_utc();
    let outcome = orders::refund(&state.db, state.config.chain_id, id, by, &reason, now).await?;
    tracing::info!(by = %caller.user_id, order = %id, ?outcome, "order refunded");
    let order = orders::select(&state.db, OrderScope::Admin, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("order"))?;
    Ok(Json(Refunded { order, outcome }))
}

/// One's licenses with their signed keys, newest first.
#[utoipa::path(
    get, path = "/market/licenses", tag = "market", security(("bearer" = ["buyer"])),
    responses((status = 200, body = [License]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn my_licenses(State(state): State<AppState>, buyer: Caller<Purchasers>) -> ApiResult<Json<Vec<License>>> {
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        licenses::of_buyer(&state.db, &state.market.keys, buyer.user_id, now).await?,
    ))
}

/// A short-lived link to a file of one's paid order.
#[utoipa::path(
    post, path = "/market/orders/{id}/files/{file_id}/link", tag = "market", security(("bearer" = ["buyer", "admin"])),
    params(("id" = Uuid, Path), ("file_id" = Uuid, Path)),
    responses(
        (status = 200, body = DownloadLink), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema),
    )
)]
async fn download_link(
    State(state): State<AppState>,
    buyer: Caller<Buyers>,
    Path((id, file_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DownloadLink>> {
    let market = &state.market;
    let now = OffsetDateTime::now_utc();
    let link = licenses::link(
        &state.db,
        &market.keys,
        id,
        file_id,
        buyer.scope(),
        market.downloads,
        now,
    )
    .await?;
    Ok(Json(link))
}

/// A file, by a link's token (the token is the credential).
#[utoipa::path(
    get, path = "/market/downloads/{token}", tag = "market", params(("token" = String, Path)),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn download(State(state): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    let market = &state.market;
    let now = OffsetDateTime::now_utc();
    let (file, content) =
        licenses::download(&state.db, &market.store, &market.keys, &token, market.downloads, now).await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        content,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseKey {
    /// The license key (`ADL1.<payload>.<signature>`).
    pub key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseDevice {
    /// The license key (`ADL1.<payload>.<signature>`).
    pub key: String,
    #[schema(value_type = crate::platform::wire::schema::Device)]
    pub device: String,
}

/// Checks a license key: whether it is this service's, and its standing.
#[utoipa::path(
    post, path = "/market/licenses/validate", tag = "market", request_body = LicenseKey,
    responses((status = 200, body = License), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn validate_license(State(state): State<AppState>, Json(request): Json<LicenseKey>) -> ApiResult<Json<License>> {
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        licenses::validate(&state.db, &state.market.keys, &request.key, now).await?,
    ))
}

/// Activates a license on a device, within its activation limit.
#[utoipa::path(
    post, path = "/market/licenses/activate", tag = "market", request_body = LicenseDevice,
    responses(
        (status = 200, body = License), (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn activate_license(
    State(state): State<AppState>,
    Json(request): Json<LicenseDevice>,
) -> ApiResult<Json<License>> {
    let device = Device::parse(&request.device).at("device")?;
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        licenses::activate(&state.db, &state.market.keys, &request.key, &device, now).await?,
    ))
}

/// Frees a device's activation of a license.
#[utoipa::path(
    post, path = "/market/licenses/deactivate", tag = "market", request_body = LicenseDevice,
    responses((status = 200, body = License), (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn deactivate_license(
    State(state): State<AppState>,
    Json(request): Json<LicenseDevice>,
) -> ApiResult<Json<License>> {
    let device = Device::parse(&request.device).at("device")?;
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        licenses::deactivate(&state.db, &state.market.keys, &request.key, &device, now).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicensePublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, unpadded base64url.
    pub public_key: String,
    /// How keys are made: `ADL1.<payload>.<signature>`, both unpadded base64url; the
    /// signature is over the decoded payload, a JSON object of the license's claims.
    pub format: &'static str,
}

/// The public key license keys are signed with, for checking them offline.
#[utoipa::path(
    get, path = "/market/license-key", tag = "market",
    responses((status = 200, body = LicensePublicKey))
)]
async fn license_public_key(State(state): State<AppState>) -> Json<LicensePublicKey> {
    Json(LicensePublicKey {
        algorithm: "Ed25519",
        public_key: state.market.keys.public_key_base64(),
        format: "ADL1.<base64url(payload JSON)>.<base64url(Ed25519 signature of the payload)>",
    })
}

impl From<MarketError> for ApiError {
    fn from(error: MarketError) -> Self {
        use crate::programs::market::keys::KeyError;
        let message = error.to_string();
        match error {
            MarketError::UnknownItem => Self::NotFound("item"),
            MarketError::UnknownSeller => Self::NotFound("seller"),
            MarketError::UnknownOrder => Self::NotFound("order"),
            MarketError::UnknownLicense => Self::NotFound("license"),
            MarketError::UnknownFile => Self::NotFound("file"),
            MarketError::ItemRetired | MarketError::StateChange { .. } | MarketError::NotReadyForSale => {
                Self::conflict("state", message)
            }
            MarketError::NotForSale(_) | MarketError::OwnItem => Self::conflict("itemId", message),
            MarketError::NotPricedIn(_) => Self::invalid("token", message),
            MarketError::EmptyFile | MarketError::ContentMismatch { .. } => Self::invalid("body", message),
            MarketError::FileTooLarge { .. } => Self::PayloadTooLarge,
            MarketError::NotTheSeller => Self::Forbidden(message),
            MarketError::OrderState(_) => Self::conflict("state", message),
            MarketError::ActivationLimit { .. } | MarketError::NotActivated => Self::conflict("device", message),
            MarketError::LicenseRevoked | MarketError::LicenseExpired => Self::conflict("key", message),
            MarketError::EntitlementOver { .. } => Self::conflict("fileId", message),
            MarketError::Key(KeyError::BadLicense) => Self::invalid("key", message),
            // The token is the download's credential, and a field of its path.
            MarketError::Key(KeyError::BadLink | KeyError::LinkExpired) => Self::invalid("token", message),
            MarketError::Key(KeyError::WeakSecret) | MarketError::Store(_) => Self::Internal(anyhow::anyhow!(message)),
            MarketError::Ledger(LedgerError::Database(error)) => error.into(),
            MarketError::Ledger(error) => Self::conflict("state", error.to_string()),
            MarketError::Hold(error) => error.into(),
            MarketError::Database(error) => error.into(),
        }
    }
}

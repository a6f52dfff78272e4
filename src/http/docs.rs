//! The OpenAPI document (`/openapi.json`), its interactive page (`/docs`), and descriptions
//! of the problem types error responses name (`/problems/{slug}`).
//!
//! Handlers document what is theirs (bodies, parameters, their own errors, security);
//! [`complete`] adds what every operation shares because the shared layers and extractors
//! cause it: operation ids, the problem media type, the 400/401/403/413/415/422/429
//! answers that extraction, authentication and rate limiting give, and on the operations
//! that take one, the `Idempotency-Key` header with its 409 and 422.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, HeaderBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ProblemKind};
use super::extract::{Json, Path};
use crate::platform::idempotency;
use crate::programs::resellers::branding;

/// The Scalar API reference the docs page runs: the standalone bundle of the npm package
/// `@scalar/api-reference` at this version, committed under `assets/` (refresh with
/// `scripts/scalar-bundle VERSION`) so that a plain `cargo build` embeds it and the page
/// loads nothing from another origin.
macro_rules! scalar_version {
    () => {
        "1.76.0"
    };
}
const SCALAR_JS: &[u8] = include_bytes!(concat!("assets/scalar-api-reference-", scalar_version!(), ".js"));
/// Versioned, so a release that changes the bundle changes the URL and the long cache is safe.
const SCALAR_PATH: &str = concat!("/docs/scalar-api-reference-", scalar_version!(), ".js");

/// Scripts come only from this origin (the bundle above; the document is inline JSON, which
/// is data, not script). Scalar injects its stylesheet as a `<style>` element, hence
/// `'unsafe-inline'` for styles only.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        font-src 'self' data:; img-src 'self' data:; connect-src 'self'; \
                        base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page: Scalar reads the document from the `api-reference` element. Default fonts
/// would come from Scalar's font CDN, which the policy refuses.
const DOCS_HTML: &str = concat!(
    r#"<!doctype html>
<html>
<head>
<title>$title</title>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
<script id="api-reference" type="application/json" data-configuration="{&quot;withDefaultFonts&quot;:false}">
$spec
</script>
<script src=""#,
    "/docs/scalar-api-reference-",
    scalar_version!(),
    r#".js"></script>
</body>
</html>
"#
);

/// `text` safe inside an HTML element.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn router(openapi: OpenApi) -> Router<AppState> {
    #[allow(
        clippy::expect_used,
        reason = "the document is plain data with string keys, which serde_json always writes"
    )]
    let json = serde_json::to_string(&openapi).expect("the OpenAPI document serializes");
    // Inside a <script> element only `</` can end it early; `<\/` is the same JSON string.
    let inline = json.replace("</", "<\\/");
    let html = DOCS_HTML.replace("$spec", &inline);
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }),
        )
        .route(
            "/docs",
            get(move |State(state): State<AppState>, headers: HeaderMap| {
                let html = html.clone();
                async move {
                    // A reseller's proven domain serves the docs under its name.
                    let brand = match super::resellers::host(&headers) {
                        Some(host) => branding::by_host(&state.db, host).await.ok().flatten(),
                        None => None,
                    };
                    let title = brand.map_or_else(|| "adescrow API".to_owned(), |b| format!("{} API", b.name));
                    let page = html.replace("$title", &escape_html(&title));
                    ([(header::CONTENT_SECURITY_POLICY, DOCS_CSP)], Html(page))
                }
            }),
        )
        .route(
            SCALAR_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    ],
                    SCALAR_JS,
                )
            }),
        )
}

pub fn problems_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(problem_type))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemTypeDescription {
    #[schema(example = "/problems/invalid-field")]
    r#type: String,
    title: &'static str,
    status: u16,
}

/// Describes a problem type that error responses name in their `type`.
#[utoipa::path(
    get, path = "/problems/{slug}", tag = "health",
    params(("slug" = String, Path, description = "The last segment of a problem `type`")),
    responses((status = 200, body = ProblemTypeDescription), (status = 404, body = super::error::ProblemSchema))
)]
async fn problem_type(Path(slug): Path<String>) -> ApiResult<impl IntoResponse> {
    let kind = ProblemKind::from_slug(&slug).ok_or(ApiError::NotFound("problem type"))?;
    let (_, status, title) = kind.describe();
    Ok(Json(ProblemTypeDescription {
        r#type: kind.type_uri(),
        title,
        status: status.as_u16(),
    }))
}

/// Client-facing names of the operations, by method and path. Generated clients name their
/// methods after these, so they are part of the API: change one only with a new version.
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    ("get", "/healthz", "checkLiveness"),
    ("get", "/readyz", "checkReadiness"),
    ("get", "/metrics", "getMetrics"),
    ("get", "/problems/{slug}", "getProblemType"),
    ("get", "/v1/auth/nonce", "getSignInNonce"),
    ("post", "/v1/auth/siwe", "signIn"),
    ("post", "/v1/auth/refresh", "refreshSession"),
    ("post", "/v1/auth/logout", "signOut"),
    ("get", "/v1/me", "getMe"),
    ("post", "/v1/me/roles", "takeRole"),
    ("post", "/v1/me/viewer-id", "getViewerId"),
    ("get", "/v1/me/earnings", "getEarnings"),
    ("get", "/v1/api-keys", "listApiKeys"),
    ("post", "/v1/api-keys", "createApiKey"),
    ("delete", "/v1/api-keys/{id}", "revokeApiKey"),
    ("get", "/v1/nodes", "listNodes"),
    ("post", "/v1/nodes", "registerNode"),
    ("get", "/v1/nodes/{id}", "getNode"),
    ("patch", "/v1/nodes/{id}", "updateNode"),
    ("delete", "/v1/nodes/{id}", "retireNode"),
    ("post", "/v1/nodes/sessions", "openNodeSession"),
    ("get", "/v1/admin/users/{id}", "getUser"),
    ("put", "/v1/admin/users/{id}/roles/{role}", "grantRole"),
    ("delete", "/v1/admin/users/{id}/roles/{role}", "revokeRole"),
    ("get", "/v1/chain/status", "getChainStatus"),
    ("get", "/v1/escrow/campaigns/{campaign_id}", "getCampaignEscrow"),
    ("get", "/v1/escrow/settlements", "listSettlements"),
    ("get", "/v1/leaderboards", "listLeaderboards"),
    ("get", "/v1/leaderboards/{category}", "getLeaderboard"),
    ("get", "/v1/leaderboards/{category}/me", "getMyLeaderboardRank"),
    ("post", "/v1/admin/leaderboard-prizes", "declareLeaderboardPrize"),
    ("get", "/v1/statements/me", "getMyStatement"),
    ("get", "/v1/statements/me/csv", "getMyStatementCsv"),
    ("get", "/v1/admin/statements/{account}", "getPayeeStatement"),
    ("get", "/v1/admin/platform-statement", "getPlatformStatement"),
    ("get", "/v1/badges", "listBadges"),
    ("get", "/v1/badges/{account}", "getWalletBadges"),
    ("get", "/v1/me/badges", "getMyBadgeProgress"),
    ("post", "/v1/admin/promotions", "createPromotion"),
    ("get", "/v1/admin/promotions", "listPromotions"),
    ("get", "/v1/admin/promotions/{id}", "getPromotion"),
    ("post", "/v1/admin/promotions/{id}/actions", "actOnPromotion"),
    ("get", "/v1/promotions/{code}", "showPromotion"),
    ("post", "/v1/promotions/{code}/redemptions", "redeemPromotion"),
    ("get", "/v1/me/promotions", "listMyRedemptions"),
    ("post", "/v1/resellers/me", "applyAsReseller"),
    ("get", "/v1/resellers/me", "getMyResellerDashboard"),
    ("put", "/v1/resellers/me/branding", "setResellerBranding"),
    ("put", "/v1/resellers/me/domain", "claimResellerDomain"),
    ("post", "/v1/resellers/me/domain/verify", "verifyResellerDomain"),
    ("post", "/v1/resellers/me/contracts", "draftResellerContract"),
    (
        "post",
        "/v1/resellers/me/contracts/{id}/status",
        "moveMyResellerContract",
    ),
    ("get", "/v1/admin/resellers", "listResellers"),
    ("get", "/v1/admin/resellers/{id}", "getResellerDashboard"),
    (
        "post",
        "/v1/admin/reseller-contracts/{id}/status",
        "moveResellerContract",
    ),
    ("put", "/v1/admin/resellers/{id}/quotas", "setResellerQuotas"),
    ("put", "/v1/admin/resellers/{id}/tiers", "setResellerTiers"),
    ("post", "/v1/resellers/join", "joinReseller"),
    ("get", "/v1/resellers/join", "getMyResellerMembership"),
    ("get", "/v1/branding", "getBranding"),
    ("get", "/v1/escrow/claims/{account}", "listClaims"),
    ("get", "/v1/consent/{user}", "getConsent"),
    ("post", "/v1/consent", "submitConsent"),
    ("get", "/v1/consent/requests/{digest}", "getConsentRequest"),
    ("get", "/v1/brands", "listBrands"),
    ("post", "/v1/brands", "createBrand"),
    ("get", "/v1/brands/{id}", "getBrand"),
    ("patch", "/v1/brands/{id}", "updateBrand"),
    ("get", "/v1/campaigns", "listCampaigns"),
    ("post", "/v1/campaigns", "createCampaign"),
    ("get", "/v1/campaigns/{id}", "getCampaign"),
    ("patch", "/v1/campaigns/{id}", "updateCampaign"),
    ("post", "/v1/campaigns/{id}/status", "changeCampaignStatus"),
    ("get", "/v1/campaigns/{id}/history", "getCampaignHistory"),
    ("get", "/v1/campaigns/{id}/analytics", "getCampaignAnalytics"),
    ("get", "/v1/ad-sets", "listAdSets"),
    ("post", "/v1/ad-sets", "createAdSet"),
    ("get", "/v1/ad-sets/{id}", "getAdSet"),
    ("patch", "/v1/ad-sets/{id}", "updateAdSet"),
    ("get", "/v1/ads", "listAds"),
    ("post", "/v1/ads", "createAd"),
    ("get", "/v1/ads/{id}", "getAd"),
    ("patch", "/v1/ads/{id}", "updateAd"),
    ("get", "/v1/placements", "listPlacements"),
    ("post", "/v1/placements", "createPlacement"),
    ("patch", "/v1/placements/{id}", "updatePlacement"),
    ("get", "/v1/pricing", "listPrices"),
    ("put", "/v1/pricing/{token}", "setPrices"),
    ("post", "/v1/decisions", "requestDecision"),
    ("post", "/v1/receipts", "submitReceipts"),
    ("get", "/v1/payouts/{account}", "getPayouts"),
    ("get", "/v1/program-budgets", "listProgramBudgets"),
    ("post", "/v1/program-budgets", "createProgramBudget"),
    ("get", "/v1/program-budgets/{id}", "getProgramBudget"),
    ("post", "/v1/program-budgets/{id}/fundings", "fundProgramBudget"),
    ("post", "/v1/holds/{id}/end", "endHold"),
    // The marketplace.
    ("get", "/v1/market/items", "searchItems"),
    ("post", "/v1/market/items", "createItem"),
    ("get", "/v1/market/items/{id}", "getItem"),
    ("patch", "/v1/market/items/{id}", "updateItem"),
    ("post", "/v1/market/items/{id}/files", "addItemFile"),
    ("put", "/v1/market/items/{id}/fee", "setItemFee"),
    ("put", "/v1/market/sellers/{address}/fee", "setSellerFee"),
    ("get", "/v1/market/seller/items", "listSellerItems"),
    ("get", "/v1/market/seller/dashboard", "getSellerDashboard"),
    ("get", "/v1/market/orders", "listOrders"),
    ("post", "/v1/market/orders", "createOrder"),
    ("get", "/v1/market/orders/{id}", "getOrder"),
    ("post", "/v1/market/orders/{id}/refund", "refundOrder"),
    ("get", "/v1/market/licenses", "listLicenses"),
    (
        "post",
        "/v1/market/orders/{id}/files/{file_id}/link",
        "createDownloadLink",
    ),
    ("get", "/v1/market/downloads/{token}", "downloadFile"),
    ("post", "/v1/market/licenses/validate", "validateLicense"),
    ("post", "/v1/market/licenses/activate", "activateLicense"),
    ("post", "/v1/market/licenses/deactivate", "deactivateLicense"),
    ("get", "/v1/market/license-key", "getLicensePublicKey"),
    // Referrals, affiliates and adjustments.
    ("get", "/v1/referrals/me", "getMyReferralCode"),
    ("patch", "/v1/referrals/me", "setMyReferralLimit"),
    ("get", "/v1/referrals/me/referrals", "listMyReferrals"),
    ("get", "/v1/referrals/me/snapshot", "getMyReferralSnapshot"),
    ("post", "/v1/referrals/me/recompute", "recomputeMyReferrals"),
    ("get", "/v1/admin/referrals/rules", "getReferralRules"),
    ("put", "/v1/admin/referrals/rules", "setReferralRules"),
    ("get", "/v1/admin/referrals/{id}/snapshot", "getReferrerSnapshot"),
    ("get", "/v1/admin/referrals/{id}/referrals", "listReferrerReferrals"),
    ("post", "/v1/affiliates/me", "applyAsAffiliate"),
    ("get", "/v1/affiliates/me", "getMyAffiliate"),
    ("post", "/v1/affiliates/me/codes", "createAffiliateCode"),
    ("get", "/v1/affiliates/me/dashboard", "getAffiliateDashboard"),
    ("get", "/v1/admin/affiliates", "listAffiliates"),
    ("post", "/v1/admin/affiliates/{id}/status", "changeAffiliateStatus"),
    ("put", "/v1/admin/affiliates/{id}/rate", "setAffiliateRate"),
    ("post", "/v1/admin/adjustments", "reverseBilledReceipts"),
    ("put", "/v1/admin/users/{id}/disabled", "setUserDisabled"),
];

/// The operation id of `method path`. An operation missing from [`OPERATION_IDS`] still gets
/// a unique id (method and path spelled out); the OpenAPI tests fail until it is named.
pub fn operation_id(method: &str, path: &str) -> String {
    OPERATION_IDS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, id)| (*id).to_owned())
        .unwrap_or_else(|| {
            let words = path
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty());
            std::iter::once(method).chain(words).collect::<Vec<_>>().join("_")
        })
}

/// Adds to every operation of the assembled document what the shared layers give it. Runs
/// on the merged document: the `#[openapi]` modifiers run before the routers' paths exist.
pub fn complete(openapi: &mut OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("options", &mut item.options),
            ("head", &mut item.head),
            ("patch", &mut item.patch),
            ("trace", &mut item.trace),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                operation.operation_id = Some(operation_id(method, path));
                complete_responses(path, operation);
                if super::idempotency::OPERATIONS.contains(&(method, path.as_str())) {
                    document_idempotency(operation);
                }
            }
        }
    }
}

fn complete_responses(path: &str, operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    // Security requirements' members are private; their JSON form is `{scheme: [scopes]}`.
    let security = serde_json::to_value(&operation.security).unwrap_or_default();
    let requirements = security.as_array().map(Vec::as_slice).unwrap_or_default();
    let authenticated = requirements
        .iter()
        .any(|r| r.as_object().is_some_and(|r| !r.is_empty()));
    // Scopes name the roles that admit a caller; `session` refuses API keys. Either way a
    // valid credential can still be turned away.
    let role_bound = requirements
        .iter()
        .filter_map(|r| r.as_object())
        .flatten()
        .any(|(scheme, scopes)| scheme == "session" || scopes.as_array().is_some_and(|s| !s.is_empty()));

    let responses = &mut operation.responses.responses;
    // Every error the API sends is a problem document (handlers, extractors and the layer
    // that wraps bare statuses all make one).
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('4') || status.starts_with('5'), response) {
            response.content.clear();
            response
                .content
                .insert(PROBLEM_MEDIA_TYPE.to_owned(), RefOr::T(problem_content()));
        }
    }
    let mut add = |status: &str, response: fn() -> Response| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(response()));
    };
    if has_body {
        add("400", || problem("The body is not valid JSON"));
        add("413", || problem("The body is larger than the API accepts"));
        add("415", || problem("The body is not `application/json`"));
    }
    if has_body || has_parameters {
        add("422", || problem("A member or parameter is invalid; `field` names it"));
    }
    if authenticated {
        add("401", unauthenticated);
    }
    if role_bound {
        add("403", || {
            problem("The credential does not carry a role this operation needs")
        });
    }
    if path.starts_with("/v1/") {
        add("429", rate_limited);
    }
    // Handlers document their own 401s and 429s too; the headers come with them all the same.
    for (status, header, describe) in [
        ("401", header::WWW_AUTHENTICATE, www_authenticate as fn() -> Header),
        ("429", header::RETRY_AFTER, retry_after),
    ] {
        if let Some(RefOr::T(response)) = responses.get_mut(status) {
            response
                .headers
                .entry(header.as_str().to_owned())
                .or_insert_with(|| RefOr::T(describe()));
        }
    }
}

/// The optional `Idempotency-Key` header (`platform::idempotency`), what it can be
/// answered, and the header that marks a replayed answer.
fn document_idempotency(operation: &mut Operation) {
    let key = ParameterBuilder::new()
        .name(idempotency::HEADER_NAME)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes the request safe to retry: sent again with the same key (and the same method, \
             path and body), it is answered with the first request's success, marked \
             `Idempotent-Replayed: true`, and takes no second effect. Keys belong to the caller, \
             last 24 hours by default, and are released by any error answer. A UUID is a good key.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(idempotency::Key::MAX_LEN))
                .pattern(Some("^[!-~]+$")),
        ))
        .build();
    operation.parameters.get_or_insert_with(Vec::new).push(RefOr::T(key));

    let responses = &mut operation.responses.responses;
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response
                .headers
                .entry(super::idempotency::REPLAYED.as_str().to_owned())
                .or_insert_with(|| RefOr::T(replayed()));
        }
    }
    for (status, also) in [
        (
            "409",
            "A request with the same `Idempotency-Key` is still being processed; retry after \
             `Retry-After` seconds",
        ),
        (
            "422",
            "The `Idempotency-Key` is malformed, or was used for a different request (`field` \
             names the header)",
        ),
    ] {
        let response = responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem("")));
        if let RefOr::T(response) = response {
            response.description = match response.description.trim() {
                "" => also.to_owned(),
                own => format!("{}. Or: {also}", own.trim_end_matches('.')),
            };
        }
    }
    if let Some(RefOr::T(response)) = responses.get_mut("409") {
        response
            .headers
            .entry(header::RETRY_AFTER.as_str().to_owned())
            .or_insert_with(|| RefOr::T(retry_after()));
    }
}

fn replayed() -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["true"])),
        ))
        .description(Some(
            "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`",
        ))
        .build()
}

const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_MEDIA_TYPE, problem_content())
        .build()
}

fn unauthenticated() -> Response {
    problem("Missing, malformed, expired or revoked credential")
}

fn rate_limited() -> Response {
    problem("The client (credential or address) is over its request rate")
}

fn www_authenticate() -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some("`Bearer`"))
        .build()
}

fn retry_after() -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
        .description(Some("Seconds until a request will be accepted"))
        .build()
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_bundle_is_the_published_one() {
        // SHA-256 of `package/dist/browser/standalone.js` in the npm tarball of
        // @scalar/api-reference at `scalar_version!()` (npm checked the tarball's integrity).
        assert_eq!(
            hex::encode(Sha256::digest(SCALAR_JS)),
            "dcb027152bf20bf2f6dcd66e8f9fb073c1a9e274cf0b94b939a7d99ab8947060"
        );
        assert!(
            DOCS_HTML.contains(SCALAR_PATH),
            "the page loads the bundle this binary serves"
        );
    }

    #[test]
    fn unnamed_operations_still_get_unique_ids() {
        assert_eq!(operation_id("post", "/v1/campaigns"), "createCampaign");
        assert_eq!(
            operation_id("post", "/v1/campaigns/{id}/refunds"),
            "post_v1_campaigns_id_refunds"
        );
    }
}

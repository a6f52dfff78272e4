//! The OpenAPI document is generated from the code and lists every route; docs and metrics
//! are served.

use std::collections::BTreeSet;

use adescrow::platform::db::MIGRATOR;
use axum::http::header;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn document_lists_every_route(pool: PgPool) {
    let app = TestApp::new(pool);
    let reply = app.get("/openapi.json", None).await;
    let doc = reply.ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1");

    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /problems/{slug}",
        "GET /v1/auth/nonce",
        "POST /v1/auth/siwe",
        "POST /v1/auth/refresh",
        "POST /v1/auth/logout",
        "GET /v1/me",
        "POST /v1/me/roles",
        "GET /v1/api-keys",
        "POST /v1/api-keys",
        "DELETE /v1/api-keys/{id}",
        "GET /v1/nodes",
        "POST /v1/nodes",
        "GET /v1/nodes/{id}",
        "PATCH /v1/nodes/{id}",
        "DELETE /v1/nodes/{id}",
        "GET /v1/admin/users/{id}",
        "PUT /v1/admin/users/{id}/roles/{role}",
        "DELETE /v1/admin/users/{id}/roles/{role}",
        "GET /v1/chain/status",
        "GET /v1/escrow/campaigns/{campaign_id}",
        "GET /v1/escrow/settlements",
        "GET /v1/leaderboards",
        "GET /v1/leaderboards/{category}",
        "GET /v1/leaderboards/{category}/me",
        "POST /v1/admin/leaderboard-prizes",
        "GET /v1/statements/me",
        "GET /v1/statements/me/csv",
        "GET /v1/admin/statements/{account}",
        "GET /v1/admin/platform-statement",
        "GET /v1/badges",
        "GET /v1/badges/{account}",
        "GET /v1/me/badges",
        "POST /v1/admin/promotions",
        "GET /v1/admin/promotions",
        "GET /v1/admin/promotions/{id}",
        "POST /v1/admin/promotions/{id}/actions",
        "GET /v1/promotions/{code}",
        "POST /v1/promotions/{code}/redemptions",
        "GET /v1/me/promotions",
        "POST /v1/resellers/me",
        "GET /v1/resellers/me",
        "PUT /v1/resellers/me/branding",
        "PUT /v1/resellers/me/domain",
        "POST /v1/resellers/me/domain/verify",
        "POST /v1/resellers/me/contracts",
        "POST /v1/resellers/me/contracts/{id}/status",
        "GET /v1/admin/resellers",
        "GET /v1/admin/resellers/{id}",
        "POST /v1/admin/reseller-contracts/{id}/status",
        "PUT /v1/admin/resellers/{id}/quotas",
        "PUT /v1/admin/resellers/{id}/tiers",
        "POST /v1/resellers/join",
        "GET /v1/resellers/join",
        "GET /v1/branding",
        "GET /v1/escrow/claims/{account}",
        "GET /v1/consent/{user}",
        "POST /v1/me/viewer-id",
        "GET /v1/brands",
        "POST /v1/brands",
        "GET /v1/brands/{id}",
        "PATCH /v1/brands/{id}",
        "GET /v1/campaigns",
        "POST /v1/campaigns",
        "GET /v1/campaigns/{id}",
        "PATCH /v1/campaigns/{id}",
        "POST /v1/campaigns/{id}/status",
        "GET /v1/campaigns/{id}/history",
        "GET /v1/campaigns/{id}/analytics",
        "GET /v1/ad-sets",
        "POST /v1/ad-sets",
        "GET /v1/ad-sets/{id}",
        "PATCH /v1/ad-sets/{id}",
        "GET /v1/ads",
        "POST /v1/ads",
        "GET /v1/ads/{id}",
        "PATCH /v1/ads/{id}",
        "GET /v1/placements",
        "POST /v1/placements",
        "PATCH /v1/placements/{id}",
        "GET /v1/pricing",
        "PUT /v1/pricing/{token}",
        "POST /v1/nodes/sessions",
        "POST /v1/decisions",
        "POST /v1/receipts",
        // Settlement.
        "GET /v1/payouts/{account}",
        "POST /v1/consent",
        "GET /v1/consent/requests/{digest}",
        "GET /v1/me/earnings",
        // The money core.
        "GET /v1/program-budgets",
        "POST /v1/program-budgets",
        "GET /v1/program-budgets/{id}",
        "POST /v1/program-budgets/{id}/fundings",
        "POST /v1/holds/{id}/end",
        // The marketplace.
        "GET /v1/market/items",
        "POST /v1/market/items",
        "GET /v1/market/items/{id}",
        "PATCH /v1/market/items/{id}",
        "POST /v1/market/items/{id}/files",
        "PUT /v1/market/items/{id}/fee",
        "PUT /v1/market/sellers/{address}/fee",
        "GET /v1/market/seller/items",
        "GET /v1/market/seller/dashboard",
        "GET /v1/market/orders",
        "POST /v1/market/orders",
        "GET /v1/market/orders/{id}",
        "POST /v1/market/orders/{id}/refund",
        "GET /v1/market/licenses",
        "POST /v1/market/orders/{id}/files/{file_id}/link",
        "GET /v1/market/downloads/{token}",
        "POST /v1/market/licenses/validate",
        "POST /v1/market/licenses/activate",
        "POST /v1/market/licenses/deactivate",
        "GET /v1/market/license-key",
        "GET /v1/referrals/me",
        "PATCH /v1/referrals/me",
        "GET /v1/referrals/me/referrals",
        "GET /v1/referrals/me/snapshot",
        "POST /v1/referrals/me/recompute",
        "GET /v1/admin/referrals/rules",
        "PUT /v1/admin/referrals/rules",
        "GET /v1/admin/referrals/{id}/snapshot",
        "GET /v1/admin/referrals/{id}/referrals",
        "POST /v1/affiliates/me",
        "GET /v1/affiliates/me",
        "POST /v1/affiliates/me/codes",
        "GET /v1/affiliates/me/dashboard",
        "GET /v1/admin/affiliates",
        "POST /v1/admin/affiliates/{id}/status",
        "PUT /v1/admin/affiliates/{id}/rate",
        "POST /v1/admin/adjustments",
        "PUT /v1/admin/users/{id}/disabled",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Every operation of the document, as (`METHOD path`, operation).
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, op)| (format!("{} {path}", method.to_uppercase()), op))
        })
        .collect()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn operation_ids_are_unique_and_named(pool: PgPool) {
    let doc = TestApp::new(pool).get("/openapi.json", None).await.ok().clone();
    let mut seen = BTreeSet::new();
    for (operation, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{operation}: no operationId"));
        // A generated client turns ids into method names: lower camel case, no separators
        // (an id with `_` is the fallback for an operation missing from the table in docs.rs).
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{operation}: operationId {id:?} is not lower camel case"
        );
        assert!(
            seen.insert(id.to_owned()),
            "{operation}: operationId {id:?} is used twice"
        );
    }
    assert_eq!(
        doc["paths"]["/v1/campaigns"]["post"]["operationId"], "createCampaign",
        "ids read as what the operation does"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn errors_are_documented_as_problems_wherever_they_can_happen(pool: PgPool) {
    let doc = TestApp::new(pool).get("/openapi.json", None).await.ok().clone();
    let problem = json!({ "schema": { "$ref": "#/components/schemas/Problem" } });
    for (operation, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"],
                    json!({ "application/problem+json": problem }),
                    "{operation} {status}"
                );
            }
        }
        let has = |status: &str| responses.contains_key(status);
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(has(status), "{operation}: a JSON body can be answered {status}");
            }
        }
        if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
            assert!(has("422"), "{operation}: a parameter can be refused");
        }
        let security = op["security"].as_array().cloned().unwrap_or_default();
        if security.iter().any(|r| r.as_object().is_some_and(|r| !r.is_empty())) {
            assert!(has("401"), "{operation}: a credential can be missing");
            assert!(
                responses["401"]["headers"]["www-authenticate"].is_object(),
                "{operation}"
            );
        }
        let role_bound = security
            .iter()
            .filter_map(Value::as_object)
            .flatten()
            .any(|(scheme, scopes)| scheme == "session" || scopes.as_array().is_some_and(|s| !s.is_empty()));
        if role_bound {
            assert!(has("403"), "{operation}: a caller without the role is refused");
        }
        if operation.split(' ').nth(1).unwrap().starts_with("/v1/") {
            assert!(
                responses["429"]["headers"]["retry-after"].is_object(),
                "{operation}: rate limited"
            );
        }
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn schemas_state_what_the_server_checks(pool: PgPool) {
    let doc = TestApp::new(pool).get("/openapi.json", None).await.ok().clone();
    let schemas = &doc["components"]["schemas"];
    let settlement = &schemas["Settlement"]["allOf"][1]["properties"];
    assert_eq!(settlement["totals"]["type"], "array", "totals are served as an array");
    assert_eq!(
        settlement["totals"]["items"]["$ref"],
        "#/components/schemas/SettlementTotal"
    );
    assert_eq!(schemas["Address"]["pattern"], "^(0[xX])?[0-9a-fA-F]{40}$");
    assert_eq!(
        doc["paths"]["/v1/payouts/{account}"]["get"]["parameters"][0]["schema"]["$ref"], "#/components/schemas/Address",
        "path addresses are addresses, not any string"
    );
    assert_eq!(
        schemas["CreateBrand"]["properties"]["name"]["$ref"],
        "#/components/schemas/Name"
    );
    assert!(
        schemas["TimeZone"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("Europe/Berlin")),
        "time zones are the ones the server knows"
    );
    // Example tokens are the devnet's test token, never its escrow (the deployer's first
    // contract, 0x5FbDB…).
    let text = doc.to_string();
    assert!(
        text.contains("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"),
        "the test token"
    );
    assert!(
        !text.contains("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        "the escrow as a token"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn docs_page_loads_scalar_from_this_origin_only(pool: PgPool) {
    let app = TestApp::new(pool);
    let docs = app.get("/docs", None).await;
    assert!(docs.status.is_success());
    let csp = docs.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("http"), "no other origin is allowed: {csp}");
    let src = docs
        .text
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a script");
    assert!(src.starts_with("/docs/scalar-api-reference-"), "{src}");
    assert!(
        docs.text
            .contains(r#"<script id="api-reference" type="application/json""#)
    );

    let bundle = app.get(src, None).await;
    assert!(bundle.status.is_success());
    assert_eq!(bundle.headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(
        bundle.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        bundle.text.contains("createApiReference"),
        "the Scalar standalone bundle"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn docs_page_and_metrics_are_served(pool: PgPool) {
    let app = TestApp::new(pool);
    let docs = app.get("/docs", None).await;
    assert!(docs.status.is_success());
    assert!(docs.text.contains("api-reference"), "Scalar page");

    app.get("/healthz", None).await.ok();
    app.get("/v1/no-such-route", None).await;
    let metrics = app.get("/metrics", None).await;
    assert!(metrics.status.is_success());
    assert!(
        metrics.text.lines().any(|l| l.starts_with("axum_http_requests_total")
            && l.contains("endpoint=\"/healthz\"")
            && l.contains("status=\"200\"")),
        "request counter by route and status:\n{}",
        metrics.text
    );
    assert!(
        metrics.text.contains("axum_http_requests_duration_seconds"),
        "latency histogram"
    );
    assert!(
        metrics.text.contains("endpoint=\"unmatched\""),
        "unmatched routes share a label"
    );
}

/// Every `$ref` in the document names a component it defines (a query parameter's named
/// schema is not collected into the components unless inlined).
#[sqlx::test(migrator = "MIGRATOR")]
async fn every_reference_resolves(pool: PgPool) {
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }
    let doc = TestApp::new(pool).get("/openapi.json", None).await.ok().clone();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 100, "{} references", found.len());
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{target}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{target} is not defined"
        );
    }
}

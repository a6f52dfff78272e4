//! The OpenAPI document is generated from the code and lists every route; docs and metrics
//! are served.

use std::collections::BTreeSet;

use adescrow::db::MIGRATOR;
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
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
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

//! Per-client rate limits: 429 with Retry-After once a client's burst is spent, while other
//! clients keep their own budget.

use adescrow::db::MIGRATOR;
use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn over_budget_clients_get_429_with_retry_after(pool: PgPool) {
    let app = TestApp::with(pool, |c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 2;
    });
    for _ in 0..2 {
        app.get("/v1/auth/nonce", None).await.ok();
    }
    let limited = app.get("/v1/auth/nonce", None).await;
    limited.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    let retry_after: u64 = limited
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "retry-after {retry_after}");

    // Another client (here: another credential) has its own budget.
    app.get("/v1/me", Some("some-other-client"))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Health probes are never limited.
    app.get("/healthz", None).await.ok();
}

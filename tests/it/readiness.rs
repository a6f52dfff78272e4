//! Liveness and readiness against real dependencies: a real anvil and real Postgres, and
//! each of them missing.

use adescrow::db::MIGRATOR;
use axum::http::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::support::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn ready_when_database_and_chain_answer(pool: PgPool) {
    let anvil = spawn_anvil();
    let app = TestApp::with(pool, |c| c.rpc_url = anvil.endpoint_url());
    app.get("/healthz", None).await.ok();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.ok()["status"], "ready");
    assert_eq!(ready.body["chainHead"], 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn not_ready_when_the_chain_rpc_is_down_or_wrong(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let reply = app.get("/readyz", None).await;
    let detail = reply.problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("chain RPC does not answer"), "{detail}");
    assert!(!detail.contains("database"), "{detail}");

    let anvil = spawn_anvil();
    let app = TestApp::with(pool, |c| {
        c.rpc_url = anvil.endpoint_url();
        c.chain_id = 1;
    });
    let reply = app.get("/readyz", None).await;
    let detail = reply.problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("another chain"), "{detail}");
}

#[tokio::test]
async fn not_ready_when_the_database_is_down() {
    let anvil = spawn_anvil();
    // Nothing listens on port 9: the database is down as far as the API can tell.
    let pool = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:9/none")
        .unwrap();
    let app = TestApp::with(pool, |c| c.rpc_url = anvil.endpoint_url());
    app.get("/healthz", None).await.ok();
    let reply = app.get("/readyz", None).await;
    let detail = reply.problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("database does not answer"), "{detail}");
    assert!(!detail.contains("chain"), "{detail}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn not_ready_when_the_indexer_has_stalled(pool: PgPool) {
    let anvil = spawn_anvil();
    // The chain moves on (head 100) while the mirror sits at block 10 and has not moved
    // for two minutes.
    alloy::providers::ext::AnvilApi::anvil_mine(
        &alloy::providers::ProviderBuilder::new().connect_http(anvil.endpoint_url()),
        Some(100),
        None,
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO chain_checkpoints (chain_id, indexed_block, finalized_block, head_block, updated_at)
         VALUES (31337, 10, 0, 10, now() - interval '2 minutes')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let app = TestApp::with(pool.clone(), |c| c.rpc_url = anvil.endpoint_url());
    let reply = app.get("/readyz", None).await;
    let detail = reply.problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("indexer has stalled"), "{detail}");

    // A mirror that is merely idle on an idle chain is fine.
    sqlx::query("UPDATE chain_checkpoints SET indexed_block = 100")
        .execute(&pool)
        .await
        .unwrap();
    app.get("/readyz", None).await.ok();
}

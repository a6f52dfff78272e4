//! Liveness and readiness against real dependencies: a real anvil and real Postgres, and
//! each of them missing; background roles that are down or stuck.

use std::sync::Arc;
use std::time::Duration;

use adescrow::platform::db::MIGRATOR;
use adescrow::platform::worker::{Role, StepError, Supervisor};
use axum::http::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Semaphore;

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

/// A role whose step waits until the test lets it through.
#[derive(Clone)]
struct Gated {
    gate: Arc<Semaphore>,
}

impl Role for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        self.gate
            .acquire()
            .await
            .map_err(|error| StepError::Fatal(error.into()))?
            .forget();
        Ok(Duration::from_millis(10))
    }
}

/// A role whose every run fails.
#[derive(Clone)]
struct Broken;

impl Role for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        Err(StepError::Fatal(anyhow::anyhow!("cannot work")))
    }
}

async fn readiness_detail(app: &TestApp) -> String {
    let reply = app.get("/readyz", None).await;
    reply.problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable")["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn not_ready_while_a_role_is_stuck_and_ready_once_it_moves(pool: PgPool) {
    let anvil = spawn_anvil();
    let app = TestApp::with(pool, |c| c.rpc_url = anvil.endpoint_url());
    let gate = Arc::new(Semaphore::new(1));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut supervisor = Supervisor::new(app.state.roles.clone(), Duration::from_millis(300), async {
        let _ = stopped.await;
    });
    supervisor.spawn(Gated { gate: gate.clone() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.get("/readyz", None).await.ok();

    // Its second step never finishes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let detail = readiness_detail(&app).await;
    assert!(detail.contains("role gated has made no progress"), "{detail}");
    assert!(!detail.contains("chain") && !detail.contains("database"), "{detail}");

    gate.add_permits(1_000_000);
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.get("/readyz", None).await.ok();
    stop.send(()).unwrap();
    supervisor.wait().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn not_ready_while_a_role_is_down(pool: PgPool) {
    let anvil = spawn_anvil();
    let app = TestApp::with(pool, |c| c.rpc_url = anvil.endpoint_url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut supervisor = Supervisor::new(app.state.roles.clone(), Duration::from_secs(60), async {
        let _ = stopped.await;
    })
    .with_restart_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
    supervisor.spawn(Broken);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let detail = readiness_detail(&app).await;
    assert!(detail.contains("role broken is down"), "{detail}");
    stop.send(()).unwrap();
    supervisor.wait().await;
}

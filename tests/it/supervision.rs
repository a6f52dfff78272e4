//! The worker that runs background roles: restarts after an error or a panic (counted),
//! leadership under an advisory lock, a follower that stands by, and shutdown between steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adescrow::platform::db::MIGRATOR;
use adescrow::platform::leader::Leader;
use adescrow::platform::telemetry::metrics_handle;
use adescrow::platform::worker::{Health, Leadership, Role, StepError, Supervisor};
use sqlx::PgPool;
use tokio::sync::watch;

/// Fails its first run with an error, panics in its second, and works from the third on.
#[derive(Clone)]
struct Flaky {
    runs: Arc<AtomicUsize>,
    steps: Arc<AtomicUsize>,
}

impl Role for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        match self.runs.load(Ordering::SeqCst) {
            1 => Err(StepError::Fatal(anyhow::anyhow!("the first run fails"))),
            2 => panic!("the second run panics"),
            _ => {
                self.steps.fetch_add(1, Ordering::SeqCst);
                Ok(Duration::from_millis(10))
            }
        }
    }
}

/// A role that steps under an advisory lock, counting its steps.
#[derive(Clone)]
struct Leading {
    db: PgPool,
    key: i64,
    steps: Arc<AtomicUsize>,
}

impl Role for Leading {
    fn name(&self) -> &'static str {
        "leading"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: self.key,
            poll: Duration::from_millis(50),
        })
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        self.steps.fetch_add(1, Ordering::SeqCst);
        Ok(Duration::from_millis(20))
    }
}

/// Steps that take a while, to be stopped in the middle of one.
#[derive(Clone)]
struct Slow {
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    stopped: Arc<AtomicUsize>,
}

impl Role for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(Duration::ZERO)
    }

    async fn stop(&mut self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

fn stop_signal() -> (watch::Sender<()>, impl Future<Output = ()> + Send + 'static) {
    let (stop, mut stopped) = watch::channel(());
    (stop, async move {
        let _ = stopped.changed().await;
    })
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of `adescrow_role_restarts_total` for `role` on the process's scrape.
fn restarts(role: &str) -> u64 {
    let series = format!("adescrow_role_restarts_total{{role=\"{role}\"}} ");
    metrics_handle()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in the scrape:\n{}", metrics_handle().render()))
}

#[tokio::test]
async fn a_role_that_fails_or_panics_is_restarted_and_counted() {
    let handle = metrics_handle();
    let role = Flaky {
        runs: Arc::default(),
        steps: Arc::default(),
    };
    let health = Health::default();
    let (stop, stopped) = stop_signal();
    let mut supervisor = Supervisor::new(health.clone(), Duration::from_secs(60), stopped)
        .with_restart_backoff(Duration::from_millis(10), Duration::from_millis(50));
    supervisor.spawn(role.clone());
    assert_eq!(restarts("flaky"), 0, "registered at zero before anything failed");

    until("the third run steps", || role.steps.load(Ordering::SeqCst) >= 3).await;
    assert_eq!(
        role.runs.load(Ordering::SeqCst),
        3,
        "two restarts, each from a clean copy"
    );
    assert_eq!(restarts("flaky"), 2, "{}", handle.render());
    assert_eq!(health.problems(), [], "up again after its restarts");

    stop.send(()).unwrap();
    supervisor.wait().await;
    assert_eq!(restarts("flaky"), 2, "stopping is not a failure");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_follower_stands_by_healthy_until_the_lock_is_free(pool: PgPool) {
    let key = 4242;
    let held = Leader::try_acquire(&pool, key).await.unwrap().expect("free lock");
    let role = Leading {
        db: pool.clone(),
        key,
        steps: Arc::default(),
    };
    let health = Health::default();
    let (stop, stopped) = stop_signal();
    // Stalled after 200 ms without a beat: standing by must keep beating.
    let mut supervisor = Supervisor::new(health.clone(), Duration::from_millis(200), stopped);
    supervisor.spawn(role.clone());

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(role.steps.load(Ordering::SeqCst), 0, "no step without the lock");
    assert_eq!(health.problems(), [], "a follower is healthy");

    held.release().await;
    until("the follower takes over", || role.steps.load(Ordering::SeqCst) > 0).await;
    assert!(
        Leader::try_acquire(&pool, key).await.unwrap().is_none(),
        "it holds the lock now"
    );
    stop.send(()).unwrap();
    supervisor.wait().await;
    let mut again = Leader::try_acquire(&pool, key)
        .await
        .unwrap()
        .expect("released at shutdown");
    assert!(again.still_held().await);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_leader_that_loses_its_lock_session_stops_and_waits_for_the_lock_again(pool: PgPool) {
    metrics_handle();
    let key = 4343;
    let role = Leading {
        db: pool.clone(),
        key,
        steps: Arc::default(),
    };
    let (stop, stopped) = stop_signal();
    let mut supervisor = Supervisor::new(Health::default(), Duration::from_secs(60), stopped)
        .with_restart_backoff(Duration::from_millis(300), Duration::from_millis(300));
    supervisor.spawn(role.clone());
    until("it leads", || role.steps.load(Ordering::SeqCst) > 0).await;
    let before = restarts("leading");

    // Its lock's session ends, and another process takes the lock at once.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND objid::bigint = $1 AND granted",
    )
    .bind(key)
    .execute(&pool)
    .await
    .unwrap();
    let other = loop {
        if let Some(leader) = Leader::try_acquire(&pool, key).await.unwrap() {
            break leader;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    until("the loss is noticed", || restarts("leading") > before).await;
    let steps = role.steps.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        role.steps.load(Ordering::SeqCst),
        steps,
        "no step while another process holds the lock"
    );

    other.release().await;
    until("it leads again", || role.steps.load(Ordering::SeqCst) > steps).await;
    stop.send(()).unwrap();
    supervisor.wait().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_step_in_flight_and_stops_the_role() {
    let role = Slow {
        started: Arc::default(),
        finished: Arc::default(),
        stopped: Arc::default(),
    };
    let (stop, stopped) = stop_signal();
    let mut supervisor = Supervisor::new(Health::default(), Duration::from_secs(60), stopped);
    supervisor.spawn(role.clone());
    until("a step is under way", || role.started.load(Ordering::SeqCst) > 0).await;
    stop.send(()).unwrap();
    supervisor.wait().await;
    assert_eq!(
        role.finished.load(Ordering::SeqCst),
        role.started.load(Ordering::SeqCst),
        "no step cut in half"
    );
    assert_eq!(role.stopped.load(Ordering::SeqCst), 1);
}

//! The worker every background role runs in: the scheduler, the relayer, the indexer, the
//! serving index's refresh and the API's housekeeping.
//!
//! - A role works in **steps**, each safe to repeat and to interrupt between two of them;
//!   the role says how long to wait before the next. Shutdown is seen between steps only, so
//!   no step is cut in half.
//! - A role that must not run twice at once runs under a Postgres advisory lock
//!   ([`Leadership`]); a process that does not hold it stands by and asks again. Losing the
//!   lock's session ends the run, so the role never acts without the lock.
//! - A step that fails with [`StepError::Retry`] (the chain or the database is unreachable)
//!   is retried with capped exponential backoff within the run. [`StepError::Fatal`], a
//!   panic, or a lost lock ends the run: the supervisor logs it, counts it in
//!   `adescrow_role_restarts_total{role}` and starts the role afresh from a clean copy after
//!   a capped exponential backoff, waiting for the lock again.
//! - Every finished step is a heartbeat, and so is every answer a standing-by process gets
//!   to its request for the lock: a follower is healthy, not down. [`Health::problems`]
//!   names each role that is down (between a failure and its restart) or has not beaten
//!   within its stall period; `/readyz` reports them.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::platform::leader::Leader;

/// Counter of runs that failed and were restarted, by role.
pub const RESTARTS_METRIC: &str = "adescrow_role_restarts_total";

/// Why a step did not finish.
#[derive(Debug)]
pub enum StepError {
    /// Worth trying again in a moment in the same run (an RPC or database outage).
    Retry(anyhow::Error),
    /// The run cannot go on: it is restarted afresh.
    Fatal(anyhow::Error),
}

/// The advisory lock a role runs under.
#[derive(Debug, Clone)]
pub struct Leadership {
    pub db: PgPool,
    /// The `pg_advisory_lock` key.
    pub key: i64,
    /// How often a process that does not hold the lock asks for it.
    pub poll: Duration,
}

/// A background role. The supervisor keeps the value it was given as a clean copy and
/// clones it for each run, so a run that failed (or panicked mid-step) leaves nothing behind.
pub trait Role: Clone + Send + 'static {
    /// The role's name in logs, metrics and `/readyz`.
    fn name(&self) -> &'static str;

    /// The lock the role runs under, if only one process at a time may run it.
    fn leadership(&self) -> Option<Leadership> {
        None
    }

    /// The longest a healthy run goes between two heartbeats (its own interval); the role
    /// is reported stalled only after the supervisor's stall period or twice this.
    fn longest_quiet(&self) -> Duration {
        Duration::ZERO
    }

    /// How a failed step is retried within a run.
    fn retry(&self) -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// Prepares a run, once it holds its lock.
    fn start(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// One unit of work; returns how long to wait before the next.
    fn step(&mut self) -> impl Future<Output = Result<Duration, StepError>> + Send;

    /// Waits until the next step is due; a role woken by something other than time (a
    /// database notification) says so here.
    fn wait(&mut self, due: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(due)
    }

    /// Ends a run between steps (shutdown, a fatal step, a lost lock): flush what is held.
    fn stop(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Capped exponential backoff: `initial`, twice that, ... up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next try.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running steps, or between them.
    Active,
    /// Waiting for the leader lock that another process holds.
    Standby,
    /// Failed; waiting to be restarted.
    Down,
    /// Stopped for shutdown.
    Stopped,
}

#[derive(Debug)]
struct Watch {
    state: State,
    last_beat: Instant,
    stall_after: Duration,
}

/// What is wrong with one role, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleProblem {
    /// It failed and waits to be restarted.
    Down { role: &'static str },
    /// No step (or lock request) has finished for `quiet`.
    Stalled { role: &'static str, quiet: Duration },
    /// It was stopped: the process is shutting down.
    Stopped { role: &'static str },
}

impl RoleProblem {
    pub fn role(&self) -> &'static str {
        match self {
            Self::Down { role } | Self::Stalled { role, .. } | Self::Stopped { role } => role,
        }
    }
}

impl fmt::Display for RoleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Down { role } => write!(f, "{role} is down (restarting)"),
            Self::Stalled { role, quiet } => {
                let whole_seconds = Duration::from_secs(quiet.as_secs());
                write!(
                    f,
                    "{role} has made no progress for {}",
                    humantime::format_duration(whole_seconds)
                )
            }
            Self::Stopped { role } => write!(f, "{role} has stopped"),
        }
    }
}

/// The health of every role of a process. Cheap to clone; clones share the roles.
#[derive(Debug, Clone, Default)]
pub struct Health {
    roles: Arc<Mutex<BTreeMap<&'static str, Watch>>>,
}

impl Health {
    fn with_roles<T>(&self, f: impl FnOnce(&mut BTreeMap<&'static str, Watch>) -> T) -> T {
        // A panic elsewhere cannot leave a half-written entry: each update is one assignment.
        let mut roles = self.roles.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut roles)
    }

    fn register(&self, role: &'static str, stall_after: Duration) {
        self.with_roles(|roles| {
            roles.insert(
                role,
                Watch {
                    state: State::Active,
                    last_beat: Instant::now(),
                    stall_after,
                },
            );
        });
    }

    fn beat(&self, role: &'static str, state: State) {
        self.with_roles(|roles| {
            if let Some(watch) = roles.get_mut(role) {
                watch.state = state;
                watch.last_beat = Instant::now();
            }
        });
    }

    fn set(&self, role: &'static str, state: State) {
        self.with_roles(|roles| {
            if let Some(watch) = roles.get_mut(role) {
                watch.state = state;
            }
        });
    }

    /// Every role that is down, stopped, or has not beaten within its stall period.
    pub fn problems(&self) -> Vec<RoleProblem> {
        self.with_roles(|roles| {
            roles
                .iter()
                .filter_map(|(&role, watch)| match watch.state {
                    State::Down => Some(RoleProblem::Down { role }),
                    State::Stopped => Some(RoleProblem::Stopped { role }),
                    State::Active | State::Standby => {
                        let quiet = watch.last_beat.elapsed();
                        (quiet > watch.stall_after).then_some(RoleProblem::Stalled { role, quiet })
                    }
                })
                .collect()
        })
    }
}

/// Whether shutdown has been asked for; every run of every role holds a copy.
#[derive(Debug, Clone)]
struct Stopping(watch::Receiver<bool>);

impl Stopping {
    fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    async fn requested(&mut self) {
        // An error means the sender is gone with the runtime: stop as well.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Runs roles, restarts them when they fail, and stops them all at shutdown.
#[derive(Debug)]
pub struct Supervisor {
    health: Health,
    stopping: Stopping,
    tasks: JoinSet<()>,
    restart: Backoff,
    stall_after: Duration,
}

/// Restarts back off from 1 s up to a minute; a run that lasted longer than that starts the
/// count again.
const RESTART_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

impl Supervisor {
    /// A supervisor whose roles report to `health` and stop when `shutdown` resolves.
    /// Roles that do not beat for `stall_after` are reported stalled.
    pub fn new(health: Health, stall_after: Duration, shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let (stop, stopping) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        Self {
            health,
            stopping: Stopping(stopping),
            tasks,
            restart: Backoff::new(RESTART_BACKOFF.0, RESTART_BACKOFF.1),
            stall_after,
        }
    }

    /// Restarts back off from `initial` up to `max` instead (tests restart quickly).
    pub fn with_restart_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.restart = Backoff::new(initial, max);
        self
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Runs `role` until shutdown, restarting it whenever a run fails.
    pub fn spawn<R: Role>(&mut self, role: R) {
        let name = role.name();
        self.health
            .register(name, self.stall_after.max(role.longest_quiet().saturating_mul(2)));
        // Listed from the first scrape, before the role first fails.
        metrics::counter!(RESTARTS_METRIC, "role" => name).increment(0);
        let health = self.health.clone();
        let stopping = self.stopping.clone();
        let mut restart = self.restart;
        let longest_backoff = restart.max;
        self.tasks.spawn(async move {
            let mut stopping = stopping;
            loop {
                let started = Instant::now();
                let run = tokio::spawn(run(role.clone(), health.clone(), stopping.clone()));
                let failure = match run.await {
                    Ok(Ok(())) if stopping.is_requested() => break,
                    Ok(Ok(())) => anyhow::anyhow!("the role returned without being asked to stop"),
                    Ok(Err(error)) => error,
                    Err(error) => match error.try_into_panic() {
                        Ok(payload) => anyhow::anyhow!("panicked: {}", panic_message(payload.as_ref())),
                        // Cancelled: the runtime is going away.
                        Err(_) => break,
                    },
                };
                if stopping.is_requested() {
                    tracing::error!(role = name, error = format!("{failure:#}"), "role failed while stopping");
                    break;
                }
                if started.elapsed() >= longest_backoff {
                    restart.reset();
                }
                let wait = restart.next_wait();
                health.set(name, State::Down);
                metrics::counter!(RESTARTS_METRIC, "role" => name).increment(1);
                tracing::error!(role = name, error = format!("{failure:#}"), restart_in = ?wait, "role failed; restarting");
                tokio::select! {
                    () = stopping.requested() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            health.set(name, State::Stopped);
        });
    }

    /// Waits for shutdown and for every role to stop after it.
    pub async fn wait(mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a supervisor task ended abnormally");
            }
        }
    }
}

/// One run of a role: take the lock, then step until shutdown, a fatal step or a lost lock.
/// `Ok` only for shutdown.
async fn run<R: Role>(mut role: R, health: Health, mut stopping: Stopping) -> anyhow::Result<()> {
    let name = role.name();
    let mut leader = match role.leadership() {
        Some(leadership) => match wait_for_lock(name, &leadership, &health, &mut stopping).await {
            Some(leader) => Some(leader),
            None => return Ok(()),
        },
        None => None,
    };
    role.start().await?;
    health.beat(name, State::Active);
    let mut retry = role.retry();
    let outcome = loop {
        let wait = match role.step().await {
            Ok(wait) => {
                health.beat(name, State::Active);
                retry.reset();
                wait
            }
            Err(StepError::Retry(error)) => {
                let wait = retry.next_wait();
                tracing::warn!(role = name, error = format!("{error:#}"), retry_in = ?wait, "step failed; retrying");
                wait
            }
            Err(StepError::Fatal(error)) => break Err(error),
        };
        tokio::select! {
            () = stopping.requested() => break Ok(()),
            () = role.wait(wait) => {}
        }
        if let Some(held) = leader.as_mut()
            && !held.still_held().await
        {
            break Err(anyhow::anyhow!("lost the leader lock's database session"));
        }
    };
    role.stop().await;
    if let Some(leader) = leader {
        leader.release().await;
    }
    outcome
}

/// Waits for the role's lock; `None` if shutdown came first.
async fn wait_for_lock(
    name: &'static str,
    leadership: &Leadership,
    health: &Health,
    stopping: &mut Stopping,
) -> Option<Leader> {
    let mut announced = false;
    loop {
        match Leader::try_acquire(&leadership.db, leadership.key).await {
            Ok(Some(leader)) => {
                tracing::info!(role = name, "this process now leads");
                return Some(leader);
            }
            Ok(None) => {
                if !announced {
                    tracing::info!(role = name, "another process leads; standing by");
                    announced = true;
                }
                health.beat(name, State::Standby);
            }
            Err(error) => tracing::warn!(role = name, %error, "cannot reach Postgres for the leader lock"),
        }
        tokio::select! {
            () = stopping.requested() => return None,
            () = tokio::time::sleep(leadership.poll) => {}
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<_> = (0..5).map(|_| backoff.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_secs(1));
    }

    #[test]
    fn a_quiet_role_is_stalled_and_a_down_one_is_named() {
        let health = Health::default();
        health.register("quiet", Duration::ZERO);
        health.register("failed", Duration::from_secs(3600));
        health.register("fine", Duration::from_secs(3600));
        health.set("failed", State::Down);
        std::thread::sleep(Duration::from_millis(5));
        let problems = health.problems();
        let named: Vec<_> = problems.iter().map(|p| (p.role(), p.to_string())).collect();
        assert_eq!(
            named,
            [
                ("failed", "failed is down (restarting)".to_owned()),
                ("quiet", "quiet has made no progress for 0s".to_owned()),
            ]
        );
    }
}

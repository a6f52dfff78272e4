//! The ad server's decision engine. Hoster nodes ask for ads; [`AdServer::decide`] answers
//! from an in-memory index so that a decision touches no database in the common case.
//!
//! The index ([`snapshot::Snapshot`]) is rebuilt when Postgres reports a change to anything
//! it holds (`NOTIFY serving_index`, sent by statement triggers) and on a timer, which picks
//! up budgets that billing spends and stands in for notifications missed while the listener
//! reconnects.

pub mod frequency;
pub mod select;
pub mod served;
pub mod snapshot;
pub mod ticket;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use arc_swap::ArcSwap;
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::adserver::creatives::Creative;
use crate::adserver::schedule;
use crate::platform::worker::{Backoff, Health, Role, StepError, Supervisor};
use frequency::FrequencyCounter;
pub use select::{Context, NoAdReason};
use served::ServedCounter;
use snapshot::Snapshot;
pub use ticket::{Ticket, TicketError, TicketKeys};

/// The Postgres notification channel the schema's triggers send on.
const CHANNEL: &str = "serving_index";
/// Changes usually come in bursts (a campaign and its ads); wait this long to take them in one rebuild.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// One ad chosen for a request, with its signed ticket.
#[derive(Debug, Clone)]
pub struct ServedAd {
    pub ticket: Ticket,
    /// The ticket as the hoster passes it back with receipts.
    pub token: String,
    pub creative: Arc<Creative>,
}

#[derive(Debug)]
pub struct AdServer {
    db: PgPool,
    chain_id: u64,
    snapshot: ArcSwap<Snapshot>,
    frequency: FrequencyCounter,
    served: ServedCounter,
    tickets: TicketKeys,
    ticket_ttl: Duration,
}

/// The placement named in a request does not exist.
#[derive(Debug, thiserror::Error)]
#[error("unknown placement")]
pub struct UnknownPlacement;

impl AdServer {
    /// An ad server with an empty index; [`Self::refresh`] fills it.
    pub fn new(db: PgPool, chain_id: u64, ticket_secret: &[u8], ticket_ttl: Duration) -> Self {
        Self {
            db,
            chain_id,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            frequency: FrequencyCounter::default(),
            served: ServedCounter::default(),
            tickets: TicketKeys::new(ticket_secret),
            ticket_ttl,
        }
    }

    /// Rebuilds the index from Postgres and swaps it in; decisions in flight finish on the old one.
    pub async fn refresh(&self) -> Result<(), sqlx::Error> {
        let started = std::time::Instant::now();
        let now = schedule::timestamp(OffsetDateTime::now_utc());
        let snapshot = Snapshot::load(&self.db, self.chain_id, now).await?;
        metrics::histogram!("adescrow_serving_index_rebuild_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("adescrow_serving_index_ads").set(snapshot.ad_count() as f64);
        tracing::debug!(
            campaigns = snapshot.campaigns.len(),
            ads = snapshot.ad_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "serving index rebuilt"
        );
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// Whether a node may ask for decisions: registered, not retired, owned by a hoster.
    pub fn is_active_node(&self, node: Uuid) -> bool {
        self.snapshot.load().active_nodes.contains_key(&node)
    }

    /// The active node registered under a signing address.
    pub fn node_by_address(&self, address: Address) -> Option<snapshot::ActiveNode> {
        let snapshot = self.snapshot.load();
        snapshot
            .node_ids
            .get(&address)
            .and_then(|id| snapshot.active_nodes.get(id))
            .copied()
    }

    pub fn tickets(&self) -> &TicketKeys {
        &self.tickets
    }

    pub fn frequency(&self) -> &FrequencyCounter {
        &self.frequency
    }

    /// Chooses ads for a node's request and issues a ticket for each.
    pub fn decide(
        &self,
        node: Uuid,
        placement: &str,
        context: &Context<'_>,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<ServedAd>, NoAdReason>, UnknownPlacement> {
        let snapshot = self.snapshot.load();
        let (placement_id, max_ads) = *snapshot.placements.get(placement).ok_or(UnknownPlacement)?;
        let mut rng = rand::rng();
        let chosen = match select::select(
            &snapshot,
            &self.frequency,
            max_ads,
            context,
            schedule::timestamp(now),
            &mut rng,
        ) {
            Ok(chosen) => chosen,
            Err(reason) => return Ok(Err(reason)),
        };
        let issued_at = now.unix_timestamp();
        let issued_at_ms = (now.unix_timestamp_nanos() / 1_000_000) as u64;
        let expires_at = issued_at + self.ticket_ttl.as_secs() as i64;
        let viewer = context.viewer.map(ticket::viewer_hash);
        Ok(Ok(chosen
            .into_iter()
            .map(|ad| {
                let ticket = Ticket {
                    // Time-ordered (UUIDv7), so that billing appends to the ticket index
                    // instead of touching a random page of it for every receipt.
                    id: uuid::Builder::from_unix_timestamp_millis(issued_at_ms, &rng.random()).into_uuid(),
                    ad_id: ad.id,
                    campaign_id: snapshot.campaigns[ad.campaign].id,
                    hoster_node_id: node,
                    placement_id: Some(placement_id),
                    viewer,
                    prices: ad.prices,
                    issued_at,
                    expires_at,
                };
                self.served.record(ad.id, node, issued_at);
                ServedAd {
                    token: self.tickets.issue(&ticket),
                    ticket,
                    creative: ad.creative.clone(),
                }
            })
            .collect()))
    }

    /// Keeps the index fresh on its own until `shutdown` (tests; `serve` adds the
    /// [`Refresh`] role to its supervisor).
    pub fn spawn(
        self: &Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let mut supervisor = Supervisor::new(Health::default(), Duration::MAX, shutdown);
        supervisor.spawn(Refresh::new(self.clone(), interval));
        tokio::spawn(supervisor.wait())
    }

    /// Writes served counts now (normally done on the refresh timer).
    pub async fn flush_served(&self) -> Result<(), sqlx::Error> {
        self.served.flush(&self.db).await
    }
}

/// The serving index's refresh role: rebuilds the index on change notifications and every
/// `interval`; on the timer it also flushes served counts and forgets frequency counts older
/// than an hour. Every API process runs its own (each has its own index).
#[derive(Debug)]
pub struct Refresh {
    server: Arc<AdServer>,
    interval: Duration,
    listener: Option<PgListener>,
    /// When served counts are next flushed and old frequency counts forgotten; rebuilds on
    /// notifications in between do only the index.
    housekeeping_due: Instant,
}

impl Refresh {
    pub fn new(server: Arc<AdServer>, interval: Duration) -> Self {
        Self {
            server,
            interval,
            listener: None,
            housekeeping_due: Instant::now(),
        }
    }
}

/// A fresh copy listens on its own connection once started.
impl Clone for Refresh {
    fn clone(&self) -> Self {
        Self::new(self.server.clone(), self.interval)
    }
}

impl Role for Refresh {
    fn name(&self) -> &'static str {
        "serving-refresh"
    }

    fn longest_quiet(&self) -> Duration {
        self.interval
    }

    fn retry(&self) -> Backoff {
        Backoff::new(Duration::from_secs(1), self.interval.max(Duration::from_secs(1)))
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let listener = async {
            let mut listener = PgListener::connect_with(&self.server.db).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        self.listener = match listener.await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for serving changes; refreshing on the timer only");
                None
            }
        };
        Ok(())
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let server = &self.server;
        server.refresh().await.map_err(|error| {
            StepError::Retry(
                anyhow::Error::new(error).context("could not rebuild the serving index; serving from the previous one"),
            )
        })?;
        if Instant::now() >= self.housekeeping_due {
            server.served.flush(&server.db).await.map_err(|error| {
                StepError::Retry(anyhow::Error::new(error).context("could not flush served counts"))
            })?;
            server.frequency.forget_old(OffsetDateTime::now_utc().unix_timestamp());
            self.housekeeping_due = Instant::now() + self.interval;
        }
        Ok(self.housekeeping_due.saturating_duration_since(Instant::now()))
    }

    async fn wait(&mut self, due: Duration) {
        tokio::select! {
            () = tokio::time::sleep(due) => {}
            notification = recv(&mut self.listener) => {
                if let Err(error) = notification {
                    // sqlx reconnects on the next receive; what changed meanwhile is read now.
                    tracing::warn!(%error, "serving change listener lost its connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                tokio::time::sleep(DEBOUNCE).await;
                if let Some(listener) = self.listener.as_mut() {
                    while listener.next_buffered().is_some() {}
                }
            }
        }
    }

    async fn stop(&mut self) {
        if let Err(error) = self.server.served.flush(&self.server.db).await {
            tracing::warn!(%error, "could not flush served counts at shutdown");
        }
    }
}

async fn recv(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => listener.recv().await.map(drop),
        None => std::future::pending().await,
    }
}

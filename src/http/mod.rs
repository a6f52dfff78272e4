//! The HTTP API: state, router assembly and the layers every request passes through.
//!
//! Each resource lives in its own module with its own `router()`; [`app`] merges them
//! under `/v1`, collects their OpenAPI paths, and wraps them in the shared layers.

pub mod access;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod middleware;
pub mod validate;

mod admin;
mod affiliates;
mod api_keys;
mod auth;
mod badges;
mod brands;
mod campaigns;
mod chain;
mod consent;
mod creatives;
mod decisions;
mod docs;
mod health;
mod leaderboards;
mod market;
mod me;
mod nodes;
mod pages;
mod payouts;
mod placements;
mod programs;
mod promotions;
mod receipts;
mod referrals;
mod resellers;
mod statements;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use adescrow_chain::rpc::ChainRpc;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, header};
use axum_prometheus::metrics_exporter_prometheus::PrometheusHandle;
use axum_prometheus::{EndpointLabel, PrometheusMetricLayerBuilder};
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::accounts::client_network::ClientNetworks;
use crate::accounts::node_session::NodeSessions;
use crate::accounts::session::{SessionKeys, WeakSecret};
use crate::accounts::siwe::SignInPolicy;
use crate::adserver::serving::AdServer;
use crate::billing::{SplitPolicy, split};
use crate::leaderboards::ranking::Rankings;
use crate::leaderboards::{UnknownZone, Zones};
use crate::platform::config::ApiArgs;
use crate::platform::idempotency as idempotency_store;
use crate::platform::telemetry;
use crate::programs::growth::Growth;
use crate::programs::market::Market;
use crate::programs::referrals::Referrals;
use crate::programs::resellers::branding::{SystemDns, TxtResolver};
use middleware::ClientRateLimiter;

/// How long readiness waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared by every request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<ApiArgs>,
    pub sessions: Arc<SessionKeys>,
    pub node_sessions: Arc<NodeSessions>,
    pub ad_server: Arc<AdServer>,
    pub split: SplitPolicy,
    pub sign_in: Arc<SignInPolicy>,
    pub chain: ChainRpc,
    pub rate_limiter: Arc<ClientRateLimiter>,
    pub metrics: PrometheusHandle,
    /// The background roles of this process, which `/readyz` reports on.
    pub roles: crate::platform::worker::Health,
    pub market: Arc<Market>,
    pub growth: Arc<Growth>,
    /// The declared leaderboard zones, and the boards ranked in memory.
    pub leaderboard_zones: Arc<Zones>,
    pub rankings: Arc<Rankings>,
    /// Where a reseller's domain proof is looked up.
    pub resolver: Arc<dyn TxtResolver>,
}

/// A configuration the API cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    WeakSecret(#[from] WeakSecret),
    #[error("rate limits must be at least 1")]
    ZeroRateLimit,
    #[error("the ticket secret must be at least 32 bytes")]
    WeakTicketSecret,
    #[error("revenue splits must have {0} shares in basis points summing to 10000")]
    BadSplit(usize),
    #[error("viewer rewards need one figure per event type (4), each at most 10000 basis points")]
    BadViewerReward,
    #[error("the idempotency key lifetime must exceed the request timeout by more than {0:?}")]
    ShortIdempotencyLifetime(Duration),
    #[error("{0}")]
    Growth(&'static str),
    #[error("marketplace: {0}")]
    Market(String),
    #[error("leaderboards: {0}")]
    Leaderboards(#[from] UnknownZone),
}

impl AppState {
    pub fn new(config: ApiArgs, db: PgPool) -> Result<Self, ConfigError> {
        let sessions = SessionKeys::new(config.jwt_secret.as_bytes(), config.session_ttl, config.refresh_ttl)?;
        let sign_in = SignInPolicy::new(&config.public_url, config.chain_id, config.nonce_ttl);
        let chain = ChainRpc::new(config.rpc_url.clone(), config.chain_id, PROBE_TIMEOUT);
        let per_second = NonZeroU32::new(config.rate_limit_per_second).ok_or(ConfigError::ZeroRateLimit)?;
        let burst = NonZeroU32::new(config.rate_limit_burst).ok_or(ConfigError::ZeroRateLimit)?;
        if config.ticket_secret.len() < 32 {
            return Err(ConfigError::WeakTicketSecret);
        }
        let split = split_policy(&config)?;
        // A key that expired while its first request still ran would let a second one run.
        let lock_timeout = idempotency_store::lock_timeout(config.request_timeout);
        if config.idempotency_key_lifetime <= lock_timeout {
            return Err(ConfigError::ShortIdempotencyLifetime(
                lock_timeout - config.request_timeout,
            ));
        }
        let ad_server = AdServer::new(
            db.clone(),
            config.chain_id,
            config.ticket_secret.as_bytes(),
            config.ticket_ttl,
        );
        let market = Market::new(&config.market, config.platform_address).map_err(ConfigError::Market)?;
        let growth = growth(&config)?;
        let leaderboard_zones = Zones::parse(&config.leaderboard_zones)?;
        Ok(Self {
            leaderboard_zones: Arc::new(leaderboard_zones),
            rankings: Arc::new(Rankings::new(db.clone(), config.leaderboard_refresh)),
            resolver: Arc::new(SystemDns::default()),
            db,
            market: Arc::new(market),
            growth: Arc::new(growth),
            sessions: Arc::new(sessions),
            node_sessions: Arc::new(NodeSessions::new(config.jwt_secret.as_bytes(), config.node_session_ttl)),
            ad_server: Arc::new(ad_server),
            split,
            sign_in: Arc::new(sign_in),
            chain,
            rate_limiter: Arc::new(ClientRateLimiter::new(
                per_second,
                burst,
                ClientNetworks::new(config.jwt_secret.as_bytes()),
            )),
            metrics: telemetry::metrics_handle(),
            roles: crate::platform::worker::Health::default(),
            config: Arc::new(config),
        })
    }

    /// One round of the API process's clean-up: idle rate-limit buckets, spent nonces and
    /// expired idempotency keys (the housekeeping role in `server.rs` runs it every minute).
    pub async fn housekeeping(&self) -> Result<(), sqlx::Error> {
        self.rate_limiter.forget_idle();
        let mut conn = self.db.acquire().await?;
        crate::accounts::siwe::purge_expired_nonces(&mut conn).await?;
        idempotency_store::sweep(&mut conn).await.map(drop)
    }
}

/// The referral and affiliate programs the configuration describes, checked.
fn growth(config: &ApiArgs) -> Result<Growth, ConfigError> {
    let args = &config.growth;
    if args.affiliate_max_rate_bps > 10_000 || !(1..=args.affiliate_max_rate_bps).contains(&args.affiliate_rate_bps) {
        return Err(ConfigError::Growth(
            "affiliate rates must satisfy 1 <= rate <= max rate <= 10000",
        ));
    }
    if args.affiliate_months == 0 {
        return Err(ConfigError::Growth("affiliate attributions must last at least a month"));
    }
    let secret = config.jwt_secret.as_bytes();
    Ok(Growth {
        referrals: Referrals::new(secret, args.referral_link_ttl, config.public_url.clone()),
        affiliates: crate::programs::affiliates::Terms {
            default_rate_bps: args.affiliate_rate_bps,
            max_rate_bps: args.affiliate_max_rate_bps,
            months: args.affiliate_months,
            hold: args.affiliate_hold,
            min_payout: args.affiliate_min_payout.clone(),
            platform: config.platform_address,
        },
        networks: ClientNetworks::sign_ups(secret),
    })
}

/// The revenue split the configuration describes, checked.
fn split_policy(config: &ApiArgs) -> Result<SplitPolicy, ConfigError> {
    fn shares<const N: usize>(values: &[u32]) -> Result<[u32; N], ConfigError> {
        let shares: [u32; N] = values.try_into().map_err(|_| ConfigError::BadSplit(N))?;
        if shares.iter().sum::<u32>() != split::WHOLE {
            return Err(ConfigError::BadSplit(N));
        }
        Ok(shares)
    }
    let viewer_reward: [u32; 4] = config
        .viewer_reward_bps
        .as_slice()
        .try_into()
        .map_err(|_| ConfigError::BadViewerReward)?;
    if viewer_reward.iter().any(|bps| *bps > split::WHOLE) {
        return Err(ConfigError::BadViewerReward);
    }
    Ok(SplitPolicy {
        witnessed: shares(&config.split_witnessed)?,
        unwitnessed: shares(&config.split_unwitnessed)?,
        viewer_reward,
        platform: config.platform_address,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "adescrow API",
        description = "Escrow and settlement for advertising on an EVM chain. Errors are RFC 9457 \
                       problem documents (`application/problem+json`) with a stable `type`.",
        license(name = "MIT")
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ProblemSchema)),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "auth", description = "Sign-In with Ethereum and sessions"),
        (name = "accounts", description = "The signed-in user, roles and API keys"),
        (name = "nodes", description = "Registry of hoster and witness node signing keys"),
        (name = "admin", description = "Operator actions"),
        (name = "chain", description = "The chain mirror: escrow, settlements, claims, consent"),
        (name = "campaigns", description = "Brands, campaigns, ad sets, ads, placements, prices and analytics"),
        (name = "programs", description = "Program budgets funded from the treasury, and holds on what the ledger owes"),
        (name = "decisions", description = "Hoster nodes: sessions and ad decisions"),
        (name = "tracking", description = "Witnessed receipt batches, billing and earnings"),
        (name = "settlement", description = "Payouts with proofs to claim on chain, and gasless consent"),
        (name = "leaderboards", description = "Rankings by category and period, in the declared time zones"),
        (name = "statements", description = "Earnings statements per payee and period, and the platform's"),
        (name = "badges", description = "Badges in tiers, awarded from authoritative state"),
        (name = "promotions", description = "Promo codes: ad credits, fee discounts and free trials"),
        (name = "resellers", description = "White-label resellers: contracts, branding, members, quotas and pricing"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from sign-in, or an API key (`adk_...`). The scopes are the \
                         roles that admit the caller: any one of them.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from wallet sign-in; API keys are refused here. Scopes, \
                         where present, are the roles that admit the caller.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "nodeSession",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A hoster node's session token from `POST /v1/nodes/sessions`."))
                    .build(),
            ),
        );
    }
}

/// Every documented route, with its OpenAPI description.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(auth::router())
        .merge(me::router())
        .merge(api_keys::router())
        .merge(nodes::router())
        .merge(admin::router())
        .merge(chain::router())
        .merge(brands::router())
        .merge(campaigns::router())
        .merge(creatives::router())
        .merge(placements::router())
        .merge(decisions::router())
        .merge(receipts::router())
        .merge(payouts::router())
        .merge(consent::router())
        .merge(programs::router())
        .merge(leaderboards::router())
        .merge(statements::router())
        .merge(badges::router())
        .merge(market::router(state.market.max_file_size))
        .merge(referrals::router())
        .merge(affiliates::router())
        .merge(promotions::router())
        .merge(resellers::router())
        // Inside the rate limit, which identifies the caller a key belongs to.
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_limit,
        ));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router(state))
        .merge(docs::problems_router())
        .nest("/v1", v1)
}

/// The routes and the complete OpenAPI document describing them.
fn routes_and_document(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut openapi) = api(state).split_for_parts();
    docs::complete(&mut openapi);
    (routes, openapi)
}

/// The OpenAPI document of the API, as served at `/openapi.json`.
pub fn openapi(state: &AppState) -> utoipa::openapi::OpenApi {
    routes_and_document(state).1
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (routes, openapi) = routes_and_document(&state);
    let metrics = PrometheusMetricLayerBuilder::new()
        // Unmatched paths share one label so that scanners cannot blow up cardinality.
        .with_endpoint_label_type(EndpointLabel::MatchedPathWithFallbackFn(|_| "unmatched".to_owned()))
        .build();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            state
                .config
                .cors_origins
                .iter()
                .filter_map(|origin| origin.parse().ok()),
        ))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, idempotency_store::HEADER])
        .expose_headers([idempotency::REPLAYED])
        .max_age(Duration::from_secs(600));

    let [nosniff, frame, referrer, hsts, csp] = middleware::security_headers();
    routes
        .merge(docs::router(openapi))
        .merge(pages::router(&state.config.web_dir))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.config.request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(middleware::problem_for_bare_errors))
        .layer(cors)
        .layer(nosniff)
        .layer(frame)
        .layer(referrer)
        .layer(hsts)
        .layer(csp)
        .layer(metrics)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

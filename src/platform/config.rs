//! Command line and environment configuration. Every option has an `ADESCROW_*` (or the
//! conventional `DATABASE_URL`) environment variable; `adescrow.example.env` documents them.

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::Address;
use clap::{Args, Parser, Subcommand, ValueEnum};
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "adescrow",
    version,
    about = "Escrow and settlement for advertising on an EVM chain"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Deploy the contracts and write a deployment file.
    Deploy(Box<crate::platform::deploy::DeployArgs>),
    /// Mirror the contracts' events into Postgres, following the chain.
    Indexer(Box<IndexerArgs>),
    /// Close settlement epochs and send settlements, activations and gasless consent.
    Relayer(Box<RelayerCommandArgs>),
    /// Run the whole loop against a running devnet (`scripts/dev`), printing each step.
    Demo(Box<DemoArgs>),
    /// Run a hoster node: serve the publisher SDK and its decisions, take beacons, and
    /// submit witnessed receipt batches.
    Node(Box<NodeArgs>),
    /// Run a witness node: take beacons, and co-sign batches for what it observed.
    Witness(Box<WitnessArgs>),
}

/// The deployment a node signs for: the chain, and the escrow that names the EIP-712
/// domain of receipt batches.
#[derive(Debug, Clone, Args)]
pub struct SigningDomainArgs {
    #[arg(long, env = "ADESCROW_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,
    /// The AdEscrow address; read from the deployment file when not given.
    #[arg(long, env = "ADESCROW_ESCROW_ADDRESS")]
    pub escrow_address: Option<Address>,
    #[arg(long, env = "ADESCROW_DEPLOYMENT", default_value = "deployments/local.json")]
    pub deployment: std::path::PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The API's base URL.
    #[arg(long, env = "ADESCROW_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: Url,
    /// The node's registered signing key (hex).
    #[arg(long, env = "ADESCROW_NODE_KEY", hide_env_values = true)]
    pub node_key: alloy::signers::local::PrivateKeySigner,
    /// The witness node's base URL; without one, batches go unwitnessed.
    #[arg(long, env = "ADESCROW_WITNESS_URL")]
    pub witness_url: Option<Url>,
    #[arg(long, env = "ADESCROW_NODE_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The node's SQLite store.
    #[arg(long, env = "ADESCROW_NODE_STORE", default_value = "adescrow-node.sqlite")]
    pub store: std::path::PathBuf,
    #[command(flatten)]
    pub domain: SigningDomainArgs,
    /// Receipts per batch at most (the API takes up to its `ADESCROW_MAX_BATCH_RECEIPTS`).
    #[arg(long, env = "ADESCROW_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// The longest a receipt waits for its batch.
    #[arg(long, env = "ADESCROW_BATCH_AGE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub batch_age: Duration,
    /// How often the batcher looks for work.
    #[arg(long, env = "ADESCROW_BATCH_TICK", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub batch_tick: Duration,
    /// How long one call to the witness may take.
    #[arg(long, env = "ADESCROW_WITNESS_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub witness_timeout: Duration,
    /// How long a batch waits for its witness before it goes unwitnessed.
    #[arg(long, env = "ADESCROW_WITNESS_PATIENCE", default_value = "1m", value_parser = humantime::parse_duration)]
    pub witness_patience: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct WitnessArgs {
    /// The witness node's registered signing key (hex).
    #[arg(long, env = "ADESCROW_WITNESS_KEY", hide_env_values = true)]
    pub witness_key: alloy::signers::local::PrivateKeySigner,
    #[arg(long, env = "ADESCROW_WITNESS_LISTEN", default_value = "127.0.0.1:8091")]
    pub listen: SocketAddr,
    /// The witness's SQLite store.
    #[arg(long, env = "ADESCROW_WITNESS_STORE", default_value = "adescrow-witness.sqlite")]
    pub store: std::path::PathBuf,
    #[command(flatten)]
    pub domain: SigningDomainArgs,
    /// How far a receipt's time may be from when the witness saw its beacon.
    #[arg(long, env = "ADESCROW_WITNESS_TOLERANCE", default_value = "1m", value_parser = humantime::parse_duration)]
    pub tolerance: Duration,
    /// How long observations are kept after their ticket expired.
    #[arg(long, env = "ADESCROW_WITNESS_RETENTION", default_value = "1d", value_parser = humantime::parse_duration)]
    pub retention: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "ADESCROW_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` env-filter syntax, e.g. `info,adescrow=debug`.
    #[arg(long, env = "ADESCROW_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Most connections the pool opens.
    #[arg(long, env = "ADESCROW_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Apply pending migrations before serving.
    #[arg(long, env = "ADESCROW_MIGRATE")]
    pub migrate: bool,
    /// Address the API listens on.
    #[arg(long, env = "ADESCROW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Also run the indexer in this process.
    #[arg(long, env = "ADESCROW_WITH_INDEXER")]
    pub with_indexer: bool,
    /// How often the campaign scheduler runs (one process at a time holds its lock).
    #[arg(long, env = "ADESCROW_SCHEDULER_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub scheduler_interval: Duration,
    /// How often the programs run (referral bonuses; commission accrual, release and
    /// clawback); well below the epoch interval, so commissions accrue before epochs pay the
    /// platform its share.
    #[arg(long, env = "ADESCROW_PROGRAMS_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub programs_interval: Duration,
    /// /readyz fails for a background role that has not finished a step for this long (or
    /// twice its own interval, if longer).
    #[arg(long, env = "ADESCROW_ROLE_STALL_AFTER", default_value = "5m", value_parser = humantime::parse_duration)]
    pub role_stall_after: Duration,
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Also run the settlement relayer in this process.
    #[arg(long, env = "ADESCROW_WITH_RELAYER")]
    pub with_relayer: bool,
    #[command(flatten)]
    pub relayer: RelayerArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RelayerCommandArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Apply pending migrations before relaying.
    #[arg(long, env = "ADESCROW_MIGRATE")]
    pub migrate: bool,
    /// JSON-RPC URLs of the chain (comma separated); later ones take over when one fails.
    #[arg(
        long,
        env = "ADESCROW_RPC_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8545"
    )]
    pub rpc_url: Vec<Url>,
    /// The chain id the RPC and the deployment file must both have.
    #[arg(long, env = "ADESCROW_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,
    /// Deployment file written by `adescrow deploy`.
    #[arg(long, env = "ADESCROW_DEPLOYMENT", default_value = "deployments/local.json")]
    pub deployment: std::path::PathBuf,
    #[command(flatten)]
    pub relayer: RelayerArgs,
    /// Serve `/metrics` on this address (none by default).
    #[arg(long, env = "ADESCROW_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// How the relayer signs, settles and sends (shared by `relayer` and `serve --with-relayer`).
#[derive(Debug, Clone, Args)]
pub struct RelayerArgs {
    /// Private key (hex) of the settler account the relayer signs with.
    #[arg(long, env = "ADESCROW_RELAYER_KEY", hide_env_values = true)]
    pub relayer_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// Or an encrypted JSON keystore file holding that key.
    #[arg(long, env = "ADESCROW_RELAYER_KEYSTORE", conflicts_with = "relayer_key")]
    pub relayer_keystore: Option<std::path::PathBuf>,
    /// The keystore's password.
    #[arg(long, env = "ADESCROW_RELAYER_KEYSTORE_PASSWORD", hide_env_values = true)]
    pub relayer_keystore_password: Option<String>,
    /// Nothing owed waits longer than this for a settlement epoch.
    #[arg(long, env = "ADESCROW_EPOCH_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub epoch_interval: Duration,
    /// An epoch closes early once payees are owed this much (token base units).
    #[arg(long, env = "ADESCROW_EPOCH_OWED_THRESHOLD", default_value_t = 1_000_000_000_000)]
    pub epoch_owed_threshold: u128,
    /// Blocks a transaction must be buried under (its own included) before it counts.
    #[arg(long, env = "ADESCROW_CONFIRMATIONS", default_value_t = 3)]
    pub confirmations: u64,
    /// A transaction not mined this long is replaced with higher fees.
    #[arg(long, env = "ADESCROW_REPLACE_AFTER", default_value = "1m", value_parser = humantime::parse_duration)]
    pub replace_after: Duration,
    /// The highest max fee per gas (wei) the relayer offers; reaching it raises an alert.
    #[arg(long, env = "ADESCROW_MAX_FEE_PER_GAS", default_value_t = 500_000_000_000)]
    pub max_fee_per_gas: u128,
    /// How often the relayer looks for work.
    #[arg(long, env = "ADESCROW_RELAYER_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub relayer_poll: Duration,
    /// Private key (hex) of the platform's treasury wallet, which opens and tops up program
    /// budgets; without it no treasury role runs.
    #[arg(long, env = "ADESCROW_TREASURY_KEY", hide_env_values = true)]
    pub treasury_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// Below this balance (wei) the relayer key is reported as running low.
    #[arg(
        long,
        env = "ADESCROW_RELAYER_LOW_BALANCE",
        default_value_t = 100_000_000_000_000_000
    )]
    pub relayer_low_balance: u128,
}

#[derive(Debug, Clone, Args)]
pub struct IndexerArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Apply pending migrations before indexing.
    #[arg(long, env = "ADESCROW_MIGRATE")]
    pub migrate: bool,
    /// JSON-RPC URLs of the chain (comma separated); later ones take over when one fails.
    #[arg(
        long,
        env = "ADESCROW_RPC_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8545"
    )]
    pub rpc_url: Vec<Url>,
    /// The chain id the RPC and the deployment file must both have.
    #[arg(long, env = "ADESCROW_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Serve `/metrics` on this address (none by default).
    #[arg(long, env = "ADESCROW_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// How the indexer follows the chain (shared by `indexer` and `serve --with-indexer`).
#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// Deployment file written by `adescrow deploy`: contract addresses and start blocks.
    #[arg(long, env = "ADESCROW_DEPLOYMENT", default_value = "deployments/local.json")]
    pub deployment: std::path::PathBuf,
    /// Blocks this far below the head count as final.
    #[arg(long, env = "ADESCROW_FINALITY_DEPTH", default_value_t = 12)]
    pub finality_depth: u64,
    /// Widest eth_getLogs range during backfill.
    #[arg(long, env = "ADESCROW_MAX_LOG_RANGE", default_value_t = 10_000)]
    pub max_log_range: u64,
    /// Recent blocks kept to find the common ancestor of a reorg.
    #[arg(long, env = "ADESCROW_REORG_WINDOW", default_value_t = 256)]
    pub reorg_window: u64,
    /// How often to poll for a new head once caught up.
    #[arg(long, env = "ADESCROW_POLL_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// Timeout of each RPC call.
    #[arg(long, env = "ADESCROW_RPC_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub rpc_timeout: Duration,
}

/// Settings of the HTTP API itself, separate from how it is served so tests can build them.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Public base URL of the API. Sign-in messages must name its host as their domain and
    /// a URI on it.
    #[arg(long, env = "ADESCROW_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: Url,
    /// JSON-RPC URL of the chain the contracts live on (checked by /readyz).
    #[arg(long, env = "ADESCROW_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: Url,
    /// Chain id that sign-in messages and signatures must name.
    #[arg(long, env = "ADESCROW_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,
    /// Secret that signs session tokens (HS256); at least 32 bytes.
    #[arg(long, env = "ADESCROW_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// Lifetime of a session (access) token.
    #[arg(long, env = "ADESCROW_SESSION_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,
    /// Lifetime of a refresh token.
    #[arg(long, env = "ADESCROW_REFRESH_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub refresh_ttl: Duration,
    /// How long a sign-in nonce stays usable.
    #[arg(long, env = "ADESCROW_NONCE_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub nonce_ttl: Duration,
    /// Most unused, unexpired sign-in nonces one client network (an IPv4 address or an IPv6
    /// /64) may hold; each nonce is a row anyone can make the API write.
    #[arg(long, env = "ADESCROW_NONCES_PER_CLIENT", default_value = "32")]
    pub nonces_per_client: std::num::NonZeroU32,
    /// Wallet addresses that receive the admin role when they sign in (comma separated).
    #[arg(long, env = "ADESCROW_ADMIN_ADDRESSES", value_delimiter = ',')]
    pub admin_addresses: Vec<Address>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ADESCROW_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Time after which a request is answered with 503.
    #[arg(long, env = "ADESCROW_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// How long an `Idempotency-Key` is remembered after its first use; sent again later,
    /// it is a new request. Must exceed the request timeout.
    #[arg(long, env = "ADESCROW_IDEMPOTENCY_KEY_LIFETIME", default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_key_lifetime: Duration,
    /// Origins allowed by CORS (comma separated); empty allows none.
    #[arg(long, env = "ADESCROW_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Sustained requests per second allowed per client (API key, session or IP).
    #[arg(long, env = "ADESCROW_RATE_LIMIT_PER_SECOND", default_value_t = 50)]
    pub rate_limit_per_second: u32,
    /// Requests a client may burst above the sustained rate.
    #[arg(long, env = "ADESCROW_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Secret that MACs decision tickets; at least 32 bytes. Every API process must share it.
    #[arg(long, env = "ADESCROW_TICKET_SECRET", hide_env_values = true)]
    pub ticket_secret: String,
    /// How long a decision ticket stays billable.
    #[arg(long, env = "ADESCROW_TICKET_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub ticket_ttl: Duration,
    /// Lifetime of a node session token.
    #[arg(long, env = "ADESCROW_NODE_SESSION_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub node_session_ttl: Duration,
    /// The serving index is rebuilt on every change and at least this often (to pick up spend).
    #[arg(long, env = "ADESCROW_SERVING_REFRESH", default_value = "5s", value_parser = humantime::parse_duration)]
    pub serving_refresh: Duration,
    /// The escrow whose deployment receipt batches are signed for (their EIP-712 domain).
    /// `serve` reads it from the deployment file when not given.
    #[arg(long, env = "ADESCROW_ESCROW_ADDRESS")]
    pub escrow_address: Option<Address>,
    /// The consent registry gasless consent is signed for. `serve` reads it from the
    /// deployment file when not given.
    #[arg(long, env = "ADESCROW_CONSENT_ADDRESS")]
    pub consent_address: Option<Address>,
    /// The treasury wallet program budgets are opened by. `serve` takes it from
    /// ADESCROW_TREASURY_KEY when that is given.
    #[arg(long, env = "ADESCROW_TREASURY_ADDRESS")]
    pub treasury_address: Option<Address>,
    /// The escrow's grace period in seconds, from the deployment file (`serve` reads it).
    #[arg(skip)]
    pub grace_period: Option<u64>,
    /// The built wallet pages (`scripts/pages build`), served under `/app`.
    #[arg(long, env = "ADESCROW_WEB_DIR", default_value = "web/app/dist")]
    pub web_dir: std::path::PathBuf,
    /// A block explorer's URL for a transaction, without the hash (`https://etherscan.io/tx/`):
    /// the pages link transactions there.
    #[arg(long, env = "ADESCROW_EXPLORER_TX_URL")]
    pub explorer_tx_url: Option<String>,
    /// Wallet that receives the platform's share of every billed event.
    #[arg(long, env = "ADESCROW_PLATFORM_ADDRESS")]
    pub platform_address: Address,
    /// Witnessed events: hoster, platform and witness shares in basis points (sum 10000).
    #[arg(
        long,
        env = "ADESCROW_SPLIT_WITNESSED",
        value_delimiter = ',',
        default_value = "9000,900,100"
    )]
    pub split_witnessed: Vec<u32>,
    /// Unwitnessed events: hoster and platform shares in basis points (sum 10000).
    #[arg(
        long,
        env = "ADESCROW_SPLIT_UNWITNESSED",
        value_delimiter = ',',
        default_value = "5000,5000"
    )]
    pub split_unwitnessed: Vec<u32>,
    /// Viewer reward per event type (impression, click, view, acquisition), in basis points
    /// of the price, paid from the platform's share to signed-in viewers holding consent.
    #[arg(
        long,
        env = "ADESCROW_VIEWER_REWARD_BPS",
        value_delimiter = ',',
        default_value = "0,500,0,500"
    )]
    pub viewer_reward_bps: Vec<u32>,
    /// Most receipts in one batch.
    #[arg(long, env = "ADESCROW_MAX_BATCH_RECEIPTS", default_value_t = 1000)]
    pub max_batch_receipts: usize,
    /// The IANA zones leaderboards are kept in (days, ISO weeks, months); UTC when none.
    #[arg(long, env = "ADESCROW_LEADERBOARD_ZONES", value_delimiter = ',')]
    pub leaderboard_zones: Vec<String>,
    /// How stale a leaderboard's ranking in memory may get before it is refreshed.
    #[arg(long, env = "ADESCROW_LEADERBOARD_REFRESH", default_value = "10s", value_parser = humantime::parse_duration)]
    pub leaderboard_refresh: Duration,
    /// /readyz fails when the indexer is this many blocks behind the head and has not
    /// moved for a minute.
    #[arg(long, env = "ADESCROW_INDEXER_MAX_LAG", default_value_t = 64)]
    pub indexer_max_lag: u64,
    /// Serve `/metrics` on this address (a private one) and not on the API's.
    #[arg(long, env = "ADESCROW_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub market: MarketArgs,
    #[command(flatten)]
    pub growth: GrowthArgs,
}

/// Referrals and affiliates: the terms fixed by configuration (the referral rules that
/// change are versioned in the database and set by admins).
#[derive(Debug, Clone, Args)]
pub struct GrowthArgs {
    /// How long a referral link works.
    #[arg(long = "referral-link-ttl", env = "ADESCROW_REFERRAL_LINK_TTL", default_value = "30d",
          value_parser = humantime::parse_duration)]
    pub referral_link_ttl: Duration,
    /// A new affiliate's commission, in basis points of the platform's share.
    #[arg(
        long = "affiliate-rate-bps",
        env = "ADESCROW_AFFILIATE_RATE_BPS",
        default_value_t = 2000
    )]
    pub affiliate_rate_bps: u32,
    /// The highest commission rate an admin may set (at most 10000).
    #[arg(
        long = "affiliate-max-rate-bps",
        env = "ADESCROW_AFFILIATE_MAX_RATE_BPS",
        default_value_t = 5000
    )]
    pub affiliate_max_rate_bps: u32,
    /// Commissions accrue for this many calendar months from an advertiser's attribution.
    #[arg(long = "affiliate-months", env = "ADESCROW_AFFILIATE_MONTHS", default_value_t = 3)]
    pub affiliate_months: u8,
    /// How long each commission is held at least (it also waits for its spend to settle).
    #[arg(long = "affiliate-hold", env = "ADESCROW_AFFILIATE_HOLD", default_value = "30d",
          value_parser = humantime::parse_duration)]
    pub affiliate_hold: Duration,
    /// Minimum payouts per token, as `TOKEN=AMOUNT` pairs separated by commas: commissions
    /// are released once an affiliate's due ones reach it (1 base unit for other tokens).
    #[arg(long = "affiliate-min-payout", env = "ADESCROW_AFFILIATE_MIN_PAYOUT", value_delimiter = ',',
          value_parser = parse_min_payout)]
    pub affiliate_min_payout: Vec<(Address, crate::money::Amount)>,
}

fn parse_min_payout(value: &str) -> Result<(Address, crate::money::Amount), String> {
    let (token, amount) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not TOKEN=AMOUNT"))?;
    let token: Address = token.trim().parse().map_err(|e| format!("{token:?}: {e}"))?;
    let amount = amount.trim().parse().map_err(|e| format!("{amount:?}: {e}"))?;
    Ok((token, amount))
}

/// The marketplace: its secret, where files are kept, and its terms.
#[derive(Debug, Clone, Args)]
pub struct MarketArgs {
    /// Secret (at least 32 bytes) that license keys are signed (Ed25519) and download links
    /// tagged (HMAC) under, each with its own key derived from it. Changing it invalidates
    /// every key and link handed out.
    #[arg(long = "market-secret", env = "ADESCROW_MARKET_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Where items' files are kept: a directory, or an object store URL such as
    /// `s3://bucket/prefix` (S3 and S3-compatible stores, configured by `AWS_*` variables).
    #[arg(long = "market-store", env = "ADESCROW_MARKET_STORE", default_value = ".data/market")]
    pub store: String,
    /// The platform's fee on a sale, in basis points, unless an admin set one for the item or
    /// its seller (0 to 5000).
    #[arg(long = "market-fee-bps", env = "ADESCROW_MARKET_FEE_BPS", default_value_t = 1500)]
    pub fee_bps: u32,
    /// How long after an order a buyer may be refunded; the order's escrow ends then.
    #[arg(long = "market-refund-window", env = "ADESCROW_MARKET_REFUND_WINDOW", default_value = "14d",
          value_parser = humantime::parse_duration)]
    pub refund_window: Duration,
    /// How long after an order its funding may arrive; later funding is refused.
    #[arg(long = "market-pay-within", env = "ADESCROW_MARKET_PAY_WITHIN", default_value = "1h",
          value_parser = humantime::parse_duration)]
    pub pay_within: Duration,
    /// How long after payment an order's files may be downloaded.
    #[arg(long = "market-download-entitlement", env = "ADESCROW_MARKET_DOWNLOAD_ENTITLEMENT", default_value = "30d",
          value_parser = humantime::parse_duration)]
    pub download_entitlement: Duration,
    /// How long one download link works.
    #[arg(long = "market-link-ttl", env = "ADESCROW_MARKET_LINK_TTL", default_value = "10m",
          value_parser = humantime::parse_duration)]
    pub link_ttl: Duration,
    /// The largest file an item may have, in bytes.
    #[arg(long = "market-max-file-size", env = "ADESCROW_MARKET_MAX_FILE_SIZE", default_value_t = 50 * 1024 * 1024)]
    pub max_file_size: usize,
}

/// `adescrow demo`: where the devnet is and who acts in it. Every key defaults to one of
/// anvil's public development accounts, so none of them is worth anything: devnet only.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Base URL of the devnet's API (its public URL).
    #[arg(long, env = "ADESCROW_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: Url,
    /// JSON-RPC URL of the devnet's chain.
    #[arg(long, env = "ADESCROW_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: Url,
    /// Deployment file of the devnet (contract addresses and the test token).
    #[arg(long, env = "ADESCROW_DEPLOYMENT", default_value = ".devnet/deployment.json")]
    pub deployment: std::path::PathBuf,
    /// Advertiser's wallet key (default: anvil account 3).
    #[arg(long, env = "ADESCROW_DEMO_ADVERTISER_KEY", hide_env_values = true)]
    pub advertiser_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// Hoster's wallet key, owner of both hoster nodes (default: anvil account 4).
    #[arg(long, env = "ADESCROW_DEMO_HOSTER_KEY", hide_env_values = true)]
    pub hoster_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// The two hoster nodes' signing keys, comma separated (default: anvil accounts 5 and 6).
    #[arg(
        long,
        env = "ADESCROW_DEMO_HOSTER_NODE_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub hoster_node_keys: Vec<alloy::signers::local::PrivateKeySigner>,
    /// Witness's wallet key, a second operator (default: anvil account 7).
    #[arg(long, env = "ADESCROW_DEMO_WITNESS_KEY", hide_env_values = true)]
    pub witness_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// Witness node's signing key (default: anvil account 8).
    #[arg(long, env = "ADESCROW_DEMO_WITNESS_NODE_KEY", hide_env_values = true)]
    pub witness_node_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// Viewer's wallet key (default: anvil account 9).
    #[arg(long, env = "ADESCROW_DEMO_VIEWER_KEY", hide_env_values = true)]
    pub viewer_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// The devnet operator's key: an admin of the API and its treasury (default: anvil
    /// account 0, the deployer, as `scripts/dev` configures it).
    #[arg(long, env = "ADESCROW_DEMO_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// The API's split of witnessed events (hoster, platform, witness basis points), which
    /// the demo's expected earnings follow.
    #[arg(
        long,
        env = "ADESCROW_SPLIT_WITNESSED",
        value_delimiter = ',',
        default_value = "9000,900,100"
    )]
    pub split_witnessed: Vec<u32>,
    /// How long any one wait (indexer, scheduler, relayer, epoch) may take before the demo fails.
    #[arg(long, env = "ADESCROW_DEMO_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
    /// Grace periods up to this long are waited out; longer ones are skipped by advancing
    /// anvil's clock (anvil only).
    #[arg(long, env = "ADESCROW_DEMO_MAX_GRACE_WAIT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub max_grace_wait: Duration,
    /// Print the demo accounts (addresses and private keys) and exit.
    #[arg(long)]
    pub accounts: bool,
}

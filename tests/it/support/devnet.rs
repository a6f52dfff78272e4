//! A devnet like `scripts/dev`'s, started by a test: anvil, the contracts and the test token
//! deployed by `adescrow deploy`'s code, and `adescrow serve`'s own code running the API with
//! the indexer, the relayer and the scheduler on a random port over the test's database.

use std::path::PathBuf;
use std::time::Duration;

use adescrow::demo::{self, DemoAccounts, DemoConfig, Economics, Outcome};
use adescrow::platform::config::{ApiArgs, DatabaseArgs, FollowArgs, RelayerArgs, ServeArgs};
use adescrow::platform::deploy::{DeployArgs, Deployment, deploy};
use alloy::node_bindings::AnvilInstance;
use alloy::signers::local::PrivateKeySigner;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{config, spawn_anvil};

/// A devnet like `scripts/dev`'s, with shorter intervals so that the test takes seconds.
pub struct Devnet {
    pub anvil: AnvilInstance,
    pub deployment: Deployment,
    pub api_url: url::Url,
    stop: watch::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    file: PathBuf,
}

impl Devnet {
    pub async fn start(pool: PgPool, grace_period: Duration) -> Devnet {
        Self::start_with(pool, grace_period, |_| {}).await
    }

    /// A devnet whose API settings `adjust` changes last.
    pub async fn start_with(pool: PgPool, grace_period: Duration, adjust: impl FnOnce(&mut ApiArgs)) -> Devnet {
        let anvil = spawn_anvil();
        let operator = PrivateKeySigner::from(anvil.keys()[0].clone());
        let file = std::env::temp_dir().join(format!("adescrow-demo-{}-{}.json", std::process::id(), anvil.port()));
        let deployment = deploy(&DeployArgs {
            rpc_url: anvil.endpoint_url(),
            deployer_key: operator.clone(),
            admin: None,
            settler: Some(anvil.addresses()[1]),
            guardian: Some(anvil.addresses()[2]),
            grace_period,
            challenge_window: Duration::ZERO,
            test_token: true,
            out: file.clone(),
        })
        .await
        .unwrap();
        deployment.save(&file).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url: url::Url = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
        let mut api = config();
        api.public_url = api_url.clone();
        api.rpc_url = anvil.endpoint_url();
        // From the deployment file, as `serve` reads them.
        api.escrow_address = None;
        api.consent_address = None;
        api.platform_address = operator.address();
        // As on `scripts/dev`: the operator is the admin (and the treasury, below).
        api.admin_addresses = vec![operator.address()];
        api.serving_refresh = Duration::from_millis(500);
        // As on `scripts/dev`: the marketplace step waits out its order's refund window.
        api.market.refund_window = Duration::from_secs(3);
        // And the growth step waits out a commission's hold.
        api.growth.affiliate_hold = Duration::from_secs(2);
        adjust(&mut api);
        let args = ServeArgs {
            database: DatabaseArgs {
                database_url: "unused: the test hands over its pool".into(),
                database_max_connections: 16,
            },
            migrate: false,
            listen: listener.local_addr().unwrap(),
            api,
            with_indexer: true,
            scheduler_interval: Duration::from_millis(200),
            programs_interval: Duration::from_millis(200),
            role_stall_after: Duration::from_secs(300),
            follow: FollowArgs {
                deployment: file.clone(),
                finality_depth: 0,
                max_log_range: 10_000,
                reorg_window: 256,
                poll_interval: Duration::from_millis(50),
                rpc_timeout: Duration::from_secs(5),
            },
            with_relayer: true,
            relayer: RelayerArgs {
                relayer_key: Some(PrivateKeySigner::from(anvil.keys()[1].clone())),
                relayer_keystore: None,
                relayer_keystore_password: None,
                epoch_interval: Duration::from_secs(1),
                epoch_owed_threshold: 1_000_000_000_000,
                confirmations: 1,
                replace_after: Duration::from_secs(60),
                max_fee_per_gas: 500_000_000_000,
                relayer_poll: Duration::from_millis(200),
                treasury_key: Some(PrivateKeySigner::from(anvil.keys()[0].clone())),
                relayer_low_balance: 0,
            },
        };
        let (stop, stopped) = watch::channel(());
        let server = tokio::spawn(adescrow::app::server::run(args, pool, listener, move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.changed().await;
            }
        }));
        Devnet {
            anvil,
            deployment,
            api_url,
            stop,
            server,
            file,
        }
    }

    pub fn demo(&self) -> DemoConfig {
        self.demo_with(Economics::default())
    }

    pub fn demo_with(&self, economics: Economics) -> DemoConfig {
        DemoConfig {
            api_url: self.api_url.clone(),
            rpc_url: self.anvil.endpoint_url(),
            deployment: self.deployment.clone(),
            accounts: DemoAccounts::anvil(),
            economics,
            wait_timeout: Duration::from_secs(60),
            max_grace_wait: Duration::from_secs(30),
        }
    }

    /// Runs the demo; on failure, panics with its whole output.
    pub async fn run_demo(&self) -> (Outcome, String) {
        let mut out = Vec::new();
        let outcome = demo::run(&self.demo(), &mut out).await;
        let printed = String::from_utf8_lossy(&out).into_owned();
        match outcome {
            Ok(outcome) => (outcome, printed),
            Err(error) => panic!("{error}\n\n--- demo output ---\n{printed}"),
        }
    }

    /// Stops every role the way a shutdown signal does, and checks that they all stopped.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("serve stops after the signal")
            .unwrap()
            .unwrap();
        std::fs::remove_file(&self.file).ok();
    }
}

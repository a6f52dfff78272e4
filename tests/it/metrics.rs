//! `/metrics`: every metric the README lists is on the first scrape, and a metrics address
//! of its own takes `/metrics` off the API's.

use std::time::Duration;

use adescrow::platform::config::{Cli, Command};
use adescrow::platform::db::MIGRATOR;
use clap::Parser;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::support::*;

/// The metric names the README's Operations section lists, without their labels.
fn readme_metrics() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("- **Metrics.**").expect("the README has a Metrics entry");
    let section = &readme[start..];
    let section = &section[..section[2..].find("\n- **").map_or(section.len(), |end| end + 2)];
    let names: Vec<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|code| code.split('{').next().unwrap().to_owned())
        .filter(|name| {
            ["adescrow_", "indexer_", "relayer_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .collect();
    assert!(names.len() > 20, "the README lists the metrics: {names:?}");
    names
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_fresh_server_lists_every_metric_the_readme_names(pool: PgPool) {
    let app = TestApp::new(pool);
    let scrape = app.get("/metrics", None).await;
    assert!(scrape.status.is_success());
    let missing: Vec<_> = readme_metrics()
        .into_iter()
        .filter(|name| {
            !scrape.text.lines().any(|line| {
                line.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
        })
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{}", scrape.text);
    assert!(
        scrape.text.contains("# HELP relayer_alerts_total "),
        "metrics are described: {}",
        scrape.text
    );
    assert!(
        scrape.text.contains("\nrelayer_balance_wei NaN"),
        "gauges not yet measured read NaN, not zero"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_metrics_address_takes_metrics_off_the_api(pool: PgPool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cli = Cli::try_parse_from([
        "adescrow",
        "serve",
        "--database-url=unused: the test hands over its pool",
        "--jwt-secret=test-secret-test-secret-test-secret!",
        "--ticket-secret=ticket-secret-ticket-secret-ticket!",
        "--market-secret=market-secret-market-secret-market-secret",
        &format!(
            "--market-store={}",
            std::env::temp_dir().join("adescrow-test-market").display()
        ),
        "--platform-address=0xfafafafafafafafafafafafafafafafafafafafa",
        "--deployment=/nonexistent/deployment.json",
        &format!("--listen={api}"),
        &format!("--metrics-addr={metrics}"),
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("parsed as serve")
    };
    let (stop, stopped) = watch::channel(());
    let server = tokio::spawn(adescrow::app::server::run(*args, pool, listener, move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    }));

    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        if let Ok(reply) = client.get(format!("http://{metrics}/metrics")).send().await {
            break reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "metrics never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await.unwrap();
    for role in ["scheduler", "serving-refresh", "housekeeping"] {
        assert!(
            text.contains(&format!("adescrow_role_restarts_total{{role=\"{role}\"}} 0")),
            "{role} in {text}"
        );
    }
    let on_api = client.get(format!("http://{api}/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), 404, "not on the API's address");
    let health = client.get(format!("http://{api}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        client.get(format!("http://{metrics}/metrics")).send().await.is_err(),
        "the metrics server stops with the rest"
    );
}

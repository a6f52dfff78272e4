//! How `serve` serves the pages, over HTTP without a browser: the redirects, the CSP, the
//! deployment the pages read, gzipped and immutable assets, and names that are not pages.

use adescrow::platform::db::MIGRATOR;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use sqlx::PgPool;

use super::built_pages;
use crate::support::{CHAIN_ID, TestApp};

fn app(pool: PgPool) -> TestApp {
    TestApp::with(pool, |api| {
        api.web_dir = built_pages().to_path_buf();
        api.grace_period = Some(3600);
        api.explorer_tx_url = Some("https://explorer.example/tx/".into());
    })
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn pages_are_served_under_their_csp_with_the_deployment_they_talk_to(pool: PgPool) {
    let app = app(pool);
    let config = app.get("/app/config.json", None).await;
    assert_eq!(config.status, StatusCode::OK);
    let escrow = app.state.config.escrow_address.unwrap();
    let consent = app.state.config.consent_address.unwrap();
    assert_eq!(
        config.body,
        json!({ "chainId": CHAIN_ID, "escrow": escrow, "consent": consent, "gracePeriod": 3600,
                "explorerTx": "https://explorer.example/tx/" })
    );

    for (from, to) in [("/app", "/app/"), ("/app/hoster", "/app/hoster/")] {
        let reply = app.get(from, None).await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "{from}");
        assert_eq!(reply.headers[header::LOCATION], to);
    }
    for page in [
        "/app/",
        "/app/advertiser/",
        "/app/hoster/",
        "/app/viewer/",
        "/app/programs/",
    ] {
        let reply = app.get(page, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{page}");
        assert!(
            reply.text.contains("<script type=\"module\" src=\"/app/assets/"),
            "{page}"
        );
        let csp = reply.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self';") && csp.contains("connect-src 'self';"),
            "{csp}"
        );
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-cache");
    }

    // The home page's script, as a browser that takes gzip gets it, and one that does not.
    let home = app.get("/app/", None).await.text;
    let script = home
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let gzipped = app
        .send(
            Request::get(&script)
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(gzipped.status, StatusCode::OK);
    assert_eq!(gzipped.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        gzipped.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let plain = app.get(&script, None).await;
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    let file = built_pages().join(script.trim_start_matches("/app/"));
    assert_eq!(plain.text, std::fs::read_to_string(file).unwrap());
}

/// Only lower-case page names reach the file system or a `Location` header; anything else,
/// however encoded, is a plain 404.
#[sqlx::test(migrator = "MIGRATOR")]
async fn names_that_are_not_pages_are_not_found(pool: PgPool) {
    let app = app(pool);
    for path in [
        "/app/nothing/",
        "/app/assets/",
        "/app/Advertiser/",
        "/app/..%2F..%2FCargo.toml/",
        "/app/x%0D%0ALocation:%20https:%2F%2Fevil.example",
        "/app/%2F%2Fevil.example",
        "/app/assets/missing.js",
        "/app/assets/../../Cargo.toml",
    ] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {}", reply.text);
        assert!(reply.headers.get(header::LOCATION).is_none(), "{path}");
    }
}

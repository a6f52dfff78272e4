//! A reseller's pages on its own domain: the frame takes the name, colours and support
//! contact the API serves for the host name.

use adescrow::platform::db::MIGRATOR;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use super::Pages;

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_pages_on_a_resellers_proven_domain_carry_its_branding(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    let agency = pages.api_token(7).await;
    let (status, applied) = pages
        .api(
            Method::POST,
            "/v1/resellers/me",
            Some(&agency),
            Some(json!({ "name": "Northwind Ads", "application": "We run campaigns for bakeries." })),
        )
        .await;
    assert_eq!(status, 201, "{applied}");
    let branding =
        json!({ "primaryColour": "#5a2d82", "accentColour": "#b8860b", "supportContact": "help@northwind.test" });
    let (status, body) = pages
        .api(Method::PUT, "/v1/resellers/me/branding", Some(&agency), Some(branding))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = pages
        .api(
            Method::PUT,
            "/v1/resellers/me/domain",
            Some(&agency),
            Some(json!({ "domain": "ads.northwind.test" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The TXT proof itself is tested with a resolver double (tests/it/resellers.rs); the
    // devnet resolves with the system's DNS, where .test names have no records.
    sqlx::query("UPDATE resellers SET domain_verified_at = now()")
        .execute(&pool)
        .await
        .unwrap();

    let port = pages.devnet.api_url.port().unwrap();
    let url = format!("http://ads.northwind.test:{port}/app/");
    pages.browser.open(&url).await;
    assert_eq!(pages.browser.text("header .brand").await, "Northwind Ads");
    assert_eq!(
        pages.browser.eval("document.title").await,
        json!("Your wallet · Northwind Ads")
    );
    let primary = pages
        .browser
        .eval("getComputedStyle(document.documentElement).getPropertyValue('--primary').trim()")
        .await;
    assert_eq!(primary, json!("#5a2d82"));
    pages.browser.wait_in("footer", "help@northwind.test").await;
    pages.browser.screenshot("home-reseller-branding").await;

    // The platform's own host name has no branding.
    pages.open("", "home-platform").await;
    assert_eq!(pages.browser.text("header .brand").await, "adescrow");
    pages.browser.close().await;
    pages.devnet.stop().await;
}

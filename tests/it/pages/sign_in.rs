//! Connecting a wallet and signing in with SIWE from the pages.

use std::time::Duration;

use adescrow::platform::db::MIGRATOR;
use sqlx::PgPool;

use super::Pages;

/// A new user connects the test wallet (found through EIP-6963), signs in, takes a role on
/// the home page and signs out; the API saw each step.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_wallet_signs_in_takes_a_role_and_signs_out(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    let account = pages.sign_in(5).await;
    let shown = pages.browser.text("#signed-in-as").await;
    assert_eq!(
        shown,
        format!(
            "{}…{}",
            &account.to_checksum(None)[..6],
            &account.to_checksum(None)[38..]
        )
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "the first sign-in created the user");
    let calls = pages.browser.wallet_calls().await;
    assert!(calls.iter().any(|(m, _)| m == "personal_sign"), "{calls:?}");

    pages.browser.click_button("Become a hoster").await;
    pages.browser.wait_for("You are now a hoster.").await;
    let roles: Vec<String> = sqlx::query_scalar("SELECT role::text FROM user_roles ORDER BY role")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(roles.contains(&"hoster".to_owned()), "{roles:?}");
    pages.browser.screenshot("home-signed-in").await;

    // A reload keeps the session (and the wallet the user chose).
    pages.open("", "home-reloaded").await;
    pages.browser.wait_for("Signed in as").await;

    pages.browser.click_button("Sign out").await;
    pages.browser.wait_for("Signed out.").await;
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_sessions WHERE revoked_at IS NULL AND rotated_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(live, 0, "signing out ended the session on the server");
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// Access tokens last minutes; the page refreshes one that expired with the refresh token,
/// without asking the wallet to sign again, and a refresh token the server no longer honours
/// signs the page out rather than leaving it broken.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_expired_access_token_is_refreshed_without_a_new_signature(pool: PgPool) {
    let mut pages = Pages::start_adjusted(pool.clone(), Duration::from_secs(86_400), |api| {
        api.session_ttl = Duration::from_secs(1);
    })
    .await;
    pages.sign_in(6).await;
    let signatures = |calls: &[(String, bool)]| calls.iter().filter(|(m, _)| m == "personal_sign").count();
    assert_eq!(signatures(&pages.browser.wallet_calls().await), 1);
    // Past the token's life and the server's 5 s of leeway for clocks.
    tokio::time::sleep(Duration::from_secs(7)).await;

    // The access token has expired: taking a role answers 401 once, then goes through.
    pages.browser.click_button("Become a buyer").await;
    pages.browser.wait_for("You are now a buyer.").await;
    assert_eq!(
        signatures(&pages.browser.wallet_calls().await),
        1,
        "no second signature"
    );
    let rotated: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_sessions WHERE rotated_at IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rotated, 1, "the refresh token was used once");

    // Every session of this sign-in ended elsewhere: the page ends up signed out, not stuck.
    sqlx::query("UPDATE refresh_sessions SET revoked_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    pages.open("", "home-session-ended").await;
    pages.browser.wait_for("Sign in").await;
    assert!(
        !pages
            .browser
            .eval("!!document.querySelector('#signed-in-as')")
            .await
            .as_bool()
            .unwrap(),
        "signed out"
    );
    pages.browser.close().await;
    pages.devnet.stop().await;
}

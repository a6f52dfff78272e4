//! The viewer page: the pseudonymous viewer id, consent granted and revoked without gas
//! (one EIP-712 signature each, carried on chain by the relayer), and a wallet on the wrong
//! chain offered the switch.

use adescrow::billing::rewards_scope;
use adescrow::contracts::{ConsentRegistry, TestToken};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::Pages;

/// The viewer's wallet: an anvil account neither the operator, the settler nor the guardian.
const VIEWER: usize = 6;
/// The demo's viewer (`DemoAccounts::anvil`).
const DEMO_VIEWER: usize = 9;

/// Signs the viewer in (every user is a viewer from the first sign-in) and opens the page.
async fn viewer_page(pool: PgPool) -> (Pages, Address) {
    let mut pages = Pages::start(pool).await;
    let user = pages.sign_in(VIEWER).await;
    pages.open("viewer", "viewer-opened").await;
    pages.browser.wait_for("Your viewer id").await;
    pages.browser.wait_for("Grant consent").await;
    (pages, user)
}

fn registry(pages: &Pages) -> ConsentRegistry::ConsentRegistryInstance<impl alloy::providers::Provider + use<>> {
    ConsentRegistry::new(pages.devnet.deployment.consent_registry.address, pages.chain())
}

async fn has_consent(pages: &Pages, user: Address, scope: B256) -> bool {
    registry(pages).hasConsent(user, scope).call().await.unwrap()
}

/// Polls the API's chain mirror until its record of `scope` for `user` is `active`.
async fn mirror_says(pages: &Pages, user: Address, scope: B256, active: bool) -> Value {
    let of_scope = |records: &Value| {
        records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["scope"].as_str().and_then(|s| s.parse::<B256>().ok()) == Some(scope))
            .cloned()
    };
    let records = pages
        .api_until(&format!("/v1/consent/{user}"), None, |records| {
            of_scope(records).is_some_and(|record| record["active"] == json!(active))
        })
        .await;
    of_scope(&records).unwrap()
}

async fn consent_requests(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind::text = 'consent'")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A viewer grants the rewards scope for 30 days and revokes it, each with one signature:
/// the registry on chain follows, the relayer sent both transactions, the viewer's ETH did
/// not move by a single wei, and the API's mirror agrees.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_viewer_grants_and_revokes_consent_without_gas(pool: PgPool) {
    let (mut pages, user) = viewer_page(pool.clone()).await;
    let scope = rewards_scope();
    let eth = pages.eth_balance(user).await;
    assert!(!has_consent(&pages, user, scope).await);
    pages.browser.wait_in("tbody", "Not granted").await;
    pages.browser.screenshot("viewer-before-consent").await;

    pages.browser.select("Scope", &scope.to_string()).await;
    pages.browser.select("Lasts", "30").await;
    pages.browser.click_button("Grant consent").await;
    // Signed and queued: the page polls the request until the relayer's transaction is in.
    pages.browser.wait_in("#consent-status", "pending").await;
    pages.browser.screenshot("viewer-grant-pending").await;
    pages
        .browser
        .wait_in("[role=status]", "Consent to rewards granted until")
        .await;
    assert_eq!(pages.browser.text("#consent-status").await, "confirmed");
    let note = pages.browser.text("#gas-note").await;
    assert!(note.starts_with("No gas was spent"), "{note}");
    pages.browser.screenshot("viewer-granted").await;

    assert!(has_consent(&pages, user, scope).await, "the registry holds the grant");
    let expiry = registry(&pages).consentExpiry(user, scope).call().await.unwrap();
    let thirty_days = now() + 30 * 86_400;
    assert!(
        expiry.abs_diff(thirty_days) < 600,
        "expiry {expiry}, 30 days from now {thirty_days}"
    );
    assert_eq!(pages.eth_balance(user).await, eth, "the grant cost the viewer no gas");
    let shown_tx = pages.browser.text("#consent-tx").await;
    let receipt = pages
        .chain()
        .get_transaction_receipt(shown_tx.parse().unwrap())
        .await
        .unwrap()
        .expect("the page shows a mined transaction");
    assert_ne!(receipt.from, user, "the relayer sent it");
    let record = mirror_says(&pages, user, scope, true).await;
    assert_eq!(record["expiry"], json!(expiry));

    pages.browser.click_button("Revoke rewards").await;
    pages
        .browser
        .wait_in("[role=status]", "Consent to rewards revoked")
        .await;
    assert_eq!(pages.browser.text("#consent-status").await, "confirmed");
    pages.browser.wait_in("tbody", "Not granted").await;
    pages.browser.screenshot("viewer-revoked").await;

    assert!(
        !has_consent(&pages, user, scope).await,
        "the registry dropped the grant"
    );
    assert_eq!(pages.eth_balance(user).await, eth, "neither change cost the viewer gas");
    let record = mirror_says(&pages, user, scope, false).await;
    assert_eq!(record["expiry"], Value::Null);

    let calls = pages.browser.wallet_calls().await;
    let signatures = calls.iter().filter(|(m, _)| m == "eth_signTypedData_v4").count();
    assert_eq!(signatures, 2, "one signature per change: {calls:?}");
    assert!(
        !calls.iter().any(|(m, _)| m == "eth_sendTransaction"),
        "the viewer sent no transaction: {calls:?}"
    );
    assert_eq!(consent_requests(&pool).await, 2);
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// Declining the signature says so and changes nothing: no request for the relayer, nothing
/// on chain, the nonce unused. Granting again then works.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_declined_signature_changes_nothing(pool: PgPool) {
    let (mut pages, user) = viewer_page(pool.clone()).await;
    let scope = rewards_scope();

    pages.browser.reject_next("eth_signTypedData_v4").await;
    pages.browser.click_button("Grant consent").await;
    pages
        .browser
        .wait_in(
            "[role=alert]",
            "You declined the request in your wallet; nothing was signed or sent.",
        )
        .await;
    pages.browser.screenshot("viewer-declined").await;
    assert_eq!(consent_requests(&pool).await, 0, "nothing was queued for the relayer");
    assert!(!has_consent(&pages, user, scope).await);
    assert_eq!(registry(&pages).nonces(user).call().await.unwrap(), U256::ZERO);
    let no_request = pages
        .browser
        .eval("document.getElementById('consent-status') === null")
        .await;
    assert_eq!(no_request, json!(true), "the page shows no request");
    let calls = pages.browser.wallet_calls().await;
    assert!(calls.contains(&("eth_signTypedData_v4".to_owned(), true)), "{calls:?}");

    pages.browser.click_button("Grant consent").await;
    pages
        .browser
        .wait_in("[role=status]", "Consent to rewards granted until")
        .await;
    let alert = pages.browser.text("[role=alert]").await;
    assert_eq!(alert, "", "the retry cleared the alert");
    pages.browser.screenshot("viewer-granted-after-decline").await;
    assert!(has_consent(&pages, user, scope).await);
    assert_eq!(consent_requests(&pool).await, 1);
    assert_eq!(registry(&pages).nonces(user).call().await.unwrap(), U256::from(1));
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// A scope a site asked for by its purpose: an empty one is refused before anything is
/// signed; a named one is granted as `keccak256(bytes(purpose))` and listed by its name.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_viewer_grants_a_scope_named_by_its_purpose(pool: PgPool) {
    let (mut pages, user) = viewer_page(pool.clone()).await;
    pages.browser.select("Scope", "other").await;
    pages.browser.click_button("Grant consent").await;
    pages
        .browser
        .wait_in("[role=alert]", "Purpose or scope: enter a purpose")
        .await;
    let calls = pages.browser.wallet_calls().await;
    assert!(!calls.iter().any(|(m, _)| m == "eth_signTypedData_v4"), "{calls:?}");

    pages.browser.fill("Purpose or scope", "newsletter").await;
    pages.browser.select("Lasts", "365").await;
    pages.browser.click_button("Grant consent").await;
    pages
        .browser
        .wait_in("[role=status]", "Consent to newsletter granted until")
        .await;
    pages.browser.wait_for("Revoke newsletter").await;
    pages.browser.screenshot("viewer-purpose-granted").await;
    let scope = alloy::primitives::keccak256("newsletter");
    assert!(has_consent(&pages, user, scope).await);
    assert!(!has_consent(&pages, user, rewards_scope()).await);
    assert_eq!(consent_requests(&pool).await, 1);
    mirror_says(&pages, user, scope, true).await;
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// The page shows the viewer id the API gives this user, and fits a phone's screen.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_viewer_id_is_the_apis_and_the_page_fits_a_phone(pool: PgPool) {
    let (mut pages, user) = viewer_page(pool.clone()).await;
    let shown = pages.browser.text("#viewer-id").await;
    assert!(shown.starts_with("vw_"), "{shown}");

    // What the API answers this user's session.
    let token = pages.page_token().await;
    let reply = pages
        .api_ok(Method::POST, "/v1/me/viewer-id", Some(&token), Some(json!({})))
        .await;
    assert_eq!(reply["viewerId"], json!(shown));
    let stored: String = sqlx::query_scalar(
        "SELECT v.viewer_id FROM viewer_ids v JOIN users u ON u.id = v.user_id WHERE u.address = $1",
    )
    .bind(user.as_slice())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, shown);
    pages.browser.screenshot("viewer-id").await;

    pages
        .assert_fits_phone("viewer", "viewer-phone", async |browser| {
            browser.wait_for("Your viewer id").await;
            browser.screenshot("viewer-phone").await;
        })
        .await;
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// The demo's viewer held consent while the demo's click was billed, so once the demo's
/// epochs settle it has a reward in the escrow's payout root: the page shows it and claims
/// it with the payouts' calldata, and the tokens arrive in the viewer's wallet.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_viewer_claims_a_settled_reward(pool: PgPool) {
    let mut pages = Pages::start(pool).await;
    pages.devnet.run_demo().await;
    let viewer = pages.devnet.anvil.addresses()[DEMO_VIEWER];
    let path = format!("/v1/payouts/{viewer}");
    let claimable_of = |payouts: &Value| {
        payouts["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["claimable"] != json!("0"))
            .cloned()
    };
    // The viewer's reward becomes claimable.
    let payouts = pages.api_until(&path, None, |p| claimable_of(p).is_some()).await;
    let payout = claimable_of(&payouts).unwrap();
    let claimable: U256 = payout["claimable"].as_str().unwrap().parse().unwrap();
    let token = TestToken::new(payout["token"].as_str().unwrap().parse().unwrap(), pages.chain());
    let before = token.balanceOf(viewer).call().await.unwrap();

    pages.sign_in(DEMO_VIEWER).await;
    pages.open("viewer", "viewer-rewards").await;
    pages.browser.wait_for("Claimable now").await;
    let button = pages
        .browser
        .eval("[...document.querySelectorAll('button')].map((b) => b.textContent.trim()).find((t) => t.startsWith('Claim '))")
        .await;
    let button = button.as_str().expect("the page offers the claim").to_owned();
    pages.browser.click_button(&button).await;
    pages.browser.wait_in("[role=status]", "Claimed").await;
    pages.browser.screenshot("viewer-claimed").await;
    let offered = format!("[...document.querySelectorAll('button')].some((b) => b.textContent.trim() === {button:?})");
    assert_eq!(
        pages.browser.eval(&offered).await,
        json!(false),
        "the claimed amount is not offered again"
    );

    // A later epoch may have grown the reward since it was first claimable: the claim pays
    // everything claimable when the page loaded, which the mirror then counts as claimed.
    let paid = token.balanceOf(viewer).call().await.unwrap() - before;
    assert!(
        paid >= claimable,
        "the claim paid {paid}, less than the {claimable} claimable before"
    );
    let claimed_of = |payouts: &Value| {
        payouts["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token"] == payout["token"])
            .unwrap()["claimed"]
            .clone()
    };
    let payouts = pages.api_until(&path, None, |p| claimed_of(p) != json!("0")).await;
    assert_eq!(
        claimed_of(&payouts),
        json!(paid.to_string()),
        "the API mirrors the claim"
    );
    let calls = pages.browser.wallet_calls().await;
    assert!(calls.contains(&("eth_sendTransaction".to_owned(), false)), "{calls:?}");
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// A wallet on another chain is told so and offered the switch; after it, sign-in works.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_wallet_on_another_chain_is_offered_the_switch(pool: PgPool) {
    let mut pages = Pages::start(pool).await;
    let account = pages.devnet.anvil.addresses()[VIEWER];
    pages
        .browser
        .cmd(json!({ "cmd": "wallet", "rpc": pages.devnet.anvil.endpoint_url(), "account": account, "chainId": 1 }))
        .await;
    pages.open("", "home-wrong-chain-signed-out").await;
    pages.browser.click_button("Connect adescrow test wallet").await;
    pages
        .browser
        .wait_for("Your wallet is on chain 1; adescrow runs on chain 31337.")
        .await;
    pages.browser.screenshot("home-wrong-chain").await;

    pages.browser.click_button("Switch to chain 31337").await;
    pages.browser.click_button("Sign in").await;
    pages.browser.wait_for("Signed in as").await;
    pages.browser.screenshot("home-switched-and-signed-in").await;
    let calls = pages.browser.wallet_calls().await;
    assert!(
        calls.contains(&("wallet_switchEthereumChain".to_owned(), false)),
        "{calls:?}"
    );
    assert!(calls.contains(&("personal_sign".to_owned(), false)), "{calls:?}");
    pages.browser.close().await;
    pages.devnet.stop().await;
}

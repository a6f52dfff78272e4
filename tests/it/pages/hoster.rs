//! The hoster page: claiming settled earnings with one transaction, registering nodes with a
//! proof of possession signed in the page, and a refused claim that changes nothing.
//!
//! Settled earnings come from the demo (`adescrow::demo`) run on the test's devnet: its
//! hoster (anvil account 4) claims what the demo's first steps earned, and its last steps
//! (growth and offers) bill two more batches through the hoster's nodes, which the relayer
//! settles after the demo's claim. That is what the page claims.

use adescrow::accounts::nodes::registration_message;
use adescrow::contracts::TestToken;
use adescrow::demo::report::Step;
use adescrow::demo::{self, DemoAccounts};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;

use super::{Pages, units};
use crate::support::personal_sign;

/// Anvil's account the demo's hoster uses.
const HOSTER: usize = 4;

/// `account`'s payout of `token` as the API shows it.
async fn payout(pages: &Pages, account: Address, token: Address) -> Value {
    let payouts = pages.get(&format!("/v1/payouts/{account}")).await;
    payouts["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"].as_str().unwrap().parse::<Address>().unwrap() == token)
        .cloned()
        .unwrap_or(Value::Null)
}

/// What the mirror says `account` claimed of `token` in all.
async fn claimed(pages: &Pages, account: Address, token: Address) -> u128 {
    let claims = pages.get(&format!("/v1/escrow/claims/{account}")).await;
    claims
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["token"].as_str().unwrap().parse::<Address>().unwrap() == token)
        .map_or(0, |c| c["claimed"].as_str().unwrap().parse().unwrap())
}

/// Runs the demo, then waits until the API offers its hoster everything its nodes earned
/// after the demo's claim, all settled; returns the hoster, the token and what it is owed.
///
/// The demo's steps after the hoster's claim wait on other payees' money too (a sale's
/// refund window, an affiliate's commission); should one of those give up, the batches its
/// steps billed through the hoster's nodes are still there to settle, which is all this
/// needs. A failure up to the hoster's claim fails the test.
async fn hoster_with_settled_earnings(pages: &Pages) -> (Address, Address, u128) {
    let mut out = Vec::new();
    let outcome = demo::run(&pages.devnet.demo(), &mut out).await;
    let printed = String::from_utf8_lossy(&out);
    if let Err(error) = &outcome {
        let at = |step: Step| Step::ALL.iter().position(|s| *s == step);
        assert!(
            at(error.step) > at(Step::Claim),
            "{error}\n\n--- demo output ---\n{printed}"
        );
        eprintln!("the demo stopped after the hoster's claim: {error}");
    }
    let hoster = DemoAccounts::anvil().hoster.address();
    assert_eq!(hoster, pages.devnet.anvil.addresses()[HOSTER]);
    let token = pages.test_token();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let entry = payout(pages, hoster, token).await;
        let owed: u128 = entry["claimable"].as_str().unwrap_or("0").parse().unwrap();
        let settled = entry["pending"] == json!("0") && entry["held"] == json!([]) && entry["inEpoch"].is_null();
        if owed > 0 && settled {
            return (hoster, token, owed);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hoster's later earnings never became claimable: {entry}\n\n--- demo output ---\n{printed}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn balance(pages: &Pages, token: Address, account: Address) -> u128 {
    TestToken::new(token, pages.chain())
        .balanceOf(account)
        .call()
        .await
        .unwrap()
        .to::<u128>()
}

async fn symbol_and_decimals(pages: &Pages, token: Address) -> (String, u8) {
    let erc20 = TestToken::new(token, pages.chain());
    (
        erc20.symbol().call().await.unwrap(),
        erc20.decimals().call().await.unwrap(),
    )
}

fn sends(calls: &[(String, bool)]) -> Vec<bool> {
    calls
        .iter()
        .filter(|(method, _)| method == "eth_sendTransaction")
        .map(|(_, rejected)| *rejected)
        .collect()
}

/// Claims from the page and checks the chain, the page and the API agree on what it paid.
async fn claim_and_check(pages: &mut Pages, hoster: Address, token: Address, owed: u128) {
    let (symbol, decimals) = symbol_and_decimals(pages, token).await;
    let before = balance(pages, token, hoster).await;
    let claimed_before = claimed(pages, hoster, token).await;
    let sent_before = sends(&pages.browser.wallet_calls().await).len();

    pages.browser.click_button(&format!("Claim {symbol}")).await;
    // The status line says what the claim paid once the chain and the mirror have it.
    pages.browser.wait_in("[role=status]", "Claimed ").await;
    pages.browser.screenshot("hoster-claimed").await;

    let after = balance(pages, token, hoster).await;
    assert_eq!(
        after - before,
        owed,
        "the claim paid exactly what the API said was owed"
    );
    let sent = sends(&pages.browser.wallet_calls().await);
    assert_eq!(sent[sent_before..], [false], "one transaction, sent once");
    assert_eq!(
        pages.browser.text("#balance-before").await,
        units(before, decimals, &symbol)
    );
    assert_eq!(
        pages.browser.text("#balance-after").await,
        units(after, decimals, &symbol)
    );

    // The transaction the page sent: the hoster's claim on the escrow.
    let entry = payout(pages, hoster, token).await;
    let tx: B256 = entry["claimedTx"].as_str().unwrap().parse().unwrap();
    let receipt = pages.chain().get_transaction_receipt(tx).await.unwrap().unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, hoster);
    assert_eq!(receipt.to, Some(pages.devnet.deployment.ad_escrow.address));
    assert_eq!(entry["claimable"], json!("0"));
    assert_eq!(claimed(pages, hoster, token).await, claimed_before + owed);

    // The page's history shows the mirror's total and the claim's transaction.
    let history = pages.browser.wait_in("#claims", &format!("{tx}")).await;
    assert!(
        history.contains(&units(claimed_before + owed, decimals, &symbol)),
        "{history}"
    );
    assert!(pages.browser.text("#last-claim").await.contains(&format!("{tx}")));
}

/// The demo's hoster opens the page, sees what it is owed, claims it in one transaction,
/// and its balance rises by exactly that; the claim shows in the page's history and the
/// API's. The page also fits a phone's screen.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_hoster_claims_its_settled_earnings(pool: PgPool) {
    let mut pages = Pages::start(pool).await;
    let (hoster, token, owed) = hoster_with_settled_earnings(&pages).await;
    let (symbol, decimals) = symbol_and_decimals(&pages, token).await;
    assert_eq!(pages.sign_in(HOSTER).await, hoster);
    pages.open("hoster", "hoster-owed").await;

    let key = format!("{token:#x}");
    let shown = pages.browser.text(&format!("#claimable-{key}")).await;
    assert_eq!(shown, units(owed, decimals, &symbol));
    let shown_units = pages
        .browser
        .eval(&format!("document.getElementById('claimable-{key}').dataset.amount"))
        .await;
    assert_eq!(shown_units, json!(owed.to_string()));
    // The statement lists the month's ad revenue per node.
    pages.browser.wait_for("Ad revenue · node").await;

    claim_and_check(&mut pages, hoster, token, owed).await;
    assert_eq!(
        pages.browser.text(&format!("#claimable-{key}")).await,
        units(0, decimals, &symbol)
    );

    // Today's statement has the same lines: the demo ran today.
    pages.browser.select("Period", "day").await;
    pages.browser.wait_in("[role=status]", "Statement updated.").await;
    pages.browser.wait_for("Ad revenue · node").await;
    // The statement's CSV, fetched with the session's token.
    pages.browser.click_button("Download CSV").await;
    let status = pages.browser.wait_in("[role=status]", "Downloaded statement-").await;
    let token = pages.page_token().await;
    let url = pages.devnet.api_url.join("/v1/statements/me/csv?period=day").unwrap();
    let csv = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("ad_revenue"), "{csv}");
    assert!(
        status.ends_with(&format!(".csv ({} bytes).", csv.len())),
        "the page saved the API's CSV: {status}"
    );

    pages
        .assert_fits_phone("hoster", "hoster-phone", async |browser| {
            browser.wait_for("Claim history").await;
        })
        .await;
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// A refused claim transaction shows the wallet's refusal and changes nothing on chain or
/// in the API; claiming again then pays.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_refused_claim_changes_nothing_and_claiming_again_works(pool: PgPool) {
    let mut pages = Pages::start(pool).await;
    let (hoster, token, owed) = hoster_with_settled_earnings(&pages).await;
    let (symbol, _) = symbol_and_decimals(&pages, token).await;
    pages.sign_in(HOSTER).await;
    pages.open("hoster", "hoster-before-refusal").await;
    let before = balance(&pages, token, hoster).await;
    let claimed_before = claimed(&pages, hoster, token).await;

    pages.browser.reject_next("eth_sendTransaction").await;
    pages.browser.click_button(&format!("Claim {symbol}")).await;
    pages
        .browser
        .wait_in("[role=alert]", "You declined the request in your wallet")
        .await;
    pages.browser.screenshot("hoster-claim-refused").await;
    assert_eq!(sends(&pages.browser.wallet_calls().await), [true]);
    assert_eq!(balance(&pages, token, hoster).await, before);
    assert_eq!(claimed(&pages, hoster, token).await, claimed_before);
    assert_eq!(
        payout(&pages, hoster, token).await["claimable"],
        json!(owed.to_string())
    );
    let still = pages
        .browser
        .eval(&format!(
            "document.getElementById('claimable-{token:#x}').dataset.amount"
        ))
        .await;
    assert_eq!(still, json!(owed.to_string()));

    claim_and_check(&mut pages, hoster, token, owed).await;
    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// `address`'s node as the API lists it to the page's user.
async fn listed(pages: &Pages, token: &str, address: Address) -> Option<Value> {
    let (status, nodes) = pages.api(Method::GET, "/v1/nodes", Some(token), None).await;
    assert_eq!(status, 200);
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"].as_str().unwrap().parse::<Address>().unwrap() == address)
        .cloned()
}

/// A new hoster registers a node with a key the page generates (and shows once), and one
/// with a key it pastes; the API lists both with their keys' addresses and refuses a proof
/// the key did not sign. A malformed key or a key registered already shows an alert and
/// registers nothing. Renaming and retiring reach the API.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_hoster_registers_nodes_with_keys_signed_in_the_page(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    let owner = pages.sign_in(5).await;
    pages.open("hoster", "hoster-no-role").await;
    pages.browser.click_button("Become a hoster").await;
    pages.browser.wait_for("You are now a hoster.").await;
    pages.browser.wait_for("No nodes yet").await;
    let token = pages.page_token().await;
    let count = async |pool: &PgPool| -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM nodes")
            .fetch_one(pool)
            .await
            .unwrap()
    };

    // A key generated in the page, shown once.
    pages.browser.fill("Node name", "edge-page-1").await;
    pages.browser.click_button("Register node").await;
    pages.browser.wait_for("Copy its private key now").await;
    pages.browser.screenshot("hoster-node-key-shown").await;
    let key: PrivateKeySigner = pages.browser.text("#new-node-key").await.parse().unwrap();
    let generated = listed(&pages, &token, key.address())
        .await
        .expect("the API lists the node under the shown key's address");
    assert_eq!(generated["name"], json!("edge-page-1"));
    assert_eq!(generated["retiredAt"], Value::Null);
    pages.browser.click_button("I have copied it").await;
    let gone = pages
        .browser
        .eval(&format!(
            "!document.body.textContent.includes('{}')",
            hex::encode(key.to_bytes())
        ))
        .await;
    assert_eq!(gone, json!(true), "the key is no longer on the page");

    // The API checks the proof: a signature by another key is refused.
    let chain_id = pages.devnet.deployment.chain_id;
    let other = PrivateKeySigner::random();
    let claimed = PrivateKeySigner::random().address();
    let forged = personal_sign(&other, &registration_message(owner, claimed, chain_id));
    let (status, _) = pages
        .api(
            Method::POST,
            "/v1/nodes",
            Some(&token),
            Some(json!({ "address": claimed, "name": "forged", "signature": forged })),
        )
        .await;
    assert_eq!(status, 422, "a proof by another key is refused");
    assert_eq!(count(&pool).await, 1);

    // A pasted key: registered, and never shown back.
    let pasted = PrivateKeySigner::random();
    pages.browser.fill("Node name", "edge-pasted").await;
    pages
        .browser
        .fill(
            "Existing node private key",
            &format!("0x{}", hex::encode(pasted.to_bytes())),
        )
        .await;
    pages.browser.click_button("Register node").await;
    pages.browser.wait_for("Registered edge-pasted").await;
    let node = listed(&pages, &token, pasted.address()).await.unwrap();
    assert_eq!(node["name"], json!("edge-pasted"));
    let shown = pages
        .browser
        .eval("document.getElementById('new-node-key') === null")
        .await;
    assert_eq!(shown, json!(true));
    pages.browser.screenshot("hoster-nodes-registered").await;

    // Unhappy paths: a malformed key, and a key already registered.
    pages.browser.fill("Node name", "edge-bad").await;
    pages.browser.fill("Existing node private key", "0x1234").await;
    pages.browser.click_button("Register node").await;
    pages
        .browser
        .wait_in("[role=alert]", "Existing node private key: not a private key")
        .await;
    pages.browser.screenshot("hoster-node-bad-key").await;
    assert_eq!(count(&pool).await, 2);
    pages.browser.fill("Node name", "edge-again").await;
    pages
        .browser
        .fill(
            "Existing node private key",
            &format!("0x{}", hex::encode(pasted.to_bytes())),
        )
        .await;
    pages.browser.click_button("Register node").await;
    pages.browser.wait_in("[role=alert]", "already registered").await;
    assert_eq!(count(&pool).await, 2);

    // Renaming, then retiring.
    let id = node["id"].as_str().unwrap();
    pages.browser.select("Node", id).await;
    pages.browser.fill("New name", "edge-renamed").await;
    pages.browser.click_button("Save changes").await;
    pages.browser.wait_for("Saved edge-renamed.").await;
    let node = listed(&pages, &token, pasted.address()).await.unwrap();
    assert_eq!(node["name"], json!("edge-renamed"));

    pages.browser.select("Node", id).await;
    pages.browser.click_button("Retire node").await;
    pages.browser.click_button("Yes, retire it").await;
    pages.browser.wait_for("Retired edge-renamed.").await;
    let node = listed(&pages, &token, pasted.address()).await.unwrap();
    assert_ne!(node["retiredAt"], Value::Null);
    assert_eq!(
        listed(&pages, &token, key.address()).await.unwrap()["retiredAt"],
        Value::Null
    );
    pages.browser.screenshot("hoster-node-retired").await;
    pages.browser.close().await;
    pages.devnet.stop().await;
}

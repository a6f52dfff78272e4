//! The marketplace: a seller (a fresh wallet each run) lists an item with a file; the
//! advertiser, now also a buyer, orders it and pays with the permit the API hands out and
//! one transaction; the indexer's next step issues the license, which verifies offline with
//! the published public key and activates online; the file downloads through a signed link;
//! once the refund window has passed an epoch debits the order and the seller's share is
//! claimed (by anyone: here the buyer sends the claim for the seller's account).

use alloy::network::TransactionBuilder;
use alloy::primitives::aliases::U40;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::advertiser::{Advertiser, Permit};
use super::api::{parsed, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::report::{Probe, Report, wait_for};
use super::wallet::{self, confirm};
use crate::contracts::{AdEscrow, TestToken};
use crate::money::Amount;
use crate::programs::market::keys::verify_license;
use crate::programs::market::orders::sale_shares;

/// The item's price: five whole tokens of six decimals.
const PRICE: u128 = 5_000_000;

/// What the sale paid its seller.
#[derive(Debug)]
pub struct Sold {
    pub seller: Address,
    pub proceeds: u128,
}

pub async fn buy_and_claim(devnet: &Devnet, report: &mut Report<'_>, buyer: &Advertiser) -> Result<Sold> {
    let api = &devnet.api;
    let seller_wallet = PrivateKeySigner::random();
    let seller = wallet::sign_in(api, &seller_wallet).await?;
    api.post("/v1/me/roles", Some(&seller), &json!({ "role": "seller" }))
        .await?;
    let item = api
        .post(
            "/v1/market/items",
            Some(&seller),
            &json!({
                "title": format!("Espresso banner templates {}", devnet.run),
                "description": "Ten banner sizes, editable.",
                "category": "creative_template",
                "tags": ["banner", "coffee"],
                "prices": [{ "token": devnet.token, "price": PRICE.to_string() }],
                "activationLimit": 2,
            }),
        )
        .await?;
    let item_id = text(&item, "/id")?.to_owned();
    let content = format!("banner templates of run {}\n", devnet.run).into_bytes();
    api.upload(
        &format!("/v1/market/items/{item_id}/files?name=templates.txt"),
        &seller,
        "text/plain",
        &content,
    )
    .await?;
    let item = api
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/market/items/{item_id}"),
            Some(&seller),
            Some(&json!({ "state": "published" })),
        )
        .await?;
    let fee_bps = item["feeBps"].as_i64().unwrap_or_default() as i32;
    report.ok(format_args!(
        "seller {} listed item {item_id} for {} with one file ({} bytes), fee {fee_bps} bps",
        seller_wallet.address(),
        devnet.units(PRICE),
        content.len()
    ));

    // The buyer orders and pays: one signature over the API's typed data, one transaction.
    let session = Some(buyer.session.as_str());
    api.post("/v1/me/roles", session, &json!({ "role": "buyer" })).await?;
    let purchase = api
        .post(
            "/v1/market/orders",
            session,
            &json!({ "itemId": item_id, "token": devnet.token }),
        )
        .await?;
    let order_id = text(&purchase, "/order/id")?.to_owned();
    let escrow_id: B256 = parsed(&purchase, "/order/chainEscrowId")?;
    let typed = &purchase["payment"]["permit"]["typedData"];
    let permit = Permit {
        owner: parsed(typed, "/message/owner")?,
        spender: parsed(typed, "/message/spender")?,
        value: parsed(typed, "/message/value")?,
        nonce: parsed(typed, "/message/nonce")?,
        deadline: parsed(typed, "/message/deadline")?,
    };
    let domain = Eip712Domain::new(
        Some(text(typed, "/domain/name")?.to_owned().into()),
        Some(text(typed, "/domain/version")?.to_owned().into()),
        Some(parsed(typed, "/domain/chainId")?),
        Some(parsed(typed, "/domain/verifyingContract")?),
        None,
    );
    let signature = buyer.wallet.sign_hash_sync(&permit.eip712_signing_hash(&domain))?;
    let end = purchase["payment"]["end"].as_u64().unwrap_or_default();
    let erc20 = TestToken::new(devnet.token, buyer.provider.clone());
    if erc20.balanceOf(buyer.wallet.address()).call().await? < U256::from(PRICE) {
        let pending = erc20.mint(buyer.wallet.address(), U256::from(PRICE)).send().await?;
        confirm(report, "TestToken.mint", pending).await?;
    }
    let escrow = devnet.deployment.ad_escrow.address;
    let pending = AdEscrow::new(escrow, buyer.provider.clone())
        .openCampaignWithPermit(
            escrow_id,
            devnet.token,
            permit.value,
            U40::from(end),
            permit.deadline,
            27 + u8::from(signature.v()),
            B256::from(signature.r()),
            B256::from(signature.s()),
        )
        .send()
        .await?;
    confirm(report, "AdEscrow.openCampaignWithPermit (the order's escrow)", pending).await?;

    let order_path = format!("/v1/market/orders/{order_id}");
    wait_for(
        report,
        "the indexer to see the order paid",
        devnet.wait_timeout,
        POLL,
        async || {
            let order = api.get(&order_path, session).await?;
            Ok(match order["state"].as_str() {
                Some("paid") => Probe::Ready(()),
                state => Probe::Waiting(format!("state {state:?}")),
            })
        },
    )
    .await?;
    report.ok(format_args!(
        "order {order_id} paid; its refund window ends at end {end}"
    ));

    // The license: offline with the public key alone, then online.
    let licenses = api.get("/v1/market/licenses", session).await?;
    let license = licenses
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["orderId"] == json!(order_id))
        .cloned()
        .ok_or_else(|| Failure::mismatch("the buyer's licenses", "one for the order", &licenses))?;
    let key = text(&license, "/key")?.to_owned();
    let published = api.get("/v1/market/license-key", None).await?;
    let public_key: [u8; 32] = URL_SAFE_NO_PAD
        .decode(text(&published, "/publicKey")?)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| Failure::mismatch("the license public key", "32 bytes of base64url", &published))?;
    let public_key = ed25519_dalek::VerifyingKey::from_bytes(&public_key)
        .map_err(|_| Failure::mismatch("the license public key", "an Ed25519 key", &published))?;
    let claims = verify_license(&public_key, &key)
        .map_err(|error| Failure::mismatch("the license key", "signed by the service", error))?;
    Failure::expect_eq("the license's buyer", buyer.wallet.address(), claims.buyer)?;
    report.ok(format_args!(
        "license {} verified offline with the Ed25519 public key alone",
        claims.license
    ));
    let activated = api
        .post(
            "/v1/market/licenses/activate",
            None,
            &json!({ "key": key, "device": format!("demo-laptop-{}", devnet.run) }),
        )
        .await?;
    report.ok(format_args!(
        "activated online: {} of {} devices",
        activated["activations"], activated["activationLimit"]
    ));

    // The file, through a short-lived signed link.
    let file_id = text(&item, "/files/0/id")?;
    let link = api
        .post(&format!("{order_path}/files/{file_id}/link"), session, &json!({}))
        .await?;
    let downloaded = api
        .download(&format!("/v1/market/downloads/{}", text(&link, "/token")?))
        .await?;
    Failure::expect_eq(
        "the downloaded file's SHA-256",
        hex::encode(Sha256::digest(&content)),
        hex::encode(Sha256::digest(&downloaded)),
    )?;
    report.ok(format_args!(
        "downloaded the file through a link valid until {} ({} bytes, SHA-256 as uploaded)",
        text(&link, "/expiresAt")?,
        downloaded.len()
    ));

    // After the refund window an epoch debits the order; the seller's share is claimable.
    let [proceeds, _fee] = sale_shares(Amount(PRICE), fee_bps);
    let seller_address = seller_wallet.address();
    let payouts_path = format!("/v1/payouts/{seller_address}");
    report.info("the sale is held until the order's refund window ends; then an epoch debits the order");
    let payout = wait_for(
        report,
        "the seller's share to be claimable",
        devnet.wait_timeout,
        POLL,
        async || {
            let payouts = api.get(&payouts_path, None).await?;
            let token = payouts["tokens"].get(0).cloned().unwrap_or(Value::Null);
            Ok(if token["claimable"] == json!(proceeds.0.to_string()) {
                Probe::Ready(token)
            } else {
                Probe::Waiting(format!("held {}, claimable {}", token["held"], token["claimable"]))
            })
        },
    )
    .await?;
    let calldata: Bytes = parsed(&payout, "/calldata")?;
    let before = erc20.balanceOf(seller_address).call().await?;
    let request = TransactionRequest::default().with_to(escrow).with_input(calldata);
    let pending = buyer.provider.send_transaction(request).await?;
    confirm(report, "AdEscrow.claim (for the seller's account)", pending).await?;
    let paid: u128 = (erc20.balanceOf(seller_address).call().await? - before).to();
    Failure::expect_eq("the seller's token balance rise", proceeds.0, paid)?;
    report.ok(format_args!(
        "seller's balance rose by {} ({} of {}; the platform kept {fee_bps} bps)",
        devnet.units(paid),
        devnet.units(proceeds.0),
        devnet.units(PRICE)
    ));
    Ok(Sold {
        seller: seller_address,
        proceeds: paid,
    })
}

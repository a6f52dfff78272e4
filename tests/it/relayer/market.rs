//! The marketplace on anvil, through the API: a buyer pays with one permit signature and one
//! transaction, the indexer's next step issues the license, the download works; a second
//! purchase (approve, then open) is refunded inside its window and the buyer withdraws it
//! after end + grace; an underpaid one is refused; once the window has passed the seller
//! claims its share with the API's proof, and a refund after that is a clawback that waits
//! for the seller's later earnings.

use adescrow::mirror::indexer::Indexer;
use adescrow::platform::worker::Role as _;
use alloy::dyn_abi::TypedData;
use alloy::primitives::aliases::U40;
use alloy::sol_types::SolCall;

use super::*;
use crate::market::Seller;
use crate::support::TestApp;

const SELLER: usize = 6;
const BUYER: usize = 8;

impl World {
    fn signer(&self, index: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(self.chain.anvil.keys()[index].clone())
    }

    /// The API as a marketplace runs it: reading the chain (for permits), with a short
    /// refund window.
    fn market_app(&self, refund_window: Duration) -> TestApp {
        let deployment = &self.chain.deployment;
        let (escrow, registry, rpc) = (
            deployment.ad_escrow.address,
            deployment.consent_registry.address,
            self.chain.anvil.endpoint_url(),
        );
        TestApp::with(self.pool.clone(), |config| {
            config.escrow_address = Some(escrow);
            config.consent_address = Some(registry);
            config.grace_period = Some(86_400);
            config.rpc_url = rpc;
            config.market.refund_window = refund_window;
        })
    }

    async fn send_to(&self, from: usize, to: Address, calldata: Bytes) {
        let provider = self.chain.wallet(from);
        let request = TransactionRequest::default().with_to(to).with_input(calldata);
        let receipt = provider
            .send_transaction(request)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "the transaction succeeds");
    }
}

async fn order_state(app: &TestApp, token: &str, order: &str) -> Value {
    app.get(&format!("/v1/market/orders/{order}"), Some(token))
        .await
        .ok()
        .clone()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_purchase_is_paid_licensed_downloaded_refunded_and_claimed_on_chain(pool: PgPool) {
    let world = World::new(pool).await;
    let window = Duration::from_secs(4);
    let app = world.market_app(window);
    let escrow = world.chain.deployment.ad_escrow.address;
    let token = world.chain.token;
    let (seller_key, buyer_key) = (world.signer(SELLER), world.signer(BUYER));
    let seller = Seller {
        token: app.token_with_role(&seller_key, "seller").await,
        wallet: seller_key.clone(),
    };
    let item = seller
        .publish(&app, token, "1000", "Banner templates", &["banner"])
        .await;
    let file = item["files"][0]["id"].as_str().unwrap().to_owned();
    let buyer = app.token_with_role(&buyer_key, "buyer").await;
    TestToken::new(token, world.chain.wallet(BUYER))
        .mint(buyer_key.address(), U256::from(10_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let mut indexer = Indexer::new(
        world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0),
        world.pool.clone(),
        CHAIN_ID,
    );
    let buy = || {
        app.post(
            "/v1/market/orders",
            Some(&buyer),
            json!({ "itemId": item["id"], "token": token }),
        )
    };

    // One signature over the typed data the API hands out, and one transaction.
    let first = buy().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let (order, payment) = (&first.body["order"], &first.body["payment"]);
    let typed: TypedData = serde_json::from_value(payment["permit"]["typedData"].clone()).unwrap();
    let signature = buyer_key.sign_hash_sync(&typed.eip712_signing_hash().unwrap()).unwrap();
    let open = AdEscrow::openCampaignWithPermitCall {
        campaignId: order["chainEscrowId"].as_str().unwrap().parse().unwrap(),
        token,
        amount: U256::from(1000),
        end: U40::from(payment["end"].as_i64().unwrap() as u64),
        deadline: U256::from(payment["permit"]["deadline"].as_i64().unwrap() as u64),
        v: 27 + u8::from(signature.v()),
        r: signature.r().into(),
        s: signature.s().into(),
    };
    world.send_to(BUYER, escrow, open.abi_encode().into()).await;
    let first_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order_state(&app, &buyer, &first_id).await["state"], "awaiting_payment");

    // The indexer's next step pays the order and issues its license.
    indexer.step().await.unwrap();
    let paid = order_state(&app, &buyer, &first_id).await;
    assert_eq!(paid["state"], "paid", "{paid}");
    let licenses = app.get("/v1/market/licenses", Some(&buyer)).await;
    let license = licenses.ok()[0].clone();
    assert_eq!(
        (&license["orderId"], &license["valid"]),
        (&json!(first_id), &json!(true))
    );
    let link = app
        .post(
            &format!("/v1/market/orders/{first_id}/files/{file}/link"),
            Some(&buyer),
            json!({}),
        )
        .await;
    let download = app
        .get(
            &format!("/v1/market/downloads/{}", link.ok()["token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (download.status, download.text.as_str()),
        (StatusCode::OK, "the files of the item")
    );

    // A second purchase the two-transaction way, refunded by the seller inside its window.
    let second = buy().await;
    let (order, payment) = (&second.body["order"], &second.body["payment"]);
    let second_id = order["id"].as_str().unwrap().to_owned();
    assert!(payment["permit"].is_object(), "a fresh nonce for the next permit");
    let calldata = |field: &str| -> Bytes { payment[field].as_str().unwrap().parse().unwrap() };
    world.send_to(BUYER, token, calldata("approveCalldata")).await;
    world.send_to(BUYER, escrow, calldata("openCalldata")).await;
    indexer.step().await.unwrap();
    assert_eq!(order_state(&app, &buyer, &second_id).await["state"], "paid");
    let second_key = app.get("/v1/market/licenses", Some(&buyer)).await.body[0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let refunded = app
        .post(
            &format!("/v1/market/orders/{second_id}/refund"),
            Some(&seller.token),
            json!({ "reason": "the buyer bought it twice" }),
        )
        .await;
    assert_eq!(
        (&refunded.ok()["outcome"], &refunded.body["order"]["state"]),
        (&json!("reversed"), &json!("refunded"))
    );
    let revoked = app
        .post("/v1/market/licenses/validate", None, json!({ "key": second_key }))
        .await;
    assert_eq!(revoked.ok()["valid"], false);
    app.post(
        "/v1/market/licenses/activate",
        None,
        json!({ "key": second_key, "device": "pc" }),
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");
    app.post(
        &format!("/v1/market/orders/{second_id}/files/{file}/link"),
        Some(&buyer),
        json!({}),
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");

    // A third, underpaid by one unit, is refused and stays the buyer's.
    let third = buy().await;
    let third_order = &third.body["order"];
    let third_id = third_order["id"].as_str().unwrap().to_owned();
    let third_escrow: B256 = third_order["chainEscrowId"].as_str().unwrap().parse().unwrap();
    let underpaid = AdEscrow::openCampaignCall {
        campaignId: third_escrow,
        token,
        amount: U256::from(999),
        end: U40::from(third.body["payment"]["end"].as_i64().unwrap() as u64),
    };
    TestToken::new(token, world.chain.wallet(BUYER))
        .approve(escrow, U256::from(999))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    world.send_to(BUYER, escrow, underpaid.abi_encode().into()).await;
    indexer.step().await.unwrap();
    let refused = order_state(&app, &buyer, &third_id).await;
    assert_eq!(
        (&refused["state"], &refused["refusedReason"]),
        (&json!("refused"), &json!("it was funded with less than its price")),
        "{refused}"
    );

    // After the window the relayer releases the sale and one epoch debits the paid order
    // alone; the seller claims its 85% with the API's proof.
    tokio::time::sleep(window + Duration::from_secs(1)).await;
    let relayer = world.relayer(1);
    world.settle(&relayer, 1).await;
    let debits: Vec<Vec<u8>> = sqlx::query_scalar("SELECT chain_escrow_id FROM settlement_debits WHERE epoch = 1")
        .fetch_all(&world.pool)
        .await
        .unwrap();
    let first_escrow: B256 = first.body["order"]["chainEscrowId"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        debits,
        vec![first_escrow.to_vec()],
        "neither the refunded nor the refused order"
    );
    indexer.step().await.unwrap();
    let before = world.token_balance(seller_key.address()).await;
    claim_with_api_proof(&world, &seller_key, "850", "0", "850").await;
    assert_eq!(
        world.token_balance(seller_key.address()).await,
        before + U256::from(850)
    );
    indexer.step().await.unwrap();
    let dashboard = app.get("/v1/market/seller/dashboard", Some(&seller.token)).await;
    let sales = &dashboard.ok()["sales"][0];
    assert_eq!(
        (&sales["orders"], &sales["gross"], &sales["proceeds"], &sales["refunds"]),
        (&json!(2), &json!("2000"), &json!("850"), &json!(1)),
        "{sales}"
    );
    assert_eq!(dashboard.body["payouts"]["tokens"][0]["claimed"], "850");

    // A refund after the seller was paid is a clawback: the buyer's credit waits until the
    // seller and the platform have earned it back, so no leaf goes down.
    let late = app
        .post(
            &format!("/v1/market/orders/{first_id}/refund"),
            Some(&seller.token),
            json!({ "reason": "a late complaint" }),
        )
        .await;
    assert_eq!(late.ok()["outcome"], "clawed_back");
    let buyer_payouts = app.get(&format!("/v1/payouts/{}", buyer_key.address()), None).await;
    let held = &buyer_payouts.ok()["tokens"][0];
    assert_eq!(
        (&held["accrued"], &held["released"]),
        (&json!("1000"), &json!("0")),
        "{held}"
    );
    let reasons: Vec<&str> = held["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["recovery", "recovery"], "{held}");
    let seller_payouts = app.get(&format!("/v1/payouts/{}", seller_key.address()), None).await;
    assert_eq!(seller_payouts.ok()["tokens"][0]["owed"], "850");

    // After end + grace the buyer takes back the refunded and the refused orders' escrows.
    world.chain.wallet(0).anvil_increase_time(86_400 + 10).await.unwrap();
    world.chain.mine(1).await;
    let before = world.token_balance(buyer_key.address()).await;
    for id in [&second.body["order"]["chainEscrowId"], &third_order["chainEscrowId"]] {
        let withdraw = AdEscrow::withdrawCall {
            campaignId: id.as_str().unwrap().parse().unwrap(),
        };
        world.send_to(BUYER, escrow, withdraw.abi_encode().into()).await;
    }
    assert_eq!(
        world.token_balance(buyer_key.address()).await,
        before + U256::from(1000 + 999)
    );
}

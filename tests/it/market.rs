//! The marketplace over HTTP without a chain: listing and search, the item workflow, files,
//! fees, orders refused for bad input, license checks (offline and online, with concurrent
//! activations) and download links. The paid path on anvil is in `relayer::market`.

use adescrow::money::escrow::{self, NewOrder};
use adescrow::programs::market::keys::verify_license;
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{Reply, TestApp};
use adescrow::platform::db::MIGRATOR;

const TOKEN: &str = "0x00000000000000000000000000000000000000aa";

pub struct Seller {
    pub token: String,
    pub wallet: PrivateKeySigner,
}

impl Seller {
    pub async fn new(app: &TestApp) -> Self {
        let wallet = PrivateKeySigner::random();
        let token = app.token_with_role(&wallet, "seller").await;
        Self { token, wallet }
    }

    /// A published item with one text file; returns the item.
    pub async fn publish(&self, app: &TestApp, token: Address, price: &str, title: &str, tags: &[&str]) -> Value {
        let item = app
            .post(
                "/v1/market/items",
                Some(&self.token),
                json!({
                    "title": title, "description": "Made for campaigns of every season",
                    "category": "creative_template", "tags": tags,
                    "prices": [{ "token": token, "price": price }], "activationLimit": 1,
                }),
            )
            .await;
        assert_eq!(item.status, StatusCode::CREATED, "{}", item.text);
        let id = item.body["id"].as_str().unwrap().to_owned();
        upload(
            app,
            &self.token,
            &id,
            "readme.txt",
            "text/plain",
            b"the files of the item",
        )
        .await
        .ok();
        app.patch(
            &format!("/v1/market/items/{id}"),
            Some(&self.token),
            json!({ "state": "published" }),
        )
        .await
        .ok()
        .clone()
    }
}

pub async fn upload(app: &TestApp, token: &str, item: &str, name: &str, content_type: &str, content: &[u8]) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/market/items/{item}/files?name={name}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(content.to_vec()))
        .unwrap();
    app.send(request).await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_item_goes_from_draft_to_the_listing_and_search_finds_it(pool: PgPool) {
    let app = TestApp::new(pool);
    let seller = Seller::new(&app).await;
    let token: Address = TOKEN.parse().unwrap();

    // A draft is the seller's only; publishing needs a file.
    let draft = app
        .post(
            "/v1/market/items",
            Some(&seller.token),
            json!({ "title": "Audience study", "category": "audience_research", "prices": [{ "token": token, "price": "500" }] }),
        )
        .await;
    let draft_id = draft.body["id"].as_str().unwrap().to_owned();
    assert_eq!(draft.body["state"], "draft");
    assert_eq!(draft.body["feeBps"], 1500, "the default fee");
    app.get(&format!("/v1/market/items/{draft_id}"), None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    let refused = app
        .patch(
            &format!("/v1/market/items/{draft_id}"),
            Some(&seller.token),
            json!({ "state": "published" }),
        )
        .await;
    assert_eq!(refused.problem(StatusCode::CONFLICT, "conflict")["field"], "state");

    // Published items are listed newest first and found by words, category and tag.
    for (title, tags) in [
        ("Spring banner pack", vec!["banner", "spring"]),
        ("Winter video templates", vec!["video"]),
        ("Summer banner set", vec!["banner"]),
    ] {
        seller.publish(&app, token, "1000", title, &tags).await;
    }
    let titles = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app.get("/v1/market/items", None).await;
    all.ok();
    assert_eq!(
        titles(&all),
        ["Summer banner set", "Winter video templates", "Spring banner pack"],
        "drafts are not listed"
    );
    let banner = app.get("/v1/market/items?q=banner", None).await;
    assert_eq!(titles(&banner), ["Summer banner set", "Spring banner pack"]);
    let tagged = app.get("/v1/market/items?tag=VIDEO", None).await;
    assert_eq!(titles(&tagged), ["Winter video templates"], "tags are lower-cased");
    let none = app.get("/v1/market/items?category=software", None).await;
    assert_eq!(titles(&none), Vec::<String>::new());
    let other_token = app
        .get(
            "/v1/market/items?token=0x00000000000000000000000000000000000000bb",
            None,
        )
        .await;
    assert_eq!(titles(&other_token), Vec::<String>::new());

    // Pages follow the cursor to the end.
    let first = app.get("/v1/market/items?limit=2", None).await;
    assert_eq!(titles(&first).len(), 2);
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let second = app.get(&format!("/v1/market/items?limit=2&after={cursor}"), None).await;
    assert_eq!(titles(&second), ["Spring banner pack"]);
    assert!(second.body["nextCursor"].is_null());

    // Bad queries name their field.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("after=nonsense", "after"),
        ("category=cars", "query"),
        ("tag=0.5", "tag"),
    ] {
        let reply = app.get(&format!("/v1/market/items?{query}"), None).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field,
            "{query}"
        );
    }

    // Retired is final; unlisted is for sale but not listed.
    let item = seller.publish(&app, token, "1000", "Retiring soon", &[]).await;
    let id = item["id"].as_str().unwrap();
    app.patch(
        &format!("/v1/market/items/{id}"),
        Some(&seller.token),
        json!({ "state": "unlisted" }),
    )
    .await
    .ok();
    assert!(!titles(&app.get("/v1/market/items", None).await).contains(&"Retiring soon".to_owned()));
    app.get(&format!("/v1/market/items/{id}"), None).await.ok();
    app.patch(
        &format!("/v1/market/items/{id}"),
        Some(&seller.token),
        json!({ "state": "retired" }),
    )
    .await
    .ok();
    let again = app
        .patch(
            &format!("/v1/market/items/{id}"),
            Some(&seller.token),
            json!({ "state": "published" }),
        )
        .await;
    again.problem(StatusCode::CONFLICT, "conflict");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bad_items_files_and_fees_are_refused_naming_the_field(pool: PgPool) {
    let app = TestApp::with(pool, |config| config.admin_addresses = vec![]);
    let seller = Seller::new(&app).await;
    let other = Seller::new(&app).await;
    for (body, field) in [
        (json!({ "title": "", "category": "other" }), "title"),
        (
            json!({ "title": "x", "category": "other", "tags": ["no spaces"] }),
            "tags[0]",
        ),
        (
            json!({ "title": "x", "category": "other", "prices": [{ "token": TOKEN, "price": "0" }] }),
            "prices[0]",
        ),
        (
            json!({ "title": "x", "category": "other", "prices": [{ "token": TOKEN, "price": "1" }, { "token": TOKEN, "price": "2" }] }),
            "prices[1]",
        ),
        (
            json!({ "title": "x", "category": "other", "activationLimit": 0 }),
            "activationLimit",
        ),
        (
            json!({ "title": "x", "category": "other", "licenseDays": 4000 }),
            "licenseDays",
        ),
    ] {
        let reply = app.post("/v1/market/items", Some(&seller.token), body.clone()).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field,
            "{body}"
        );
    }
    assert_eq!(app.count("market_items").await, 0, "nothing was written");

    // Only sellers list; only the item's seller changes it.
    let viewer = app.token_with_role(&PrivateKeySigner::random(), "viewer").await;
    app.post(
        "/v1/market/items",
        Some(&viewer),
        json!({ "title": "x", "category": "other" }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    app.get("/v1/market/seller/items", None)
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let item = app
        .post(
            "/v1/market/items",
            Some(&seller.token),
            json!({ "title": "Data", "category": "data_set" }),
        )
        .await;
    let id = item.body["id"].as_str().unwrap().to_owned();
    app.patch(
        &format!("/v1/market/items/{id}"),
        Some(&other.token),
        json!({ "title": "Mine now" }),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");

    // Files: a declared type must match the content, and the size is bounded.
    let png = upload(&app, &seller.token, &id, "a.png", "image/png", b"not a png").await;
    assert_eq!(
        png.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "body"
    );
    let exe = upload(&app, &seller.token, &id, "a.exe", "application/x-msdownload", b"MZ").await;
    assert_eq!(
        exe.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "Content-Type"
    );
    let big = vec![b'a'; 1024 * 1024 + 1];
    upload(&app, &seller.token, &id, "big.txt", "text/plain", &big)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    let csv = upload(&app, &seller.token, &id, "rows.csv", "text/csv", b"a,b\n1,2\n").await;
    assert_eq!(csv.status, StatusCode::CREATED, "{}", csv.text);
    assert_eq!(csv.body["size"], 8);
    assert!(
        csv.body.get("objectKey").is_none(),
        "where a file is kept is never shown"
    );
    assert_eq!(app.count("market_files").await, 1);

    // Fees are the admins'.
    app.call(
        Method::PUT,
        &format!("/v1/market/items/{id}/fee"),
        Some(&seller.token),
        Some(json!({ "feeBps": 0 })),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_admin_sets_fees_within_bounds(pool: PgPool) {
    let admin_wallet = PrivateKeySigner::random();
    let app = TestApp::with(pool, |config| config.admin_addresses = vec![admin_wallet.address()]);
    let admin = app.token(&admin_wallet).await;
    let seller = Seller::new(&app).await;
    let token: Address = TOKEN.parse().unwrap();
    let item = seller.publish(&app, token, "1000", "Fee test", &[]).await;
    let id = item["id"].as_str().unwrap();
    let seller_fee = format!("/v1/market/sellers/{}/fee", seller.wallet.address());
    let reply = app
        .call(Method::PUT, &seller_fee, Some(&admin), Some(json!({ "feeBps": 5001 })))
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "feeBps"
    );
    let reply = app
        .call(Method::PUT, &seller_fee, Some(&admin), Some(json!({ "feeBps": 1000 })))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let shown = app.get(&format!("/v1/market/items/{id}"), None).await;
    assert_eq!(shown.ok()["feeBps"], 1000, "the seller's fee");
    app.call(
        Method::PUT,
        &format!("/v1/market/items/{id}/fee"),
        Some(&admin),
        Some(json!({ "feeBps": 250 })),
    )
    .await;
    let shown = app.get(&format!("/v1/market/items/{id}"), None).await;
    assert_eq!(shown.ok()["feeBps"], 250, "the item's own fee wins");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn orders_for_what_cannot_be_bought_are_refused_and_write_nothing(pool: PgPool) {
    let app = TestApp::new(pool);
    let seller = Seller::new(&app).await;
    let token: Address = TOKEN.parse().unwrap();
    let item = seller.publish(&app, token, "1000", "For sale", &[]).await;
    let id = item["id"].as_str().unwrap().to_owned();
    let buyer = app.token_with_role(&PrivateKeySigner::random(), "buyer").await;

    let wrong_token = app
        .post(
            "/v1/market/orders",
            Some(&buyer),
            json!({ "itemId": id, "token": "0x00000000000000000000000000000000000000bb" }),
        )
        .await;
    assert_eq!(
        wrong_token.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "token"
    );
    let unknown = app
        .post(
            "/v1/market/orders",
            Some(&buyer),
            json!({ "itemId": Uuid::new_v4(), "token": token }),
        )
        .await;
    unknown.problem(StatusCode::NOT_FOUND, "not-found");
    app.post(
        "/v1/market/orders",
        Some(&seller.token),
        json!({ "itemId": id, "token": token }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    app.patch(
        &format!("/v1/market/items/{id}"),
        Some(&seller.token),
        json!({ "state": "retired" }),
    )
    .await
    .ok();
    let retired = app
        .post(
            "/v1/market/orders",
            Some(&buyer),
            json!({ "itemId": id, "token": token }),
        )
        .await;
    assert_eq!(retired.problem(StatusCode::CONFLICT, "conflict")["field"], "itemId");
    assert_eq!(app.count("market_orders").await, 0);
    assert_eq!(app.count("escrow_accounts WHERE kind = 'order'").await, 0);

    // A refund of an order that was never paid is refused by its state.
    let item = seller.publish(&app, token, "1000", "Second", &[]).await;
    let order = app
        .post(
            "/v1/market/orders",
            Some(&buyer),
            json!({ "itemId": item["id"], "token": token }),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert!(
        order.body["payment"]["permit"].is_null(),
        "no chain to read a permit domain from"
    );
    assert!(order.body["payment"]["approveCalldata"].is_string());
    let order_id = order.body["order"]["id"].as_str().unwrap();
    let refund = app
        .post(
            &format!("/v1/market/orders/{order_id}/refund"),
            Some(&seller.token),
            json!({ "reason": "test" }),
        )
        .await;
    assert_eq!(refund.problem(StatusCode::CONFLICT, "conflict")["field"], "state");
    let other_seller = Seller::new(&app).await;
    app.post(
        &format!("/v1/market/orders/{order_id}/refund"),
        Some(&other_seller.token),
        json!({ "reason": "test" }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
}

/// A paid order with its license, made directly in the database (the chain's part is
/// `relayer::market`'s to test).
async fn paid_order(app: &TestApp, item: &Value, buyer: Address, limit: i32) -> (Uuid, Uuid) {
    let mut conn = app.pool.acquire().await.unwrap();
    let order = escrow::open_order(
        &mut conn,
        &NewOrder {
            buyer,
            token: TOKEN.parse().unwrap(),
            price: adescrow::money::Amount(1000),
            refund_window: std::time::Duration::from_secs(3600),
        },
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let item_id: Uuid = item["id"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "INSERT INTO market_orders (id, item_id, buyer_id, seller_id, seller_address, platform, fee_bps,
                                    activation_limit, pay_by, state, paid_at, proceeds)
         SELECT $1, i.id, b.id, i.seller_id, s.address, $4, 1500, $5, now(), 'paid', now(), 850
         FROM market_items i JOIN users s ON s.id = i.seller_id, users b
         WHERE i.id = $2 AND b.address = $3",
    )
    .bind(order.id)
    .bind(item_id)
    .bind(buyer.as_slice())
    .bind(Address::repeat_byte(0xfa).as_slice())
    .bind(limit)
    .execute(&app.pool)
    .await
    .unwrap();
    let license: Uuid = sqlx::query_scalar(
        "INSERT INTO market_licenses (order_id, activation_limit, issued_at) VALUES ($1, $2, now()) RETURNING id",
    )
    .bind(order.id)
    .bind(limit)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (order.id, license)
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_license_verifies_offline_and_its_activations_never_pass_the_limit(pool: PgPool) {
    let app = TestApp::new(pool);
    let seller = Seller::new(&app).await;
    let item = seller
        .publish(&app, TOKEN.parse().unwrap(), "1000", "Software", &[])
        .await;
    let buyer_wallet = PrivateKeySigner::random();
    let buyer = app.token_with_role(&buyer_wallet, "buyer").await;
    let (order, license) = paid_order(&app, &item, buyer_wallet.address(), 3).await;

    let licenses = app.get("/v1/market/licenses", Some(&buyer)).await;
    let key = licenses.ok()[0]["key"].as_str().unwrap().to_owned();
    assert_eq!(licenses.body[0]["orderId"], order.to_string());

    // Offline: the published public key alone.
    let published = app.get("/v1/market/license-key", None).await;
    assert_eq!(published.ok()["algorithm"], "Ed25519");
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(published.body["publicKey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
    let claims = verify_license(&public, &key).unwrap();
    assert_eq!(
        (claims.license, claims.order, claims.activation_limit),
        (license, order, 3)
    );
    assert_eq!(claims.buyer, buyer_wallet.address());

    // A tampered key is refused online too.
    let mut tampered = key.clone();
    tampered.insert(10, 'x');
    let reply = app
        .post("/v1/market/licenses/validate", None, json!({ "key": tampered }))
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "key"
    );

    // Twenty devices at once against a limit of three: exactly three get in.
    let attempts = (0..20).map(|i| {
        let app = &app;
        let key = &key;
        async move {
            app.post(
                "/v1/market/licenses/activate",
                None,
                json!({ "key": key, "device": format!("device-{i}") }),
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((ok, refused), (3, 17), "{statuses:?}");
    let shown = app
        .post("/v1/market/licenses/validate", None, json!({ "key": key }))
        .await;
    assert_eq!(
        (
            &shown.ok()["activations"],
            shown.body["devices"].as_array().unwrap().len()
        ),
        (&json!(3), 3)
    );

    // The same device again is no second activation; freeing one lets another in.
    let device = shown.body["devices"][0].as_str().unwrap().to_owned();
    let again = app
        .post(
            "/v1/market/licenses/activate",
            None,
            json!({ "key": key, "device": device }),
        )
        .await;
    assert_eq!(again.ok()["activations"], 3);
    app.post(
        "/v1/market/licenses/deactivate",
        None,
        json!({ "key": key, "device": device }),
    )
    .await
    .ok();
    app.post(
        "/v1/market/licenses/deactivate",
        None,
        json!({ "key": key, "device": device }),
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");
    let next = app
        .post(
            "/v1/market/licenses/activate",
            None,
            json!({ "key": key, "device": "laptop" }),
        )
        .await;
    assert_eq!(next.ok()["activations"], 3);
    let missing = app
        .post(
            "/v1/market/licenses/activate",
            None,
            json!({ "key": key, "device": " " }),
        )
        .await;
    assert_eq!(
        missing.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "device"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_download_link_works_for_its_buyer_until_it_expires_or_is_forged(pool: PgPool) {
    let app = TestApp::new(pool);
    let seller = Seller::new(&app).await;
    let item = seller
        .publish(&app, TOKEN.parse().unwrap(), "1000", "Dataset", &[])
        .await;
    let file = item["files"][0]["id"].as_str().unwrap().to_owned();
    let buyer_wallet = PrivateKeySigner::random();
    let buyer = app.token_with_role(&buyer_wallet, "buyer").await;
    let (order, _) = paid_order(&app, &item, buyer_wallet.address(), 1).await;

    let link = app
        .post(
            &format!("/v1/market/orders/{order}/files/{file}/link"),
            Some(&buyer),
            json!({}),
        )
        .await;
    let token = link.ok()["token"].as_str().unwrap().to_owned();
    let download = app.get(&format!("/v1/market/downloads/{token}"), None).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.text, "the files of the item");
    assert_eq!(download.headers[header::CONTENT_TYPE], "text/plain");
    assert_eq!(app.count("market_downloads").await, 1, "downloads are counted");

    // Another buyer gets no link to it; a forged or an expired token is refused.
    let stranger = app.token_with_role(&PrivateKeySigner::random(), "buyer").await;
    app.post(
        &format!("/v1/market/orders/{order}/files/{file}/link"),
        Some(&stranger),
        json!({}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    let mut forged = URL_SAFE_NO_PAD.decode(&token).unwrap();
    forged[35] ^= 1;
    let reply = app
        .get(
            &format!("/v1/market/downloads/{}", URL_SAFE_NO_PAD.encode(&forged)),
            None,
        )
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "token"
    );
    let expired = app.state.market.keys.download_token(order, file.parse().unwrap(), 1);
    let reply = app.get(&format!("/v1/market/downloads/{expired}"), None).await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "token"
    );
    assert!(
        reply.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        reply.text
    );

    // A revoked license takes the links with it, even one already handed out.
    sqlx::query("UPDATE market_licenses SET revoked_at = now() WHERE order_id = $1")
        .bind(order)
        .execute(&app.pool)
        .await
        .unwrap();
    app.get(&format!("/v1/market/downloads/{token}"), None)
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(app.count("market_downloads").await, 1);
}

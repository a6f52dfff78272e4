//! The programs page: a marketplace purchase paid from the wallet with one permit signature
//! and one transaction (and a declined permit that leaves everything as it was), an item
//! listed from the page, a referral link that brings a new user, a promotion redeemed on a
//! campaign, and the page at phone width. Set-ups the page is not about (the seller's item
//! to buy, the admin's promotion, the advertiser's campaign) go through the API over HTTP,
//! as their own pages or tools would.

use adescrow::contracts::{AdEscrow, TestToken};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::{Address, B256, U256};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Pages;

/// The item's price: five whole tUSD (six decimals).
const PRICE: u128 = 5_000_000;
/// What the buy button says for it.
const BUY: &str = "Buy for 5 tUSD";
const FILE: &[u8] = b"ten banner sizes, editable\n";

/// A seller's published item at [`PRICE`] with one text file; its id.
async fn published_item(pages: &Pages, seller: &str, token: Address) -> String {
    let item = pages
        .api_ok(
            Method::POST,
            "/v1/market/items",
            Some(seller),
            Some(json!({
                "title": "Espresso banner templates",
                "description": "Ten banner sizes, editable.",
                "category": "creative_template",
                "tags": ["banner"],
                "prices": [{ "token": token, "price": PRICE.to_string() }],
            })),
        )
        .await;
    let id = item["id"].as_str().unwrap().to_owned();
    let files = format!("/v1/market/items/{id}/files?name=templates.txt");
    let uploaded = reqwest::Client::new()
        .post(pages.devnet.api_url.join(&files).unwrap())
        .bearer_auth(seller)
        .header("content-type", "text/plain")
        .body(FILE.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    pages
        .api_ok(
            Method::PATCH,
            &format!("/v1/market/items/{id}"),
            Some(seller),
            Some(json!({ "state": "published" })),
        )
        .await;
    id
}

/// Idempotency keys used on `route` (as the OpenAPI document spells it).
async fn keys_for(pool: &PgPool, route: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE route = $1")
        .bind(route)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits for `text` on the page for up to a minute: a purchase waits for a block and the
/// indexer.
async fn wait_long(pages: &mut Pages, text: &str) {
    pages
        .browser
        .cmd(json!({ "cmd": "waitFor", "text": text, "timeoutMs": 55_000 }))
        .await;
}

/// A buyer finds a seller's item, declines the permit once (nothing is sent, no escrow, no
/// token moves), then buys it with one permit signature and one transaction: the order's
/// escrow holds exactly the price for the buyer, the buyer's balance fell by exactly that,
/// and the API shows the order paid, a license, and a working download link.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_buyer_pays_an_item_with_one_permit_and_one_transaction(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    let token = pages.test_token();
    let seller = pages.api_token_with_role(3, "seller").await;
    let item_id = published_item(&pages, &seller, token).await;

    // The buyer holds twice the price, minted by itself (anyone may mint the test token).
    let buyer = pages.signer(4).address();
    pages.mint(buyer, 2 * PRICE).await;
    let chain = pages.chain();
    let erc20 = TestToken::new(token, &chain);
    let escrow = AdEscrow::new(pages.devnet.deployment.ad_escrow.address, &chain);

    assert_eq!(pages.sign_in(4).await, buyer);
    pages.open("programs", "programs-signed-in").await;
    pages.browser.click_button("Become a buyer").await;
    pages.browser.wait_for("You are now a buyer.").await;
    pages.browser.click_button("Details").await;
    pages.browser.wait_in("#item-detail", BUY).await;
    pages.browser.screenshot("programs-market-item").await;
    let before = erc20.balanceOf(buyer).call().await.unwrap();
    let buyer_token = pages.api_token(4).await;

    // Declined: the order exists, unpaid; nothing was sent and no token moved.
    let from = pages.browser.asks().await.len();
    pages.browser.reject_next("eth_signTypedData_v4").await;
    pages.browser.click_button(BUY).await;
    pages
        .browser
        .wait_in("[role=alert]", "You declined the request in your wallet")
        .await;
    pages.browser.screenshot("programs-market-declined").await;
    let asked = pages.browser.asks().await.split_off(from);
    assert_eq!(asked, [("eth_signTypedData_v4".to_owned(), true)]);
    assert_eq!(erc20.balanceOf(buyer).call().await.unwrap(), before);
    let declined = pages
        .api_ok(Method::GET, "/v1/market/orders", Some(&buyer_token), None)
        .await;
    let declined = &declined.as_array().unwrap()[0];
    assert_eq!(declined["state"], "awaiting_payment");
    let unopened: B256 = declined["chainEscrowId"].as_str().unwrap().parse().unwrap();
    let nothing = escrow.campaign(unopened).call().await.unwrap();
    assert_eq!((nothing.advertiser, nothing.remaining), (Address::ZERO, U256::ZERO));

    // Bought: one signature, one transaction.
    let from = pages.browser.asks().await.len();
    pages.browser.click_button(BUY).await;
    wait_long(&mut pages, "Paid: Espresso banner templates is yours").await;
    let asked = pages.browser.asks().await.split_off(from);
    assert_eq!(
        asked,
        [
            ("eth_signTypedData_v4".to_owned(), false),
            ("eth_sendTransaction".to_owned(), false)
        ]
    );
    let orders = pages
        .api_ok(Method::GET, "/v1/market/orders", Some(&buyer_token), None)
        .await;
    let paid = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["state"] == "paid")
        .unwrap_or_else(|| panic!("no paid order: {orders}"));
    assert_eq!(paid["itemId"], json!(item_id));
    assert_eq!(paid["price"], json!(PRICE.to_string()));
    let escrow_id: B256 = paid["chainEscrowId"].as_str().unwrap().parse().unwrap();
    let funded = escrow.campaign(escrow_id).call().await.unwrap();
    assert_eq!(funded.advertiser, buyer, "the buyer owns the order's escrow");
    assert_eq!(funded.token, token);
    assert_eq!(
        funded.remaining,
        U256::from(PRICE),
        "the escrow holds exactly the price"
    );
    assert_eq!(
        erc20.balanceOf(buyer).call().await.unwrap(),
        before - U256::from(PRICE),
        "the buyer paid exactly the price"
    );
    let licenses = pages
        .api_ok(Method::GET, "/v1/market/licenses", Some(&buyer_token), None)
        .await;
    let license = &licenses.as_array().unwrap()[0];
    assert_eq!(license["orderId"], paid["id"]);
    assert_eq!(license["valid"], json!(true));
    assert_eq!(
        keys_for(&pool, "/v1/market/orders").await,
        2,
        "each order went with a key of its own"
    );
    pages.browser.wait_in("#licenses", "ADL1.").await;
    pages.browser.screenshot("programs-market-paid").await;

    // The file, through a link the page asks for.
    pages.browser.click_button("Link to templates.txt").await;
    pages.browser.wait_for("Download templates.txt").await;
    let downloaded = pages
        .browser
        .eval("fetch(document.querySelector('a[download]').href).then((r) => r.text())")
        .await;
    assert_eq!(downloaded, json!(String::from_utf8_lossy(FILE)));
    pages.browser.screenshot("programs-market-download").await;

    // At a phone's width nothing is wider than the screen.
    let load = pages
        .assert_fits_phone("programs", "programs-phone", async |browser| {
            browser.wait_in("#orders", "paid").await;
            browser.screenshot("programs-phone").await;
        })
        .await;
    assert!(
        load.interactive_ms < 15_000.0,
        "interactive after {} ms",
        load.interactive_ms
    );

    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// A user shares the link the page shows; a new wallet that opens it and signs in is its
/// referral, in the API and on the referrer's page. An unknown code refuses the sign-in and
/// makes no account. The referrer then applies to be an affiliate.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_referral_link_brings_a_new_user(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    pages.sign_in(5).await;
    pages.open("programs", "programs-referrer").await;
    let code = pages.browser.text("#referral-code").await;
    let link = pages
        .browser
        .eval("document.getElementById('referral-link').href")
        .await;
    let link = link.as_str().unwrap().to_owned();
    assert_eq!(link, format!("{}?ref={code}", pages.url("")));
    pages.browser.click_button("Sign out").await;
    pages.browser.wait_for("Signed out.").await;

    // A code that is no one's: the sign-in is refused, and no account is made.
    let stranger = pages.wallet(7).await;
    pages.browser.open(&format!("{}?ref=ZZZZZZZZ", pages.url(""))).await;
    pages.browser.click_button("Connect adescrow test wallet").await;
    pages.browser.click_button("Sign in").await;
    pages.browser.wait_in("[role=alert]", "referral").await;
    pages.browser.screenshot("referral-unknown-code").await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE address = $1")
        .bind(stranger.as_slice())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0, "a refused sign-in makes no account");

    // The shared link.
    pages.wallet(6).await;
    pages.browser.open(&link).await;
    pages.browser.screenshot("referral-link-landing").await;
    pages.browser.click_button("Connect adescrow test wallet").await;
    pages.browser.click_button("Sign in").await;
    pages.browser.wait_for("Signed in as").await;
    let referrer = pages.api_token(5).await;
    let page = pages
        .api_ok(Method::GET, "/v1/referrals/me/referrals", Some(&referrer), None)
        .await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["referrals"][0]["channel"], "code");
    let search = pages.browser.eval("location.search").await;
    assert_eq!(search, "", "the code leaves the address bar once it counted");

    // The same user through the same link later: signed in, the code does not count twice.
    pages.browser.click_button("Sign out").await;
    pages.browser.wait_for("Signed out.").await;
    pages.browser.open(&link).await;
    pages.browser.click_button("Sign in").await;
    pages.browser.wait_for("The referral code did not count").await;
    pages.browser.wait_for("Signed in as").await;
    let page = pages
        .api_ok(Method::GET, "/v1/referrals/me/referrals", Some(&referrer), None)
        .await;
    assert_eq!(page["total"], 1, "{page}");

    // The referrer sees it on the page.
    pages.wallet(5).await;
    pages.open("programs", "programs-referrer-again").await;
    pages.browser.click_button("Connect adescrow test wallet").await;
    pages.browser.click_button("Sign in").await;
    pages.browser.wait_in("#referral-count", "1").await;
    pages.browser.screenshot("programs-referrer-referred").await;

    // The referrer also applies to be an affiliate; an admin decides.
    pages
        .browser
        .fill("How you will bring advertisers", "Coffee roasters I advise.")
        .await;
    pages.browser.click_button("Apply").await;
    pages.browser.wait_in("#affiliate-status", "pending").await;
    let affiliate = pages
        .api_ok(Method::GET, "/v1/affiliates/me", Some(&referrer), None)
        .await;
    assert_eq!(affiliate["status"], "pending");
    pages.browser.screenshot("programs-affiliate-applied").await;

    pages.browser.close().await;
    pages.devnet.stop().await;
}

/// A seller lists an item from the page: a draft at its price, refused for sale without a
/// file, then a file and published; the public listing has it as made.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_seller_lists_an_item_from_the_page(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    let token = pages.test_token();
    pages.sign_in(3).await;
    pages.open("programs", "programs-seller").await;
    pages.browser.click_button("Become a seller").await;
    pages.browser.wait_for("You are now a seller.").await;
    pages.browser.click("#new-item summary").await;
    pages.browser.fill("Title", "Autumn audience study").await;
    pages.browser.fill("Description", "Visits by region.").await;
    pages.browser.select("Item category", "audience_research").await;
    pages.browser.fill("Price", "2.5").await;
    pages.browser.fill("Price token", &token.to_checksum(None)).await;
    pages.browser.click_button("Create draft").await;
    pages.browser.wait_for("Draft Autumn audience study made").await;

    // Not for sale without a file.
    pages.browser.click_button("Publish").await;
    pages.browser.wait_in("[role=alert]", "(state)").await;
    pages.browser.screenshot("programs-seller-draft").await;
    let listed = pages.get("/v1/market/items").await;
    assert_eq!(listed["items"], json!([]), "a draft is not listed");

    // The file, chosen as a user would pick it.
    let chosen = pages
        .browser
        .eval(
            "(() => { const input = document.querySelector('#seller-items input[type=file]');
               const files = new DataTransfer();
               files.items.add(new File(['north 12, south 7\\n'], 'visits.txt', { type: 'text/plain' }));
               input.files = files.files; return input.files.length; })()",
        )
        .await;
    assert_eq!(chosen, json!(1));
    pages.browser.click_button("Add file").await;
    pages
        .browser
        .wait_for("visits.txt added to Autumn audience study.")
        .await;
    pages.browser.click_button("Publish").await;
    pages.browser.wait_for("Autumn audience study is listed.").await;
    pages.browser.screenshot("programs-seller-published").await;

    let listed = pages.get("/v1/market/items").await;
    let item = &listed["items"][0];
    assert_eq!(item["title"], "Autumn audience study");
    assert_eq!(item["category"], "audience_research");
    assert_eq!(item["state"], "published");
    assert_eq!(item["prices"], json!([{ "token": token, "price": "2500000" }]));
    assert_eq!(item["files"][0]["name"], "visits.txt");
    assert_eq!(item["files"][0]["size"], 18);

    pages.browser.close().await;
    pages.devnet.stop().await;
}

fn at(offset: time::Duration) -> String {
    (OffsetDateTime::now_utc() + offset).format(&Rfc3339).unwrap()
}

/// An admin publishes a fee discount; an advertiser looks its code up on the page and
/// redeems it on its campaign; the API records the redemption. An unknown code shows no
/// offer and redeems nothing, and a second redemption is past the limit. The advertiser
/// then joins an agency in business by its code.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_advertiser_redeems_a_promotion_and_joins_a_reseller(pool: PgPool) {
    let mut pages = Pages::start(pool.clone()).await;
    // Anvil's first account is the devnet's operator, an admin.
    let admin = pages.api_token(0).await;
    pages
        .api_ok(
            Method::POST,
            "/v1/admin/promotions",
            Some(&admin),
            Some(json!({
                "code": "SPRING-25",
                "name": "Spring fee discount",
                "offer": { "kind": "feeDiscount", "bps": 5000, "days": 30 },
                "startsAt": at(-time::Duration::hours(1)),
                "endsAt": at(time::Duration::days(30)),
                "publish": true,
            })),
        )
        .await;
    let advertiser = pages.api_token_with_role(8, "advertiser").await;
    let brand = pages
        .api_ok(
            Method::POST,
            "/v1/brands",
            Some(&advertiser),
            Some(
                json!({ "name": "Spring coffee", "dailyBudget": "1000000000", "monthlyBudget": "10000000000", "timeZone": "UTC" }),
            ),
        )
        .await;
    let campaign = pages
        .api_ok(
            Method::POST,
            "/v1/campaigns",
            Some(&advertiser),
            Some(json!({
                "brandId": brand["id"], "name": "Spring mornings", "token": pages.test_token(),
                "startsAt": at(-time::Duration::minutes(1)), "endsAt": at(time::Duration::days(7)),
            })),
        )
        .await;
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();

    pages.sign_in(8).await;
    pages.open("programs", "programs-advertiser").await;

    // A code that is no promotion's.
    pages.browser.fill("Promotion code", "WINTER-99").await;
    pages.browser.click_button("Show promotion").await;
    pages.browser.wait_in("[role=alert]", "promotion").await;
    pages.browser.screenshot("programs-promotion-unknown").await;

    pages.browser.fill("Promotion code", "spring-25").await;
    pages.browser.click_button("Show promotion").await;
    pages
        .browser
        .wait_in("#promotion", "50% off the platform's fee for 30 days")
        .await;
    pages.browser.select("Campaign", &campaign_id).await;
    pages.browser.screenshot("programs-promotion-shown").await;
    pages.browser.click_button("Redeem").await;
    pages.browser.wait_for("Redeemed SPRING-25.").await;
    pages.browser.wait_in("#redemptions", "Spring mornings").await;
    pages.browser.screenshot("programs-promotion-redeemed").await;

    let redemptions = pages
        .api_ok(Method::GET, "/v1/me/promotions", Some(&advertiser), None)
        .await;
    let redemptions = redemptions.as_array().unwrap();
    assert_eq!(redemptions.len(), 1, "{redemptions:?}");
    assert_eq!(redemptions[0]["code"], "SPRING-25");
    assert_eq!(redemptions[0]["campaignId"], json!(campaign_id));
    assert_eq!(redemptions[0]["offer"], "feeDiscount");
    assert_eq!(redemptions[0]["discountBps"], 5000);
    assert_eq!(
        keys_for(&pool, "/v1/promotions/{code}/redemptions").await,
        1,
        "the redemption went with an Idempotency-Key"
    );

    // Redeeming again is past the promotion's limit of one per advertiser: refused, and
    // still one redemption.
    pages.browser.click_button("Redeem").await;
    pages.browser.wait_in("[role=alert]", "code").await;
    let again = pages
        .api_ok(Method::GET, "/v1/me/promotions", Some(&advertiser), None)
        .await;
    assert_eq!(again.as_array().unwrap().len(), 1);

    // An agency whose contract an admin approved and activated.
    let agency = pages.api_token(9).await;
    let reseller = pages
        .api_ok(
            Method::POST,
            "/v1/resellers/me",
            Some(&agency),
            Some(json!({ "name": "Roasters Media", "application": "We bring coffee brands" })),
        )
        .await;
    let contract = pages
        .api_ok(
            Method::POST,
            "/v1/resellers/me/contracts",
            Some(&agency),
            Some(
                json!({ "startsAt": at(-time::Duration::hours(1)), "endsAt": at(time::Duration::days(365)),
                        "terms": "Platform fee by volume tier." }),
            ),
        )
        .await;
    let contract = contract["id"].as_str().unwrap();
    let to = |status: &str| Some(json!({ "status": status, "reason": format!("to {status}") }));
    pages
        .api_ok(
            Method::POST,
            &format!("/v1/resellers/me/contracts/{contract}/status"),
            Some(&agency),
            to("pending_approval"),
        )
        .await;
    for status in ["approved", "active"] {
        pages
            .api_ok(
                Method::POST,
                &format!("/v1/admin/reseller-contracts/{contract}/status"),
                Some(&admin),
                to(status),
            )
            .await;
    }

    // A code that is no reseller's, then the agency's.
    pages.browser.fill("Reseller code", "RES22222222").await;
    pages.browser.click_button("Join reseller").await;
    pages.browser.wait_in("[role=alert]", "reseller").await;
    pages
        .browser
        .fill("Reseller code", reseller["code"].as_str().unwrap())
        .await;
    pages.browser.click_button("Join reseller").await;
    pages.browser.wait_for("You joined Roasters Media.").await;
    pages.browser.wait_in("#membership", "Roasters Media").await;
    pages.browser.screenshot("programs-reseller-joined").await;
    let membership = pages
        .api_ok(Method::GET, "/v1/resellers/join", Some(&advertiser), None)
        .await;
    assert_eq!(membership["reseller"], "Roasters Media");
    assert_eq!(membership["via"], "code");

    pages.browser.close().await;
    pages.devnet.stop().await;
}

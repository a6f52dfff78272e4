//! The advertiser page: brands and campaigns over the API, the escrow funded from the wallet
//! with one permit signature and one transaction, topped up, closed and withdrawn, and the
//! campaign's analytics as charts.

use std::time::Duration;

use adescrow::contracts::{AdEscrow, TestToken};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::{Address, B256, U256};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Pages, units};
use crate::fixtures::bill;

/// What the test token mints to the advertiser: 1,000 tUSD (6 decimals).
const MINTED: u128 = 1_000_000_000;
/// The budget the tests fund with: 25 tUSD.
const BUDGET: u128 = 25_000_000;

/// A signed-in advertiser on the advertiser page, holding `MINTED` of the test token.
struct Advertiser {
    pages: Pages,
    account: Address,
    token: Address,
    escrow: Address,
    /// The page's session's access token, to ask the API what the advertiser sees.
    session: String,
}

/// `AdEscrow.campaign`.
struct OnChain {
    token: Address,
    end: u64,
    remaining: U256,
    advertiser: Address,
}

/// The campaign the page created.
struct Created {
    id: Uuid,
    chain_id: B256,
}

impl Advertiser {
    /// A devnet whose escrow has `grace` as its grace period; anvil's account 3 signs in,
    /// gets tokens and takes the advertiser role on the page.
    async fn start(pool: &PgPool, grace: Duration) -> Advertiser {
        let mut pages = Pages::start_with(pool.clone(), grace).await;
        let token = pages.test_token();
        let escrow = pages.devnet.deployment.ad_escrow.address;
        // Campaigns pay in tokens the platform prices: an admin's defaults, as PUT /v1/pricing
        // stores them.
        sqlx::query(
            "INSERT INTO default_prices (token, event, price) VALUES ($1, 'impression', 1000), ($1, 'click', 50000)",
        )
        .bind(token.as_slice())
        .execute(pool)
        .await
        .unwrap();
        let account = pages.sign_in(3).await;
        pages.mint(account, MINTED).await;
        pages.open("advertiser", "advertiser-without-role").await;
        pages.browser.click_button("Become an advertiser").await;
        pages.browser.wait_for("New brand").await;
        let session = pages.page_token().await;
        Advertiser {
            pages,
            account,
            token,
            escrow,
            session,
        }
    }

    /// Creates a brand and a campaign under it through the page's forms.
    async fn create_campaign(&mut self, pool: &PgPool) -> Created {
        let browser = &mut self.pages.browser;
        browser.fill("Brand name", "Acme Coffee").await;
        browser.select("Time zone", "UTC").await;
        browser.fill("Daily budget", "100").await;
        browser.fill("Monthly budget", "1000").await;
        browser.click_button("Create brand").await;
        browser.wait_for("Brand Acme Coffee created.").await;
        let (daily, monthly, zone): (String, String, String) =
            sqlx::query_as("SELECT daily_budget::text, monthly_budget::text, time_zone FROM brands")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            (daily.as_str(), monthly.as_str(), zone.as_str()),
            ("100000000", "1000000000", "UTC")
        );

        browser.fill("Campaign name", "Morning espresso").await;
        browser.click_button("Create campaign").await;
        browser.wait_for("Campaign Morning espresso created as a draft").await;
        browser.screenshot("advertiser-campaign-created").await;
        let (id, chain_id, token, status): (Uuid, Vec<u8>, Vec<u8>, String) =
            sqlx::query_as("SELECT id, chain_campaign_id, token, status::text FROM campaigns")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            Address::from_slice(&token),
            self.token,
            "the campaign pays in the priced token"
        );
        assert_eq!(status, "draft");
        Created {
            id,
            chain_id: B256::from_slice(&chain_id),
        }
    }

    /// Funds the shown campaign's escrow with `amount` (tUSD, as typed) through the page.
    async fn fund(&mut self, amount: &str) {
        self.pages.browser.fill("Budget", amount).await;
        self.pages.browser.click_button("Fund with permit").await;
    }

    async fn balance(&self) -> U256 {
        TestToken::new(self.token, self.pages.chain())
            .balanceOf(self.account)
            .call()
            .await
            .unwrap()
    }

    async fn on_chain(&self, campaign: &Created) -> OnChain {
        let c = AdEscrow::new(self.escrow, self.pages.chain())
            .campaign(campaign.chain_id)
            .call()
            .await
            .unwrap();
        OnChain {
            token: c.token,
            end: c.end.to(),
            remaining: c.remaining,
            advertiser: c.advertiser,
        }
    }

    /// How many wallet requests of `method` the page made, and how many of those were refused.
    async fn calls(&mut self, method: &str) -> (usize, usize) {
        let calls = self.pages.browser.wallet_calls().await;
        let of: Vec<_> = calls.iter().filter(|(m, _)| m == method).collect();
        (of.len(), of.iter().filter(|(_, rejected)| *rejected).count())
    }

    async fn status(pool: &PgPool, campaign: &Created) -> String {
        sqlx::query_scalar("SELECT status::text FROM campaigns WHERE id = $1")
            .bind(campaign.id)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.pages.browser.close().await;
        self.pages.devnet.stop().await;
    }
}

/// An advertiser creates a brand and a campaign, funds its escrow with exactly one permit
/// signature and one transaction, then tops it up; the chain, the token balance and the
/// API's mirror all show it.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_advertiser_funds_a_campaign_with_one_permit_and_tops_it_up(pool: PgPool) {
    let mut a = Advertiser::start(&pool, Duration::from_secs(86_400)).await;
    let campaign = a.create_campaign(&pool).await;
    let before = a.balance().await;
    assert_eq!(before, U256::from(MINTED));

    a.fund("25").await;
    let shown = a.pages.browser.wait_for("Escrow funded with 25 tUSD (permit)").await;
    a.pages.browser.screenshot("advertiser-funded").await;
    assert_eq!(a.calls("eth_signTypedData_v4").await, (1, 0), "one permit signature");
    assert_eq!(a.calls("eth_sendTransaction").await, (1, 0), "one transaction");
    let tx = a.pages.browser.text("#last-tx").await;
    assert!(
        shown.contains(&tx) && tx.len() == 66,
        "the page shows the transaction hash: {shown}"
    );

    let escrow = a.on_chain(&campaign).await;
    assert_eq!(escrow.remaining, U256::from(BUDGET));
    assert_eq!(escrow.advertiser, a.account);
    assert_eq!(escrow.token, a.token);
    assert_eq!(
        before - a.balance().await,
        U256::from(BUDGET),
        "the wallet paid exactly the budget"
    );
    let path = format!("/v1/escrow/campaigns/{}", campaign.chain_id);
    let mirrored = a
        .pages
        .api_until(&path, Some(&a.session), |m| m["funded"] == json!(BUDGET.to_string()))
        .await;
    assert_eq!(mirrored["remaining"], json!(BUDGET.to_string()));
    assert_eq!(mirrored["advertiser"], json!(a.account.to_checksum(None)), "{mirrored}");
    a.pages.browser.wait_in("#escrow-remaining", "25 tUSD").await;
    // The page waited for the mirror: what the API says the campaign may spend is the budget.
    assert_eq!(a.pages.browser.text("#escrow-available").await, "25 tUSD");

    // A top-up: the permit's allowance went into the escrow, so an approval comes first.
    a.pages.browser.fill("Top-up amount", "5.5").await;
    a.pages.browser.click_button("Top up").await;
    a.pages.browser.wait_for("Escrow topped up with 5.5 tUSD").await;
    a.pages.browser.wait_in("#escrow-remaining", "30.5 tUSD").await;
    a.pages.browser.screenshot("advertiser-topped-up").await;
    let top_up = 5_500_000u128;
    assert_eq!(a.on_chain(&campaign).await.remaining, U256::from(BUDGET + top_up));
    assert_eq!(before - a.balance().await, U256::from(BUDGET + top_up));
    assert_eq!(a.calls("eth_signTypedData_v4").await, (1, 0), "no new signature");
    assert_eq!(a.calls("eth_sendTransaction").await, (3, 0), "approve and fund");
    a.pages
        .api_until(&path, Some(&a.session), |m| {
            m["funded"] == json!((BUDGET + top_up).to_string())
        })
        .await;

    // Editing: a PATCH of what changed; the start, untouched, keeps its seconds.
    let starts = "SELECT starts_at::text FROM campaigns";
    let started: String = sqlx::query_scalar(starts).fetch_one(&pool).await.unwrap();
    a.pages.browser.click("details summary").await;
    a.pages.browser.fill("Name", "Morning espresso, large").await;
    a.pages.browser.fill("Priority", "40").await;
    a.pages.browser.click_button("Save changes").await;
    a.pages.browser.wait_for("Morning espresso, large saved.").await;
    let (name, priority): (String, i32) = sqlx::query_as("SELECT name, priority FROM campaigns")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((name.as_str(), priority), ("Morning espresso, large", 40));
    let still: String = sqlx::query_scalar(starts).fetch_one(&pool).await.unwrap();
    assert_eq!(still, started);
    a.pages.browser.screenshot("advertiser-edited").await;
    a.stop().await;
}

/// Declining the permit in the wallet shows why and changes nothing: no transaction, no
/// escrow, no tokens moved. Funding again then works.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_declined_permit_changes_nothing_and_funding_again_works(pool: PgPool) {
    let mut a = Advertiser::start(&pool, Duration::from_secs(86_400)).await;
    let campaign = a.create_campaign(&pool).await;
    let before = a.balance().await;

    a.pages.browser.reject_next("eth_signTypedData_v4").await;
    a.fund("25").await;
    a.pages
        .browser
        .wait_in("[role=alert]", "You declined the request in your wallet")
        .await;
    a.pages.browser.screenshot("advertiser-permit-declined").await;
    assert_eq!(
        a.calls("eth_signTypedData_v4").await,
        (1, 1),
        "the one signature was declined"
    );
    assert_eq!(a.calls("eth_sendTransaction").await, (0, 0), "nothing was sent");
    assert_eq!(
        a.on_chain(&campaign).await.token,
        Address::ZERO,
        "the escrow is not open"
    );
    assert_eq!(a.balance().await, before, "no tokens moved");

    // The form kept the budget: funding again signs and sends.
    a.pages.browser.click_button("Fund with permit").await;
    a.pages.browser.wait_for("Escrow funded with 25 tUSD (permit)").await;
    assert_eq!(a.calls("eth_signTypedData_v4").await, (2, 1));
    assert_eq!(a.calls("eth_sendTransaction").await, (1, 0));
    assert_eq!(a.on_chain(&campaign).await.remaining, U256::from(BUDGET));
    assert_eq!(before - a.balance().await, U256::from(BUDGET));
    a.pages.browser.screenshot("advertiser-funded-after-decline").await;
    a.stop().await;
}

/// The status actions, then closing the escrow early: a countdown runs through the grace
/// period, and Withdraw brings the whole unspent budget back to the wallet.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_closed_campaign_counts_down_and_withdraws_the_rest(pool: PgPool) {
    // A grace period short enough to wait out, long enough to see the countdown under load.
    let mut a = Advertiser::start(&pool, Duration::from_secs(5)).await;
    let campaign = a.create_campaign(&pool).await;
    a.fund("25").await;
    a.pages.browser.wait_for("Escrow funded with 25 tUSD").await;

    // Scheduled and funded, inside its dates: the scheduler starts it.
    a.pages.browser.click_button("Schedule").await;
    a.pages.browser.wait_for("Morning espresso is ").await;
    for _ in 0..100 {
        if Advertiser::status(&pool, &campaign).await == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(Advertiser::status(&pool, &campaign).await, "running");
    a.pages.open("advertiser", "advertiser-running").await;
    a.pages.browser.wait_in("#campaign-status", "Running").await;
    a.pages.browser.click_button("Pause").await;
    a.pages.browser.wait_for("Morning espresso is paused.").await;
    assert_eq!(Advertiser::status(&pool, &campaign).await, "paused");
    a.pages.browser.screenshot("advertiser-paused").await;
    a.pages.browser.click_button("Resume").await;
    a.pages.browser.wait_for("Morning espresso is running.").await;
    assert_eq!(Advertiser::status(&pool, &campaign).await, "running");

    let before = a.balance().await;
    a.pages.browser.click_button("Close campaign").await;
    a.pages.browser.wait_for("Escrow closed").await;
    let first = a
        .pages
        .browser
        .wait_in("#withdraw-countdown", "Withdrawal opens in")
        .await;
    a.pages.browser.screenshot("advertiser-countdown").await;
    assert!(first.contains("00:00:0"), "a countdown of seconds: {first}");
    let escrow = a.on_chain(&campaign).await;
    assert!(
        escrow.end <= OffsetDateTime::now_utc().unix_timestamp() as u64 + 2,
        "closed now"
    );

    // The countdown ends on its own (the page re-renders each second), and Withdraw shows.
    a.pages.browser.click_button("Withdraw").await;
    a.pages.browser.wait_for("Withdrew 25 tUSD").await;
    a.pages.browser.screenshot("advertiser-withdrawn").await;
    assert_eq!(
        a.balance().await - before,
        U256::from(BUDGET),
        "the whole budget came back"
    );
    assert_eq!(a.on_chain(&campaign).await.remaining, U256::ZERO);
    assert_eq!(a.pages.browser.text("#escrow-available").await, "0 tUSD");
    let path = format!("/v1/escrow/campaigns/{}", campaign.chain_id);
    a.pages
        .api_until(&path, Some(&a.session), |m| m["withdrawn"] == json!(BUDGET.to_string()))
        .await;

    a.pages.browser.click_button("Complete").await;
    a.pages.browser.wait_for("Morning espresso is completed.").await;
    assert_eq!(Advertiser::status(&pool, &campaign).await, "completed");
    a.pages.browser.screenshot("advertiser-completed").await;
    a.stop().await;
}

/// Charts of billed events by the brand's local day and by node: each chart draws (a canvas
/// in its figure) and its data table shows the API's numbers. The page fits a phone.
#[sqlx::test(migrator = "MIGRATOR")]
async fn analytics_charts_show_the_apis_numbers(pool: PgPool) {
    let mut a = Advertiser::start(&pool, Duration::from_secs(86_400)).await;
    let campaign = a.create_campaign(&pool).await;
    a.pages.browser.wait_for("Spend by day (UTC)").await;
    let empty = a
        .pages
        .browser
        .eval("document.querySelectorAll('figure.chart canvas').length")
        .await;
    assert_eq!(empty, json!(0), "nothing to draw yet");
    a.pages.browser.wait_for("Nothing yet.").await;
    a.pages.browser.screenshot("advertiser-analytics-empty").await;

    // Billed impressions, as billing records them (the receipts tests cover how they come
    // about): two yesterday and three today, in the brand's zone (UTC).
    let ad_set = a
        .pages
        .api_ok(
            Method::POST,
            "/v1/ad-sets",
            Some(&a.session),
            Some(json!({ "campaignId": campaign.id, "name": "Mornings" })),
        )
        .await;
    let ad = a
        .pages
        .api_ok(
            Method::POST,
            "/v1/ads",
            Some(&a.session),
            Some(json!({
                "adSetId": ad_set["id"],
                "name": "Espresso banner",
                "creative": { "kind": "text", "title": "Espresso, 7 to 10", "clickUrl": "https://coffee.example/" },
                "prices": { "cpm": "1000000", "cpc": "50000" },
            })),
        )
        .await;
    let ad = ad["id"].as_str().unwrap().to_owned();
    let noon = OffsetDateTime::now_utc().replace_time(time::Time::from_hms(12, 0, 0).unwrap());
    let id = campaign.id.to_string();
    for (price, at) in [
        (1_000, noon - time::Duration::DAY),
        (1_500, noon - time::Duration::DAY),
        (1_000, noon),
        (2_000, noon),
        (2_500, noon),
    ] {
        bill(&pool, &id, &ad, price, at).await;
    }

    a.pages.open("advertiser", "advertiser-analytics").await;
    a.pages.browser.wait_for("Spend by day (UTC)").await;
    let canvases = a
        .pages
        .browser
        .eval("[...document.querySelectorAll('figure.chart')].filter((f) => f.querySelector('canvas')).length")
        .await;
    assert_eq!(canvases, json!(4), "every chart drew");
    let path = format!("/v1/campaigns/{}/analytics", campaign.id);
    let api = a.pages.api_until(&path, Some(&a.session), |_| true).await;
    let tables = a
        .pages
        .browser
        .eval(
            "Object.fromEntries([...document.querySelectorAll('figure.chart')].map((f) => [
                f.querySelector('figcaption').textContent,
                [...f.querySelectorAll('details tbody tr')].map((r) => [...r.children].map((c) => c.textContent.trim())),
            ]))",
        )
        .await;

    let days = api["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{api}");
    let mut spend = Vec::new();
    let mut counts = Vec::new();
    let mut ctr = Vec::new();
    for day in days {
        // The row's label: the API's local date as this browser writes dates.
        let (y, m, d) = {
            let date = day["date"].as_str().unwrap();
            (&date[..4], &date[5..7], &date[8..10])
        };
        let label = a
            .pages
            .browser
            .eval(&format!("new Date({y}, {m} - 1, {d}).toLocaleDateString()"))
            .await;
        let label = label.as_str().unwrap().to_owned();
        spend.push(json!([
            label,
            units(day["spend"].as_str().unwrap().parse().unwrap(), 6, "")
        ]));
        counts.push(json!([
            label,
            day["impressions"].to_string(),
            day["clicks"].to_string()
        ]));
        ctr.push(json!([label, format!("{:.2}%", day["ctr"].as_f64().unwrap() * 100.0)]));
    }
    assert_eq!(tables["Spend by day (UTC)"], json!(spend), "{tables}");
    assert_eq!(tables["Impressions and clicks by day (UTC)"], json!(counts), "{tables}");
    assert_eq!(tables["Click-through rate by day (UTC)"], json!(ctr), "{tables}");
    assert_eq!(spend[0][1], json!("0.0025"), "yesterday's two impressions");
    assert_eq!(spend[1][1], json!("0.0055"), "today's three");
    let nodes: Vec<Value> = api["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            json!([
                format!("node {}", &n["nodeId"].as_str().unwrap()[..8]),
                units(n["spend"].as_str().unwrap().parse().unwrap(), 6, "")
            ])
        })
        .collect();
    assert_eq!(nodes.len(), 1);
    assert_eq!(tables["Spend by node"], json!(nodes), "{tables}");

    // The unsettled part of the budget is what was billed: nothing is settled yet.
    a.pages.browser.wait_in("#escrow-unsettled", "0.008 tUSD").await;
    a.pages.browser.click("figure.chart details summary").await;
    a.pages.browser.screenshot("advertiser-analytics-data").await;

    a.pages
        .assert_fits_phone("advertiser", "advertiser-phone", async |browser| {
            browser.wait_for("Spend by day (UTC)").await;
            browser.screenshot("advertiser-phone-analytics").await;
        })
        .await;
    a.stop().await;
}

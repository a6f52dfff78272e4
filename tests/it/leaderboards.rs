//! Leaderboards through the API: scores booked by period in the declared zones, ranks with
//! ties, the caller's own rank, frozen periods, and every bad request refused by name.

use adescrow::leaderboards::Category;
use adescrow::leaderboards::store::freeze_ended;
use adescrow::leaderboards::tally::{self, Tally};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::*;

const TOKEN: Address = Address::repeat_byte(0x70);

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

async fn book(pool: &PgPool, at: OffsetDateTime, scores: &[(Category, Address, u128)]) {
    let mut tally = Tally::default();
    for (category, subject, score) in scores {
        tally.add(*category, TOKEN, *subject, *score);
    }
    let mut conn = pool.acquire().await.unwrap();
    tally::record_declared(&mut conn, at, &tally).await.unwrap();
}

fn subjects(page: &Value) -> Vec<(u64, String, String)> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["rank"].as_u64().unwrap(),
                e["subject"].as_str().unwrap().to_lowercase(),
                e["score"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn hex(address: Address) -> String {
    format!("{address:#x}")
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn boards_rank_with_ties_page_and_show_the_caller_its_neighbours(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let wallets: Vec<PrivateKeySigner> = (0..5).map(|_| PrivateKeySigner::random()).collect();
    let mut by_address: Vec<Address> = wallets.iter().map(|w| w.address()).collect();
    by_address.sort();
    let [a, b, c, d, e] = by_address[..] else {
        unreachable!()
    };
    let now = OffsetDateTime::now_utc();
    // c and b tie for second; e has nothing on this board.
    book(
        &pool,
        now,
        &[(Category::HosterEarnings, a, 900), (Category::HosterEarnings, b, 500)],
    )
    .await;
    book(
        &pool,
        now,
        &[(Category::HosterEarnings, c, 500), (Category::HosterEarnings, d, 100)],
    )
    .await;
    book(&pool, now, &[(Category::ImpressionsServed, e, 3)]).await;

    let path = format!("/v1/leaderboards/hoster_earnings?period=day&token={TOKEN}&perPage=2");
    let first = app.get(&path, None).await;
    assert_eq!(first.ok()["total"], 4);
    assert_eq!(
        subjects(&first.body),
        [(1, hex(a), "900".into()), (2, hex(b), "500".into())]
    );
    let second = app.get(&format!("{path}&page=2"), None).await;
    assert_eq!(
        subjects(second.ok()),
        [(2, hex(c), "500".into()), (4, hex(d), "100".into())]
    );
    // Booked in the same day, week, month and all time.
    for period in ["week", "month", "all"] {
        let board = app
            .get(
                &format!("/v1/leaderboards/hoster_earnings?period={period}&token={TOKEN}"),
                None,
            )
            .await;
        assert_eq!(board.ok()["total"], 4, "{period}");
    }
    let counts = app.get("/v1/leaderboards/impressions_served?period=month", None).await;
    assert_eq!(subjects(counts.ok()), [(1, hex(e), "3".into())]);

    // The caller's own rank, with a neighbour on each side.
    let wallet = wallets.iter().find(|w| w.address() == c).unwrap();
    let token = app.token(wallet).await;
    let mine = app
        .get(
            &format!("/v1/leaderboards/hoster_earnings/me?period=day&token={TOKEN}&neighbours=1"),
            Some(&token),
        )
        .await;
    assert_eq!(mine.ok()["entry"]["rank"], 2);
    assert_eq!(
        subjects(&json_wrap(&mine.body["around"])),
        [
            (2, hex(b), "500".into()),
            (2, hex(c), "500".into()),
            (4, hex(d), "100".into())
        ]
    );
    let anonymous = app
        .get(&format!("/v1/leaderboards/hoster_earnings/me?token={TOKEN}"), None)
        .await;
    anonymous.problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Bad requests name their field; boards that cannot exist are not found.
    let t = format!("token={TOKEN}");
    for (query, field) in [
        ("/v1/leaderboards/likes".to_owned(), "category"),
        (format!("/v1/leaderboards/hoster_earnings?period=year&{t}"), "period"),
        (
            format!("/v1/leaderboards/hoster_earnings?date=2026-02-30&period=day&{t}"),
            "date",
        ),
        (
            format!("/v1/leaderboards/hoster_earnings?zone=Mars/Olympus&{t}"),
            "zone",
        ),
        (format!("/v1/leaderboards/hoster_earnings?{t}&perPage=101"), "perPage"),
    ] {
        let refused = app.get(&query, None).await;
        assert_eq!(
            refused.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field,
            "{query}"
        );
    }
    for query in [
        format!("/v1/leaderboards/hoster_earnings?zone=Asia/Tokyo&{t}"),
        "/v1/leaderboards/hoster_earnings".to_owned(),
        format!("/v1/leaderboards/impressions_served?{t}"),
        format!("/v1/leaderboards/hoster_earnings?{t}&page=3&perPage=2"),
    ] {
        app.get(&query, None).await.problem(StatusCode::NOT_FOUND, "not-found");
    }
    let catalog = app.get("/v1/leaderboards", None).await;
    assert_eq!(catalog.ok()["zones"], serde_json::json!(["UTC"]));
}

fn json_wrap(entries: &Value) -> Value {
    serde_json::json!({ "entries": entries })
}

/// A period that has ended is frozen with the hash of its ranking, and what is booked
/// later lands in the later period: the frozen one reads the same, and its hash still
/// matches.
#[sqlx::test(migrator = "MIGRATOR")]
async fn an_ended_period_is_frozen_and_later_scores_leave_it_unchanged(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let (x, y) = (Address::repeat_byte(0x01), Address::repeat_byte(0x02));
    book(
        &pool,
        at("2026-11-03T10:00:00Z"),
        &[(Category::SellerSales, x, 70), (Category::SellerSales, y, 30)],
    )
    .await;
    let path = format!("/v1/leaderboards/seller_sales?period=day&date=2026-11-03&token={TOKEN}");
    let before = app.get(&path, None).await.ok().clone();
    assert_eq!(before["frozen"], Value::Null);

    // Ten minutes past the day's end nothing is frozen yet; after that, it is.
    assert_eq!(freeze_ended(&pool, at("2026-11-04T00:05:00Z")).await.unwrap(), 0);
    let frozen = freeze_ended(&pool, at("2026-12-01T00:00:00Z")).await.unwrap();
    assert!(frozen >= 1, "the day, its ISO week and its month");
    assert_eq!(
        freeze_ended(&pool, at("2026-12-01T00:00:00Z")).await.unwrap(),
        0,
        "once"
    );

    book(&pool, at("2026-11-04T09:00:00Z"), &[(Category::SellerSales, y, 500)]).await;
    let after = app.get(&path, None).await.ok().clone();
    assert_eq!(after["entries"], before["entries"], "the frozen day reads the same");
    assert_eq!(after["frozen"]["entries"], 2);
    let hash = adescrow::leaderboards::ranking::Ranked::new(vec![(x, 70), (y, 30)], None).hash();
    assert_eq!(after["frozen"]["hash"], format!("{hash:#x}"));
    let next = app
        .get(
            &format!("/v1/leaderboards/seller_sales?period=day&date=2026-11-04&token={TOKEN}"),
            None,
        )
        .await;
    assert_eq!(subjects(next.ok()), [(1, hex(y), "500".into())]);
}

/// Boards are kept in each declared zone: an instant near midnight falls on different days
/// in Berlin and in UTC, and Berlin's day across the DST change is 23 hours long.
#[sqlx::test(migrator = "MIGRATOR")]
async fn each_declared_zone_keeps_its_own_days_across_dst(pool: PgPool) {
    let app = TestApp::with(pool.clone(), |config| {
        config.leaderboard_zones = vec!["UTC".into(), "Europe/Berlin".into()];
    });
    tally::declare(&pool, &app.state.leaderboard_zones).await.unwrap();
    let x = Address::repeat_byte(0x0a);
    // 29 March 2026, the day Berlin moves to summer time, ends at 22:00 UTC.
    book(&pool, at("2026-03-29T21:59:59Z"), &[(Category::WitnessWork, x, 1)]).await;
    book(&pool, at("2026-03-29T22:00:00Z"), &[(Category::WitnessWork, x, 10)]).await;
    let score = |zone: &str, date: &str| {
        let app = app.clone();
        let path = format!("/v1/leaderboards/witness_work?period=day&zone={zone}&date={date}");
        async move { app.get(&path, None).await.ok()["entries"][0]["score"].clone() }
    };
    assert_eq!(score("Europe/Berlin", "2026-03-29").await, "1");
    assert_eq!(score("Europe/Berlin", "2026-03-30").await, "10");
    assert_eq!(score("UTC", "2026-03-29").await, "11", "both on the same UTC day");
    let board = app
        .get(
            "/v1/leaderboards/witness_work?period=day&zone=Europe/Berlin&date=2026-03-29",
            None,
        )
        .await;
    assert_eq!(board.ok()["endsAt"], "2026-03-29T22:00:00Z");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_prize_pays_the_top_of_a_frozen_period_once_from_its_budget(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool.clone(), |config| config.admin_addresses = vec![admin.address()]);
    let admin_token = app.token(&admin).await;
    let budget: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token, owner, ends_at, name)
         VALUES ('program', decode(repeat('b1', 32), 'hex'), $1, $1, now() + interval '30 days', 'prizes')
         RETURNING id",
    )
    .bind(TOKEN.as_slice())
    .fetch_one(&pool)
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let (a, b, c, d) = (
        Address::repeat_byte(0xa1),
        Address::repeat_byte(0xb2),
        Address::repeat_byte(0xb3),
        Address::repeat_byte(0xd4),
    );
    book(
        &pool,
        now,
        &[
            (Category::ImpressionsServed, a, 500),
            (Category::ImpressionsServed, b, 300),
            (Category::ImpressionsServed, c, 300),
            (Category::ImpressionsServed, d, 100),
        ],
    )
    .await;
    let today = now.date().to_string();
    let request = |period: &str, date: &str, budget: uuid::Uuid, amounts: &[&str]| {
        serde_json::json!({
            "category": "impressions_served", "period": period, "date": date, "budget": budget, "amounts": amounts
        })
    };
    let declared = app
        .post(
            "/v1/admin/leaderboard-prizes",
            Some(&admin_token),
            request("day", &today, budget, &["1000", "500", "250"]),
        )
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.text);
    // A board nobody scores on: its prize is settled, paying nobody, once the day is over.
    let empty = serde_json::json!({
        "category": "witness_work", "period": "day", "date": &today, "budget": budget, "amounts": ["5"]
    });
    app.post("/v1/admin/leaderboard-prizes", Some(&admin_token), empty)
        .await
        .ok();
    for (body, status, slug) in [
        (request("day", &today, budget, &["1"]), StatusCode::CONFLICT, "conflict"),
        (
            request("all", &today, budget, &["1"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            request("day", "2020-01-01", budget, &["1"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            request("week", &today, budget, &["0"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            request("week", &today, uuid::Uuid::new_v4(), &["1"]),
            StatusCode::NOT_FOUND,
            "not-found",
        ),
    ] {
        app.post("/v1/admin/leaderboard-prizes", Some(&admin_token), body)
            .await
            .problem(status, slug);
    }
    let stranger = app.token(&PrivateKeySigner::random()).await;
    app.post(
        "/v1/admin/leaderboard-prizes",
        Some(&stranger),
        request("month", &today, budget, &["1"]),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");

    // Nothing is paid before the board is frozen; then once, however often the freezer runs.
    assert_eq!(
        adescrow::leaderboards::prizes::pay_frozen(&pool, CHAIN_ID, now)
            .await
            .unwrap(),
        0
    );
    freeze_ended(&pool, now + time::Duration::days(2)).await.unwrap();
    assert_eq!(
        adescrow::leaderboards::prizes::pay_frozen(&pool, CHAIN_ID, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        adescrow::leaderboards::prizes::pay_frozen(&pool, CHAIN_ID, now)
            .await
            .unwrap(),
        0
    );
    let later = now + time::Duration::days(2);
    assert_eq!(
        adescrow::leaderboards::prizes::pay_frozen(&pool, CHAIN_ID, later)
            .await
            .unwrap(),
        1,
        "the empty board's prize, settled once its day is over"
    );
    assert_eq!(
        adescrow::leaderboards::prizes::pay_frozen(&pool, CHAIN_ID, later)
            .await
            .unwrap(),
        0
    );
    let unsettled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM leaderboard_prizes
         WHERE paid_at IS NULL OR (category = 'witness_work') = (posting_id IS NOT NULL)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unsettled, 0, "both settled; the empty board's with no posting");

    // The first three of the frozen ranking (the tie broken by address), from the budget,
    // held until the budget can cover it.
    let entries: Vec<(String, Option<Vec<u8>>, String)> = sqlx::query_as(
        "SELECT e.role::text, e.payee, e.amount::text FROM ledger_entries e JOIN ledger_postings p ON p.id = e.posting_id
         WHERE p.source = 'program' ORDER BY e.amount DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        entries,
        [
            ("winner".to_owned(), Some(a.to_vec()), "1000".to_owned()),
            ("winner".to_owned(), Some(b.to_vec()), "500".to_owned()),
            ("winner".to_owned(), Some(c.to_vec()), "250".to_owned()),
            ("escrow".to_owned(), None, "-1750".to_owned()),
        ]
    );
    let hold: String = sqlx::query_scalar(
        "SELECT h.reason::text FROM ledger_holds h JOIN ledger_postings p ON p.id = h.posting_id WHERE p.source = 'program'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(hold, "budget_empty", "the budget was never funded on chain");
}

//! Earnings statements through the API: lines and balances per period in the payee's zone
//! (a month across a DST change), a closed period frozen and unchanged by a late posting,
//! CSV, the platform's statement, and every bad or forbidden request refused by name.

use adescrow::platform::db::MIGRATOR;
use adescrow::statements::roller;
use alloy::primitives::{Address, keccak256};
use alloy::signers::local::PrivateKeySigner;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::support::*;

const TOKEN: Address = Address::repeat_byte(0x70);
/// The platform's payee in the tests' configuration.
const PLATFORM: Address = Address::repeat_byte(0xfa);

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

/// An escrow account of `kind` ('order' or 'program') to spend from.
async fn escrow(pool: &PgPool, kind: &str) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token, owner, ends_at, price, name)
         VALUES ($1::escrow_kind, decode(md5(random()::text) || md5(random()::text), 'hex'), $2, $2, now(),
                 CASE WHEN $1 = 'order' THEN 1000 END, CASE WHEN $1 = 'program' THEN 'prizes' END)
         RETURNING id",
    )
    .bind(kind)
    .bind(TOKEN.as_slice())
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Books a posting at `posted_at` (as if the ledger had written it then): `escrow` spends
/// what the payees earn.
async fn book(pool: &PgPool, posted_at: &str, source: &str, escrow: Option<Uuid>, entries: &[(&str, Address, i64)]) {
    let mut tx = pool.begin().await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ledger_postings (token, source, source_id, posted_at)
         VALUES ($1, $2::posting_source, gen_random_uuid()::text, $3) RETURNING id",
    )
    .bind(TOKEN.as_slice())
    .bind(source)
    .bind(at(posted_at))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // The ledger checks each statement's entries balance: one statement for them all.
    let earned: i64 = entries.iter().map(|(_, _, amount)| amount).sum();
    let mut roles: Vec<String> = entries.iter().map(|(party, _, _)| party.to_string()).collect();
    let mut payees: Vec<Option<Vec<u8>>> = entries.iter().map(|(_, payee, _)| Some(payee.to_vec())).collect();
    let mut amounts: Vec<i64> = entries.iter().map(|(_, _, amount)| *amount).collect();
    let mut escrows: Vec<Option<Uuid>> = vec![None; entries.len()];
    if let Some(escrow) = escrow {
        roles.push("escrow".into());
        payees.push(None);
        amounts.push(-earned);
        escrows.push(Some(escrow));
    }
    sqlx::query(
        "INSERT INTO ledger_entries (posting_id, role, escrow_id, payee, amount)
         SELECT $1, role::ledger_role, escrow, payee, amount
         FROM UNNEST($2::text[], $3::uuid[], $4::bytea[], $5::bigint[]) AS e(role, escrow, payee, amount)",
    )
    .bind(id)
    .bind(&roles)
    .bind(&escrows)
    .bind(&payees)
    .bind(&amounts)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[derive(Deserialize)]
struct Served<'a> {
    #[serde(borrow)]
    statement: &'a RawValue,
    hash: Option<String>,
}

/// A statement as served; its raw `statement` text and hash.
async fn read(app: &TestApp, token: &str, query: &str) -> (Value, String, Option<String>) {
    let reply = app.get(&format!("/v1/statements/me?{query}"), Some(token)).await;
    let body = reply.ok().clone();
    let served: Served<'_> = serde_json::from_str(&reply.text).unwrap();
    (body, served.statement.get().to_owned(), served.hash)
}

fn lines(statement: &Value) -> Vec<(String, String)> {
    statement["statement"]["tokens"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["line"].as_str().unwrap().to_owned(),
                l["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn balances(statement: &Value) -> (String, String) {
    let token = &statement["statement"]["tokens"][0];
    (
        token["opening"].as_str().unwrap().to_owned(),
        token["closing"].as_str().unwrap().to_owned(),
    )
}

fn pair(line: &str, amount: &str) -> (String, String) {
    (line.to_owned(), amount.to_owned())
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_month_in_berlin_ends_at_its_local_midnight_across_dst_and_a_closed_one_stays_frozen(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let seller = PrivateKeySigner::random();
    let payee = seller.address();
    let token = app.token(&seller).await;
    let order = escrow(&pool, "order").await;
    // Berlin moves to summer time on 29 March 2026: March ends there at 22:00 UTC.
    book(
        &pool,
        "2026-03-29T00:30:00Z",
        "order_sale",
        Some(order),
        &[("seller", payee, 100)],
    )
    .await;
    book(
        &pool,
        "2026-03-31T21:59:59Z",
        "order_sale",
        Some(order),
        &[("seller", payee, 200)],
    )
    .await;
    book(
        &pool,
        "2026-03-31T22:00:00Z",
        "order_sale",
        Some(order),
        &[("seller", payee, 400)],
    )
    .await;
    book(
        &pool,
        "2026-04-02T10:00:00Z",
        "clawback",
        None,
        &[("seller", payee, -50), ("platform", PLATFORM, 50)],
    )
    .await;
    roller::catch_up(&pool, OffsetDateTime::now_utc()).await.unwrap();

    let berlin = "period=month&zone=Europe/Berlin";
    let (march, march_text, march_hash) = read(&app, &token, &format!("{berlin}&date=2026-03-15")).await;
    assert_eq!(lines(&march), [pair("marketplace_sales", "300")], "{march}");
    assert_eq!(balances(&march), ("0".into(), "300".into()));
    assert_eq!(march["statement"]["startsAt"], "2026-02-28T23:00:00Z");
    assert_eq!(march["statement"]["endsAt"], "2026-03-31T22:00:00Z");
    assert_eq!(march["closed"], true, "March 2026 has long ended");
    assert_eq!(
        march_hash.as_deref(),
        Some(keccak256(march_text.as_bytes()).to_string().as_str()),
        "the hash is of the bytes served"
    );
    let (april, ..) = read(&app, &token, &format!("{berlin}&date=2026-04-01")).await;
    assert_eq!(
        lines(&april),
        [pair("marketplace_sales", "400"), pair("adjustments", "-50")]
    );
    assert_eq!(balances(&april), ("300".into(), "650".into()));
    // In UTC, 31 March 22:00 is still March.
    let (utc, ..) = read(&app, &token, "date=2026-03-15").await;
    assert_eq!(lines(&utc), [pair("marketplace_sales", "700")]);
    // ISO weeks and days in the zone: the week of Monday 30 March holds both month ends.
    let (week, ..) = read(&app, &token, "period=week&zone=Europe/Berlin&date=2026-04-01").await;
    assert_eq!(lines(&week)[0], pair("marketplace_sales", "600"));
    assert_eq!(week["statement"]["startsOn"], "2026-03-30");

    // A posting found booked in March after March closed is counted at the sealed mark, in
    // the open period; March is served byte for byte as frozen.
    book(
        &pool,
        "2026-03-20T00:00:00Z",
        "order_sale",
        Some(order),
        &[("seller", payee, 25)],
    )
    .await;
    roller::catch_up(&pool, OffsetDateTime::now_utc()).await.unwrap();
    let (again, again_text, again_hash) = read(&app, &token, &format!("{berlin}&date=2026-03-15")).await;
    assert_eq!((again_text, again_hash), (march_text, march_hash));
    assert_eq!(lines(&again), [pair("marketplace_sales", "300")]);
    let sealed: OffsetDateTime = sqlx::query_scalar("SELECT sealed_before FROM statement_progress")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (open, ..) = read(&app, &token, &format!("date={}", sealed.date())).await;
    assert_eq!(lines(&open), [pair("marketplace_sales", "25")], "{open}");
    assert_eq!(open["closed"], false);

    // Every statement's closing is the ledger's balance as of its end.
    let ledger: String = sqlx::query_scalar("SELECT (released + held)::text FROM payee_balances WHERE payee = $1")
        .bind(payee.as_slice())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(balances(&open).1, ledger);
    assert_eq!(ledger, "675");

    // The same statement as CSV.
    let csv = app
        .get(&format!("/v1/statements/me/csv?{berlin}&date=2026-03-15"), Some(&token))
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{:?}",
        csv.headers
    );
    let rows: Vec<&str> = csv.text.lines().collect();
    assert_eq!(rows[0], "token,kind,item,node,placement,detail,amount");
    let checksummed = TOKEN.to_checksum(None);
    assert!(
        rows.contains(&format!("{checksummed},line,marketplace_sales,,,,300").as_str()),
        "{rows:?}"
    );
    assert!(
        rows.contains(&format!("{checksummed},balance,closing,,,,300").as_str()),
        "{rows:?}"
    );
    assert!(
        rows.contains(&format!("{checksummed},state,released,,,,300").as_str()),
        "{rows:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_platform_sees_fees_commissions_and_program_spend_and_statements_are_private(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool.clone(), |config| config.admin_addresses = vec![admin.address()]);
    let admin_token = app.token(&admin).await;
    let (seller, affiliate, referrer) = (
        PrivateKeySigner::random(),
        Address::repeat_byte(0xaf),
        Address::repeat_byte(0xbe),
    );
    let seller_token = app.token(&seller).await;
    let (order, budget) = (escrow(&pool, "order").await, escrow(&pool, "program").await);
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    book(
        &pool,
        &now,
        "order_sale",
        Some(order),
        &[("seller", seller.address(), 900), ("platform", PLATFORM, 100)],
    )
    .await;
    book(
        &pool,
        &now,
        "transfer",
        None,
        &[("platform", PLATFORM, -30), ("affiliate", affiliate, 30)],
    )
    .await;
    book(&pool, &now, "referral", Some(budget), &[("referrer", referrer, 250)]).await;
    // Not rolled yet: statements read the ledger's tail.
    let platform = app.get("/v1/admin/platform-statement", Some(&admin_token)).await;
    let tokens = &platform.ok()["statement"]["tokens"][0];
    assert_eq!(
        (
            &tokens["grossFees"],
            &tokens["commissionsPaid"],
            &tokens["programSpend"],
            &tokens["net"]
        ),
        (
            &Value::from("100"),
            &Value::from("-30"),
            &Value::from("250"),
            &Value::from("-180")
        ),
        "{}",
        platform.text
    );
    roller::catch_up(&pool, OffsetDateTime::now_utc()).await.unwrap();
    let rolled = app.get("/v1/admin/platform-statement", Some(&admin_token)).await;
    assert_eq!(
        rolled.ok()["statement"],
        platform.body["statement"],
        "the buckets agree with the ledger"
    );
    let (mine, ..) = read(&app, &seller_token, "").await;
    assert_eq!(lines(&mine), [pair("marketplace_sales", "900")]);

    // Another payee's statement is private: admins only; the platform's too.
    app.get(&format!("/v1/admin/statements/{affiliate}"), Some(&seller_token))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let for_admin = app
        .get(
            &format!("/v1/admin/statements/{}", seller.address()),
            Some(&admin_token),
        )
        .await;
    assert_eq!(for_admin.ok()["statement"], mine["statement"]);
    // The zero address keeps what program budgets spend: it is the platform's, not a payee's.
    app.get(&format!("/v1/admin/statements/{}", Address::ZERO), Some(&admin_token))
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    app.get("/v1/admin/platform-statement", Some(&seller_token))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    app.get("/v1/statements/me", None)
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Bad periods, dates and zones are refused by name.
    let path = "/v1/statements/me";
    for (query, field) in [
        ("period=all", "period"),
        ("period=year", "period"),
        ("date=2026-02-30", "date"),
        ("zone=Mars/Olympus", "zone"),
    ] {
        let reply = app.get(&format!("{path}?{query}"), Some(&seller_token)).await;
        let problem = reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
}

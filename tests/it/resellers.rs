//! White-label resellers over HTTP against real Postgres: the contract workflow and its
//! record, a domain proven by a TXT record (through a resolver double) and the branding it
//! serves, advertisers joining within the end-user quota, and API calls counted against the
//! monthly quota, at the boundary and under concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use adescrow::platform::db::MIGRATOR;
use adescrow::programs::resellers::branding::{BoxFuture, TxtResolver};
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;

use crate::support::{Reply, TestApp};

/// TXT records a test publishes.
#[derive(Debug, Clone, Default)]
pub struct TxtRecords(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl TxtRecords {
    pub fn publish(&self, name: &str, text: &str) {
        self.0
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .push(text.to_owned());
    }
}

impl TxtResolver for TxtRecords {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
        let found = self.0.lock().unwrap().get(name).cloned();
        Box::pin(async move { found.ok_or_else(|| "NXDOMAIN".to_owned()) })
    }
}

fn at(offset: time::Duration) -> String {
    (OffsetDateTime::now_utc() + offset).format(&Rfc3339).unwrap()
}

/// The API with an admin, and TXT records the test publishes.
pub struct Resellers {
    pub app: TestApp,
    pub admin: String,
    pub dns: TxtRecords,
}

impl Resellers {
    pub async fn new(pool: PgPool) -> Self {
        let admin = PrivateKeySigner::random();
        let mut app = TestApp::with(pool, |config| config.admin_addresses = vec![admin.address()]);
        let dns = TxtRecords::default();
        app.state.resolver = Arc::new(dns.clone());
        app.router = adescrow::http::app(app.state.clone());
        let admin = app.token(&admin).await;
        Self { app, admin, dns }
    }

    /// A new agency that applied, with a contract an admin approved and activated, running
    /// from an hour ago. Returns its token and its reseller document.
    pub async fn active_reseller(&self, name: &str) -> (String, Value) {
        let token = self.app.token(&PrivateKeySigner::random()).await;
        let reseller = self
            .app
            .post(
                "/v1/resellers/me",
                Some(&token),
                json!({ "name": name, "application": "We bring brands" }),
            )
            .await
            .ok()
            .clone();
        let contract = self.draft(&token).await;
        let id = contract["id"].as_str().unwrap();
        self.own_move(&token, id, "pending_approval").await.ok();
        self.admin_move(id, "approved").await.ok();
        self.admin_move(id, "active").await.ok();
        (token, reseller)
    }

    async fn draft(&self, token: &str) -> Value {
        self.app
            .post(
                "/v1/resellers/me/contracts",
                Some(token),
                json!({ "startsAt": at(-time::Duration::hours(1)), "endsAt": at(time::Duration::days(365)),
                        "terms": "Platform fee by volume tier; markup paid monthly through the claim." }),
            )
            .await
            .ok()
            .clone()
    }

    async fn own_move(&self, token: &str, contract: &str, status: &str) -> Reply {
        self.app
            .post(
                &format!("/v1/resellers/me/contracts/{contract}/status"),
                Some(token),
                json!({ "status": status, "reason": format!("to {status}") }),
            )
            .await
    }

    pub async fn admin_move(&self, contract: &str, status: &str) -> Reply {
        self.app
            .post(
                &format!("/v1/admin/reseller-contracts/{contract}/status"),
                Some(&self.admin),
                json!({ "status": status, "reason": format!("to {status}") }),
            )
            .await
    }

    pub async fn set_quotas(&self, reseller: &Value, quotas: Value) {
        self.app
            .call(
                Method::PUT,
                &format!("/v1/admin/resellers/{}/quotas", reseller["id"].as_str().unwrap()),
                Some(&self.admin),
                Some(quotas),
            )
            .await
            .ok();
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.app.call(Method::PUT, path, Some(token), Some(body)).await
    }

    /// A request with a `Host` header.
    async fn at_host(&self, method: Method, path: &str, host: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, host);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.app.send(request.unwrap()).await
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_contract_moves_through_its_workflow_with_every_change_recorded(pool: PgPool) {
    let world = Resellers::new(pool.clone()).await;
    let app = &world.app;
    let agency = app.token(&PrivateKeySigner::random()).await;
    let applied = app
        .post(
            "/v1/resellers/me",
            Some(&agency),
            json!({ "name": "North Agency", "application": "Twenty brands in the north" }),
        )
        .await;
    assert_eq!(applied.status, StatusCode::CREATED, "{}", applied.text);
    assert!(applied.body["code"].as_str().unwrap().starts_with("RES"));
    assert_eq!(applied.body["active"], false);
    let again = app
        .post(
            "/v1/resellers/me",
            Some(&agency),
            json!({ "name": "Again", "application": "x" }),
        )
        .await;
    assert_eq!(again.problem(StatusCode::CONFLICT, "conflict")["field"], "name");

    let first = world.draft(&agency).await;
    assert_eq!(
        (first["version"].clone(), first["status"].clone()),
        (json!(1), json!("draft"))
    );
    let id = first["id"].as_str().unwrap().to_owned();
    world.own_move(&agency, &id, "pending_approval").await.ok();
    let self_approval = world.own_move(&agency, &id, "approved").await;
    assert_eq!(
        self_approval.problem(StatusCode::CONFLICT, "conflict")["field"],
        "status"
    );
    assert!(self_approval.text.contains("by its reseller"), "{}", self_approval.text);
    let stranger = app.token(&PrivateKeySigner::random()).await;
    assert_eq!(
        world.own_move(&stranger, &id, "draft").await.status,
        StatusCode::NOT_FOUND,
        "another's contract is not found"
    );
    world.admin_move(&id, "approved").await.ok();
    assert_eq!(world.admin_move(&id, "active").await.ok()["status"], "active");
    let dashboard = app.get("/v1/resellers/me", Some(&agency)).await;
    assert_eq!(dashboard.ok()["reseller"]["active"], true);

    // A second version cannot be approved while the first is live.
    let second = world.draft(&agency).await;
    assert_eq!(second["version"], 2);
    let second = second["id"].as_str().unwrap().to_owned();
    world.own_move(&agency, &second, "pending_approval").await.ok();
    let live = world.admin_move(&second, "approved").await;
    assert!(
        live.problem(StatusCode::CONFLICT, "conflict")["detail"]
            .as_str()
            .unwrap()
            .contains("terminate it first")
    );
    let ended = world.own_move(&agency, &id, "terminated").await;
    assert_eq!(ended.ok()["status"], "terminated");
    let changes: Vec<(Value, Value)> = ended.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["to"].clone(), c["reason"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("draft"), json!("drafted")),
            (json!("pending_approval"), json!("to pending_approval")),
            (json!("approved"), json!("to approved")),
            (json!("active"), json!("to active")),
            (json!("terminated"), json!("to terminated")),
        ]
    );
    world.admin_move(&second, "approved").await.ok();
    world.admin_move(&second, "active").await.ok();

    // Past its end an active contract reads as expired, and nothing moves it.
    sqlx::query("UPDATE reseller_contracts SET starts_at = now() - interval '2 days', ends_at = now() - interval '1 day' WHERE id = $1::uuid")
        .bind(&second)
        .execute(&pool)
        .await
        .unwrap();
    let dashboard = app.get("/v1/resellers/me", Some(&agency)).await;
    assert_eq!(dashboard.ok()["contracts"][0]["status"], "expired");
    assert_eq!(dashboard.body["reseller"]["active"], false);
    world
        .admin_move(&second, "terminated")
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let bad = app
        .post(
            "/v1/resellers/me/contracts",
            Some(&agency),
            json!({ "startsAt": at(time::Duration::days(2)), "endsAt": at(time::Duration::days(1)), "terms": "x" }),
        )
        .await;
    assert_eq!(
        bad.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "endsAt"
    );
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM reseller_contract_changes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(changes, 5 + 4, "refusals record nothing");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_domain_serves_the_branding_only_once_its_txt_record_proves_it(pool: PgPool) {
    let world = Resellers::new(pool.clone()).await;
    let app = &world.app;
    let (agency, _) = world.active_reseller("North Agency").await;
    let branding = world
        .put(
            "/v1/resellers/me/branding",
            &agency,
            json!({ "logoUrl": "https://north.example/logo.svg", "primaryColour": "#0A6CFF",
                    "supportContact": "help@north.example" }),
        )
        .await;
    assert_eq!(branding.ok()["primaryColour"], "#0a6cff");
    let bad = world
        .put("/v1/resellers/me/branding", &agency, json!({ "primaryColour": "blue" }))
        .await;
    assert_eq!(
        bad.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "primaryColour"
    );

    let claimed = world
        .put(
            "/v1/resellers/me/domain",
            &agency,
            json!({ "domain": "Ads.North.Example" }),
        )
        .await;
    let claimed = claimed.ok().clone();
    assert_eq!(claimed["name"], "ads.north.example");
    assert_eq!(claimed["recordName"], "_adescrow-challenge.ads.north.example");
    assert!(claimed["verifiedAt"].is_null());

    // Unproven: refused, and the host serves no branding.
    let unproven = app
        .post("/v1/resellers/me/domain/verify", Some(&agency), json!({}))
        .await;
    assert_eq!(unproven.problem(StatusCode::CONFLICT, "conflict")["field"], "domain");
    world
        .dns
        .publish("_adescrow-challenge.ads.north.example", "adescrow-verify=wrong");
    let wrong = app
        .post("/v1/resellers/me/domain/verify", Some(&agency), json!({}))
        .await;
    assert!(wrong.text.contains("no TXT record"), "{}", wrong.text);
    let here = world
        .at_host(Method::GET, "/v1/branding", "ads.north.example", None, None)
        .await;
    assert_eq!(here.status, StatusCode::NOT_FOUND);

    world.dns.publish(
        "_adescrow-challenge.ads.north.example",
        claimed["recordValue"].as_str().unwrap(),
    );
    let proven = app
        .post("/v1/resellers/me/domain/verify", Some(&agency), json!({}))
        .await;
    assert!(proven.ok()["verifiedAt"].is_string(), "{}", proven.text);
    let here = world
        .at_host(Method::GET, "/v1/branding", "ADS.north.example:443", None, None)
        .await;
    assert_eq!(here.ok()["name"], "North Agency");
    assert_eq!(here.body["logoUrl"], "https://north.example/logo.svg");
    let docs = world
        .at_host(Method::GET, "/docs", "ads.north.example", None, None)
        .await;
    assert!(
        docs.text.contains("<title>North Agency API</title>"),
        "the docs under its name"
    );
    let plain = app.get("/docs", None).await;
    assert!(plain.text.contains("<title>adescrow API</title>"));

    // The domain is its own: another agency cannot claim it.
    let (other, _) = world.active_reseller("South Agency").await;
    let taken = world
        .put(
            "/v1/resellers/me/domain",
            &other,
            json!({ "domain": "ads.north.example" }),
        )
        .await;
    assert_eq!(taken.problem(StatusCode::CONFLICT, "conflict")["field"], "domain");

    // An advertiser who comes by the domain joins the reseller without its code.
    let advertiser = app.token_with_role(&PrivateKeySigner::random(), "advertiser").await;
    let joined = world
        .at_host(
            Method::POST,
            "/v1/resellers/join",
            "ads.north.example",
            Some(&advertiser),
            Some(json!({})),
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.text);
    assert_eq!(
        (joined.body["reseller"].clone(), joined.body["via"].clone()),
        (json!("North Agency"), json!("domain"))
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn advertisers_join_within_the_end_user_quota_even_all_at_once(pool: PgPool) {
    let world = Resellers::new(pool.clone()).await;
    let app = &world.app;
    let (_, reseller) = world.active_reseller("North Agency").await;
    world
        .set_quotas(&reseller, json!({ "endUsersSoft": 3, "endUsersHard": 5 }))
        .await;
    let code = reseller["code"].as_str().unwrap().to_lowercase();
    let mut advertisers = Vec::new();
    for _ in 0..10 {
        advertisers.push(app.token_with_role(&PrivateKeySigner::random(), "advertiser").await);
    }
    let mut requests = JoinSet::new();
    for token in advertisers.clone() {
        let (app, code) = (app.clone(), code.clone());
        requests.spawn(async move {
            let reply = app
                .post("/v1/resellers/join", Some(&token), json!({ "code": code }))
                .await;
            (token, reply)
        });
    }
    let replies = requests.join_all().await;
    let joined: Vec<&(String, Reply)> = replies
        .iter()
        .filter(|(_, r)| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(joined.len(), 5, "exactly the hard quota");
    let warned = joined
        .iter()
        .filter(|(_, r)| r.headers.contains_key("quota-warning"))
        .count();
    assert_eq!(warned, 2, "the 4th and 5th are past the soft quota");
    for (_, refused) in replies.iter().filter(|(_, r)| r.status != StatusCode::CREATED) {
        let problem = refused.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
        assert_eq!(problem["field"], "endUsers");
        assert!(refused.headers.contains_key(header::RETRY_AFTER));
    }
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM reseller_members")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(members, 5, "a refused join writes nothing");

    // A second join, an unknown code, or a reseller out of business: refused, naming it.
    let (member, _) = joined[0];
    let again = app
        .post("/v1/resellers/join", Some(member), json!({ "code": code }))
        .await;
    assert_eq!(again.problem(StatusCode::CONFLICT, "conflict")["field"], "code");
    let unknown = app
        .post("/v1/resellers/join", Some(member), json!({ "code": "RES23456789" }))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let dormant = app.token(&PrivateKeySigner::random()).await;
    let dormant = app
        .post(
            "/v1/resellers/me",
            Some(&dormant),
            json!({ "name": "Dormant", "application": "Not yet" }),
        )
        .await;
    let (outsider, _) = replies.iter().find(|(_, r)| r.status != StatusCode::CREATED).unwrap();
    let closed = app
        .post(
            "/v1/resellers/join",
            Some(outsider),
            json!({ "code": dormant.ok()["code"] }),
        )
        .await;
    assert!(
        closed.problem(StatusCode::CONFLICT, "conflict")["detail"]
            .as_str()
            .unwrap()
            .contains("not in business")
    );
    let dashboard = app
        .get(
            &format!("/v1/admin/resellers/{}", reseller["id"].as_str().unwrap()),
            Some(&world.admin),
        )
        .await;
    assert_eq!(dashboard.ok()["usage"][0]["endUsers"], 5);
    assert_eq!(dashboard.body["usage"][0]["members"], 5);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn api_calls_of_a_resellers_users_are_counted_warned_and_capped(pool: PgPool) {
    let world = Resellers::new(pool.clone()).await;
    let app = &world.app;
    let (_, reseller) = world.active_reseller("North Agency").await;
    world
        .set_quotas(&reseller, json!({ "apiCallsSoft": 2, "apiCallsHard": 4 }))
        .await;
    let advertiser = app.token_with_role(&PrivateKeySigner::random(), "advertiser").await;
    let code = reseller["code"].as_str().unwrap();
    let joined = app
        .post("/v1/resellers/join", Some(&advertiser), json!({ "code": code }))
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.text);
    // The join came before the membership; from now on every call counts.
    for used in 1..=4 {
        let reply = app.get("/v1/me", Some(&advertiser)).await;
        assert!(reply.ok()["id"].is_string());
        let warning = reply
            .headers
            .get("quota-warning")
            .map(|v| v.to_str().unwrap().to_owned());
        let expected = (used > 2).then(|| format!("apiCalls; used={used}; soft=2"));
        assert_eq!(warning, expected, "call {used}");
    }
    let over = app.get("/v1/me", Some(&advertiser)).await;
    assert_eq!(
        over.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited")["field"],
        "apiCalls"
    );
    assert!(over.text.contains("apiCalls quota"), "{}", over.text);
    assert!(over.headers.contains_key(header::RETRY_AFTER));

    // Under concurrency, a fresh month's hard quota of 10 lets exactly 10 calls through.
    sqlx::query("DELETE FROM reseller_usage").execute(&pool).await.unwrap();
    world.set_quotas(&reseller, json!({ "apiCallsHard": 10 })).await;
    let mut requests = JoinSet::new();
    for _ in 0..30 {
        let (app, token) = (app.clone(), advertiser.clone());
        requests.spawn(async move { app.get("/v1/me", Some(&token)).await.status });
    }
    let statuses = requests.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 10);
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(),
        20
    );
    // Callers who joined no reseller are not counted.
    let outsider = app.token(&PrivateKeySigner::random()).await;
    for _ in 0..12 {
        app.get("/v1/me", Some(&outsider)).await.ok();
    }
}

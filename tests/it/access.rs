//! Every route checks its caller: walks every operation of the OpenAPI document (which the
//! router generates) and calls it without a credential, with an API key of each role, and
//! with a wallet session, asserting that exactly the roles the operation declares get in.

use std::collections::BTreeMap;

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

const ROLES: [&str; 7] = [
    "advertiser",
    "hoster",
    "viewer",
    "admin",
    "seller",
    "buyer",
    "affiliate",
];

/// A well-formed value for each path parameter, so that a refusal can only be the policy's.
fn path_value(name: &str) -> String {
    match name {
        "id" | "file_id" => uuid::Uuid::new_v4().to_string(),
        "role" => "viewer".to_owned(),
        "token" | "account" | "user" | "address" => format!("{:#x}", alloy::primitives::Address::repeat_byte(0x11)),
        "campaign_id" | "campaignId" | "digest" => format!("{:#x}", alloy::primitives::B256::repeat_byte(0x22)),
        "slug" => "internal".to_owned(),
        "category" => "hoster_earnings".to_owned(),
        "code" => "PROMO23456789".to_owned(),
        other => panic!("path parameter `{other}` is new: give this test a well-formed value for it"),
    }
}

/// Who an operation admits, as its document declares it.
#[derive(Debug, PartialEq)]
enum Declared {
    Public,
    /// A session or an API key holding one of these roles.
    Roles(Vec<String>),
    /// A wallet session only (any role).
    WalletSession,
    NodeSession,
}

fn declared(operation: &Value) -> Declared {
    let Some(requirements) = operation["security"].as_array().filter(|list| !list.is_empty()) else {
        return Declared::Public;
    };
    assert_eq!(requirements.len(), 1, "one security requirement per operation");
    let (scheme, scopes) = requirements[0].as_object().unwrap().iter().next().unwrap();
    let scopes: Vec<String> = scopes
        .as_array()
        .unwrap()
        .iter()
        .map(|scope| scope.as_str().unwrap().to_owned())
        .collect();
    match scheme.as_str() {
        "bearer" => {
            assert!(
                !scopes.is_empty(),
                "bearer operations name the roles that admit a caller"
            );
            Declared::Roles(scopes)
        }
        "session" => Declared::WalletSession,
        "nodeSession" => Declared::NodeSession,
        other => panic!("unknown security scheme {other}"),
    }
}

async fn call(app: &TestApp, method: &Method, path: &str, credential: Option<&str>, has_body: bool) -> StatusCode {
    let mut request = Request::builder().method(method.clone()).uri(path);
    if let Some(credential) = credential {
        request = request.header(header::AUTHORIZATION, format!("Bearer {credential}"));
    }
    let body = if has_body {
        request = request.header(header::CONTENT_TYPE, "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    app.send(request.body(body).unwrap()).await.status
}

fn admitted(status: StatusCode) -> bool {
    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_route_refuses_a_caller_without_its_role(pool: PgPool) {
    let wallet = PrivateKeySigner::random();
    let address = wallet.address();
    let app = TestApp::with(pool, |config| config.admin_addresses = vec![address]);
    let session = app.token(&wallet).await;
    for role in ["advertiser", "hoster", "seller", "buyer"] {
        app.post("/v1/me/roles", Some(&session), json!({ "role": role }))
            .await
            .ok();
    }
    // Only an admin's approval grants the affiliate role.
    let me = app.get("/v1/me", Some(&session)).await.ok()["id"].clone();
    let me = me.as_str().unwrap();
    app.call(
        Method::PUT,
        &format!("/v1/admin/users/{me}/roles/affiliate"),
        Some(&session),
        None,
    )
    .await
    .ok();
    let mut keys = BTreeMap::new();
    for role in ROLES {
        let created = app
            .post("/v1/api-keys", Some(&session), json!({ "name": role, "role": role }))
            .await;
        keys.insert(role, created.ok()["secret"].as_str().unwrap().to_owned());
    }

    let document = serde_json::to_value(adescrow::http::openapi(&app.state)).unwrap();
    let mut checked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let path = template
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => path_value(name),
                    None => segment.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let what = format!("{method} {template}");
            let has_body = operation.get("requestBody").is_some();
            let anonymous = call(&app, &method, &path, None, has_body).await;
            match declared(operation) {
                Declared::Public => {
                    assert!(
                        admitted(anonymous),
                        "{what} is public but refused anonymous callers ({anonymous})"
                    );
                }
                Declared::NodeSession => {
                    assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what} without a node session");
                    for credential in keys.values().chain([&session]) {
                        let status = call(&app, &method, &path, Some(credential), has_body).await;
                        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} takes node sessions only");
                    }
                }
                Declared::WalletSession => {
                    assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what} without a credential");
                    for (role, key) in &keys {
                        let status = call(&app, &method, &path, Some(key), has_body).await;
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what} with a {role} API key");
                    }
                    let status = call(&app, &method, &path, Some(&session), has_body).await;
                    assert!(admitted(status), "{what} refused a wallet session ({status})");
                }
                Declared::Roles(roles) => {
                    assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what} without a credential");
                    for role in &roles {
                        assert!(ROLES.contains(&role.as_str()), "{what} names unknown role {role}");
                    }
                    // Refusals first, so that nothing an admitted call changes can matter.
                    for (role, key) in keys.iter().filter(|(role, _)| !roles.iter().any(|r| r == *role)) {
                        let status = call(&app, &method, &path, Some(key), has_body).await;
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what} with a {role} API key");
                    }
                    for (role, key) in keys.iter().filter(|(role, _)| roles.iter().any(|r| r == *role)) {
                        let status = call(&app, &method, &path, Some(key), has_body).await;
                        assert!(admitted(status), "{what} refused a {role} API key ({status})");
                    }
                    let status = call(&app, &method, &path, Some(&session), has_body).await;
                    assert!(
                        admitted(status),
                        "{what} refused a session holding every role ({status})"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "walked {checked} operations");
}

/// What the issue saw: a hoster key of an owner who is also an advertiser changed the
/// owner's campaign; now it is refused and nothing changes.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_key_of_another_role_cannot_act_on_the_owners_resources(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = crate::fixtures::Advertiser::new(&app, "UTC", 1_000_000, 10_000_000).await;
    app.post("/v1/me/roles", Some(&advertiser.token), json!({ "role": "hoster" }))
        .await
        .ok();
    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({})).await;
    let id = campaign["id"].as_str().unwrap();
    let history_path = format!("/v1/campaigns/{id}/history");
    let history = async || app.get(&history_path, Some(&advertiser.token)).await.ok().clone();
    let before = history().await;
    let hoster_key = app
        .post(
            "/v1/api-keys",
            Some(&advertiser.token),
            json!({ "name": "edge", "role": "hoster" }),
        )
        .await
        .ok()["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let completed = app
        .post(
            &format!("/v1/campaigns/{id}/status"),
            Some(&hoster_key),
            json!({ "status": "COMPLETED", "reason": "not mine to end" }),
        )
        .await;
    let problem = completed.problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(problem["detail"], "this needs the advertiser or admin role");
    let renamed = app
        .patch(
            &format!("/v1/brands/{}", advertiser.brand),
            Some(&hoster_key),
            json!({ "name": "x" }),
        )
        .await;
    renamed.problem(StatusCode::FORBIDDEN, "forbidden");
    app.get("/v1/campaigns", Some(&hoster_key))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");

    let after = app.get(&format!("/v1/campaigns/{id}"), Some(&advertiser.token)).await;
    assert_eq!(after.ok()["status"], "SCHEDULED");
    assert_eq!(history().await, before, "no change is recorded");
}

//! The node registry and role checks: hosters register their own keys with a proof of
//! possession, see only their own nodes, and admins manage roles.

use adescrow::accounts::nodes::registration_message;
use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

fn registration(owner: &PrivateKeySigner, node: &PrivateKeySigner, name: &str) -> Value {
    let message = registration_message(owner.address(), node.address(), CHAIN_ID);
    json!({
        "address": node.address(),
        "name": name,
        "canWitness": true,
        "signature": personal_sign(node, &message),
    })
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn hosters_register_and_manage_their_nodes(pool: PgPool) {
    let app = TestApp::new(pool);
    let hoster = PrivateKeySigner::random();
    let node_key = PrivateKeySigner::random();

    // Viewers may not register nodes.
    let viewer_token = app.token(&hoster).await;
    app.post(
        "/v1/nodes",
        Some(&viewer_token),
        registration(&hoster, &node_key, "edge"),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");

    let token = app.token_with_role(&hoster, "hoster").await;
    let created = app
        .post("/v1/nodes", Some(&token), registration(&hoster, &node_key, "edge"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["address"], node_key.address().to_checksum(None));
    assert_eq!(created.body["canWitness"], true);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // The same key cannot be registered twice, by anyone.
    let again = app
        .post("/v1/nodes", Some(&token), registration(&hoster, &node_key, "edge-2"))
        .await;
    assert_eq!(again.problem(StatusCode::CONFLICT, "conflict")["field"], "address");

    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/nodes/{id}"),
            Some(&token),
            Some(json!({ "canWitness": false, "name": "edge-eu" })),
        )
        .await;
    assert_eq!(patched.ok()["canWitness"], false);
    assert_eq!(patched.body["name"], "edge-eu");

    let retired = app
        .call(Method::DELETE, &format!("/v1/nodes/{id}"), Some(&token), None)
        .await;
    assert!(retired.ok()["retiredAt"].is_string());
    assert_eq!(
        app.get("/v1/nodes", Some(&token)).await.ok().as_array().unwrap().len(),
        1
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn registration_needs_a_proof_from_the_node_key(pool: PgPool) {
    let app = TestApp::new(pool);
    let hoster = PrivateKeySigner::random();
    let node_key = PrivateKeySigner::random();
    let token = app.token_with_role(&hoster, "hoster").await;

    // Signed by the owner instead of the node.
    let mut forged = registration(&hoster, &node_key, "edge");
    forged["signature"] = json!(personal_sign(
        &hoster,
        &registration_message(hoster.address(), node_key.address(), CHAIN_ID)
    ));
    let reply = app.post("/v1/nodes", Some(&token), forged).await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "signature"
    );

    // A proof made for another owner cannot be replayed.
    let someone = PrivateKeySigner::random();
    let replayed = registration(&someone, &node_key, "edge");
    let reply = app.post("/v1/nodes", Some(&token), replayed).await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "signature"
    );

    let mut bad_address = registration(&hoster, &node_key, "edge");
    bad_address["address"] = json!("0x1234");
    let reply = app.post("/v1/nodes", Some(&token), bad_address).await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "address"
    );
    assert_eq!(app.count("nodes").await, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn users_see_only_their_own_nodes_and_admins_see_all(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool, |c| c.admin_addresses = vec![admin.address()]);
    let hoster = PrivateKeySigner::random();
    let token = app.token_with_role(&hoster, "hoster").await;
    let created = app
        .post(
            "/v1/nodes",
            Some(&token),
            registration(&hoster, &PrivateKeySigner::random(), "edge"),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    let other = app.token_with_role(&PrivateKeySigner::random(), "hoster").await;
    app.get(&format!("/v1/nodes/{id}"), Some(&other))
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    app.call(
        Method::PATCH,
        &format!("/v1/nodes/{id}"),
        Some(&other),
        Some(json!({ "name": "mine" })),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    app.call(Method::DELETE, &format!("/v1/nodes/{id}"), Some(&other), None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(
        app.get("/v1/nodes", Some(&other)).await.ok().as_array().unwrap().len(),
        0
    );

    let admin_token = app.token(&admin).await;
    app.get(&format!("/v1/nodes/{id}"), Some(&admin_token)).await.ok();
    assert_eq!(
        app.get("/v1/nodes", Some(&admin_token))
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn roles_are_self_service_except_admin(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool, |c| c.admin_addresses = vec![admin.address()]);
    let user = PrivateKeySigner::random();
    let session = app.sign_in(&user).await;
    let token = session["accessToken"].as_str().unwrap().to_owned();
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();

    app.post("/v1/me/roles", Some(&token), json!({ "role": "admin" }))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    app.get(&format!("/v1/admin/users/{user_id}"), Some(&token))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    app.call(
        Method::PUT,
        &format!("/v1/admin/users/{user_id}/roles/admin"),
        Some(&token),
        None,
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");

    let roles = app
        .post("/v1/me/roles", Some(&token), json!({ "role": "advertiser" }))
        .await;
    assert_eq!(roles.ok()["roles"], json!(["advertiser", "viewer"]));

    // An admin grants and revokes; revoking a role disables API keys made for it.
    let admin_token = app.token(&admin).await;
    let granted = app
        .call(
            Method::PUT,
            &format!("/v1/admin/users/{user_id}/roles/hoster"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(granted.ok()["roles"], json!(["advertiser", "hoster", "viewer"]));
    let key = app
        .post("/v1/api-keys", Some(&token), json!({ "name": "n", "role": "hoster" }))
        .await;
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/v1/admin/users/{user_id}/roles/hoster"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.ok()["roles"], json!(["advertiser", "viewer"]));
    app.post(
        "/v1/nodes",
        Some(&secret),
        registration(&user, &PrivateKeySigner::random(), "edge"),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");

    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("/v1/admin/users/{unknown}"), Some(&admin_token))
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    app.call(
        Method::PUT,
        &format!("/v1/admin/users/{unknown}/roles/hoster"),
        Some(&admin_token),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    let bad = app
        .call(
            Method::PUT,
            &format!("/v1/admin/users/{user_id}/roles/overlord"),
            Some(&admin_token),
            None,
        )
        .await;
    bad.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
}

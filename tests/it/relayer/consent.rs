//! Gasless consent: checked, queued once, simulated, sent.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn gasless_consent_is_checked_queued_once_and_lands(pool: PgPool) {
    let world = World::new(pool).await;
    let registry = world.chain.deployment.consent_registry.address;
    let user = PrivateKeySigner::random();
    let scope = keccak256("personalized-ads");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let grant = |nonce: u64, signer: &PrivateKeySigner, deadline: u64| {
        let message = ConsentGrant {
            user: user.address(),
            scope,
            expiry: now + 86_400,
            nonce: U256::from(nonce),
            deadline: U256::from(deadline),
        };
        let digest = message.eip712_signing_hash(&consent_domain(CHAIN_ID, registry));
        let signature = signer.sign_hash_sync(&digest).unwrap();
        json!({
            "action": "grant", "user": user.address(), "scope": scope, "expiry": now + 86_400,
            "nonce": nonce.to_string(), "deadline": deadline.to_string(),
            "signature": format!("0x{}", hex::encode(signature.as_bytes())),
        })
    };

    let first = world.app.post("/v1/consent", None, grant(0, &user, now + 600)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let digest = first.body["digest"].as_str().unwrap().to_owned();
    let again = world.app.post("/v1/consent", None, grant(0, &user, now + 600)).await;
    assert_eq!(again.status, StatusCode::OK, "a duplicate returns the first request");
    assert_eq!(again.body["digest"], digest.as_str());

    // Refused before anything is queued.
    let stranger = PrivateKeySigner::random();
    let refusals = [
        (grant(0, &stranger, now + 600), "signature"),
        (grant(0, &user, now - 1), "deadline"),
        (
            {
                let mut body = grant(0, &user, now + 600);
                body.as_object_mut().unwrap().remove("expiry");
                body
            },
            "expiry",
        ),
        (
            {
                let mut body = grant(0, &user, now + 600);
                body["signature"] = json!("0x1234");
                body
            },
            "signature",
        ),
    ];
    for (body, field) in refusals {
        let reply = world.app.post("/v1/consent", None, body).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field
        );
    }
    // Signed right but for a nonce the registry will not take: it fails without gas spent.
    let wrong_nonce = world.app.post("/v1/consent", None, grant(7, &user, now + 600)).await;
    assert_eq!(wrong_nonce.status, StatusCode::ACCEPTED);
    let wrong_digest = wrong_nonce.body["digest"].as_str().unwrap().to_owned();

    let relayer = world.relayer(1);
    for _ in 0..5 {
        relayer.tick().await.unwrap();
        world.chain.mine(1).await;
    }
    let landed = world.app.get(&format!("/v1/consent/requests/{digest}"), None).await;
    assert_eq!(landed.ok()["status"], "confirmed", "{}", landed.text);
    assert!(landed.body["txHash"].is_string());
    let refused = world
        .app
        .get(&format!("/v1/consent/requests/{wrong_digest}"), None)
        .await;
    assert_eq!(refused.ok()["status"], "failed");
    assert!(refused.body["error"].as_str().unwrap().contains("registry refuses"));
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_attempts")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "only the valid request was signed and sent");

    let consent = ConsentRegistry::new(registry, world.chain.wallet(0));
    assert!(consent.hasConsent(user.address(), scope).call().await.unwrap());
    world
        .app
        .get(&format!("/v1/consent/requests/{}", B256::repeat_byte(9)), None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
}

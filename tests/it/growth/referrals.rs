//! Referrals: sign-ups with codes and links and every refusal; qualification and each
//! disqualification on constructed histories (the cooldown boundary, the network window);
//! milestone bonuses exactly once under concurrent recomputation, reversed when a referral
//! stops qualifying, held while the budget is empty; rules naming a budget that cannot pay
//! them refused.

use std::collections::BTreeMap;
use std::time::Duration;

use adescrow::money::Amount;
use adescrow::money::holds;
use adescrow::money::ledger::{self, Party, Posting, Source};
use adescrow::platform::db::MIGRATOR;
use adescrow::programs::referrals;
use adescrow::programs::referrals::assess::{Reason, Status};
use adescrow::programs::referrals::bonuses::{self, BonusState};
use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::history::{History, network};
use super::{activity_moves, app_with_admin, user_id};
use crate::fixtures::TOKEN;
use crate::money::program_budget;
use crate::support::*;

const PLATFORM: Address = Address::repeat_byte(0xfa);

async fn referrals_of(pool: &PgPool, referrer: Uuid) -> Vec<(Uuid, String)> {
    sqlx::query_as("SELECT referee_id, channel::text FROM referrals WHERE referrer_id = $1 ORDER BY referred_at")
        .bind(referrer)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_first_sign_in_with_a_code_or_a_link_records_its_referrer_once(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = app_with_admin(pool.clone(), &admin);
    let admin_token = app.token(&admin).await;
    let referrer = PrivateKeySigner::random();
    let token = app.token(&referrer).await;
    let mine = app.get("/v1/referrals/me", Some(&token)).await.ok().clone();
    let code = mine["code"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/v1/referrals/me", Some(&token)).await.ok()["code"],
        code,
        "one code per user"
    );
    let link: url::Url = mine["link"].as_str().unwrap().parse().unwrap();
    let link_ref = link.query_pairs().find(|(k, _)| k == "ref").unwrap().1.into_owned();
    let referrer_id = user_id(&pool, &referrer).await;

    // A code in any case, and a link.
    let by_code = PrivateKeySigner::random();
    app.sign_in_with(&by_code, Some(&code.to_lowercase())).await.ok();
    let by_link = PrivateKeySigner::random();
    app.sign_in_with(&by_link, Some(&link_ref)).await.ok();
    let recorded = referrals_of(&pool, referrer_id).await;
    assert_eq!(
        recorded,
        [
            (user_id(&pool, &by_code).await, "code".to_owned()),
            (user_id(&pool, &by_link).await, "link".to_owned())
        ]
    );

    // Refusals write nothing: no user, no session, no referral, no nonce spent.
    let refused = async |wallet: &PrivateKeySigner, presented: &str, status: StatusCode, slug: &str| {
        let (users, sessions) = (app.count("users").await, app.count("refresh_sessions").await);
        let reply = app.sign_in_with(wallet, Some(presented)).await;
        let field = reply.problem(status, slug)["field"].clone();
        assert_eq!(field, "referral", "{}", reply.text);
        assert_eq!(
            (app.count("users").await, app.count("refresh_sessions").await),
            (users, sessions)
        );
        assert_eq!(referrals_of(&pool, referrer_id).await.len(), 2);
        reply.body["detail"].as_str().unwrap().to_owned()
    };
    let detail = refused(&by_code, &code, StatusCode::CONFLICT, "conflict").await;
    assert!(detail.contains("first sign-in"), "{detail}");
    let stranger = PrivateKeySigner::random();
    for bad in ["K7M2QRS0", "ZZZZZZZZ", "not a code", "AFFZZZZZZZZ"] {
        refused(&stranger, bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field").await;
    }
    let altered = link_ref.replace(&code, "ZZZZZZZZ");
    refused(&stranger, &altered, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field").await;

    // A use limit is never passed, and cannot go below what the code brought.
    let limited = app
        .patch("/v1/referrals/me", Some(&token), json!({ "useLimit": 2 }))
        .await;
    assert_eq!(
        (limited.ok()["useLimit"].clone(), limited.body["uses"].clone()),
        (json!(2), json!(2))
    );
    let detail = refused(&stranger, &code, StatusCode::CONFLICT, "conflict").await;
    assert!(detail.contains("as often as its owner allows"), "{detail}");
    let below = app
        .patch("/v1/referrals/me", Some(&token), json!({ "useLimit": 1 }))
        .await;
    assert_eq!(below.problem(StatusCode::CONFLICT, "conflict")["field"], "useLimit");
    let zero = app
        .patch("/v1/referrals/me", Some(&token), json!({ "useLimit": 0 }))
        .await;
    assert_eq!(
        zero.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "useLimit"
    );
    app.patch("/v1/referrals/me", Some(&token), json!({ "useLimit": null }))
        .await
        .ok();

    // A disabled referrer's code does not count, and its tokens stop at once.
    let id = referrer_id;
    app.call(
        Method::PUT,
        &format!("/v1/admin/users/{id}/disabled"),
        Some(&admin_token),
        Some(json!({ "disabled": true })),
    )
    .await
    .ok();
    let detail = refused(&stranger, &code, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field").await;
    assert!(detail.contains("disabled"), "{detail}");
    app.get("/v1/referrals/me", Some(&token))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let again = app.sign_in_with(&referrer, None).await;
    again.problem(StatusCode::FORBIDDEN, "forbidden");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_link_stops_working_when_it_expires(pool: PgPool) {
    let app = TestApp::with(pool, |config| config.growth.referral_link_ttl = Duration::from_secs(1));
    let token = app.token(&PrivateKeySigner::random()).await;
    let link = app.get("/v1/referrals/me", Some(&token)).await.ok()["link"].clone();
    let link: url::Url = link.as_str().unwrap().parse().unwrap();
    let link_ref = link.query_pairs().find(|(k, _)| k == "ref").unwrap().1.into_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = app.sign_in_with(&PrivateKeySigner::random(), Some(&link_ref)).await;
    let problem = reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn qualification_and_every_disqualification_follow_the_rules(pool: PgPool) {
    let history = History::new(pool, 3, Duration::from_secs(7 * 86_400)).await;
    let now = OffsetDateTime::now_utc();
    let window = time::Duration::days(30);
    // Signed up a year ago from four networks: the referrer used the first one exactly at
    // the window's edge, the second one just outside it.
    let t = now - time::Duration::days(365);
    let at_second = |s: i64| t + time::Duration::seconds(s);
    let long_before = t - window - time::Duration::days(9);
    history
        .referrer_seen(network(1), long_before, at_second(3) - window)
        .await;
    history
        .referrer_seen(
            network(4),
            long_before,
            at_second(4) - window - time::Duration::seconds(1),
        )
        .await;
    let advertiser = history.referee(t, Some(network(2))).await;
    let small_spender = history.referee(t + time::Duration::seconds(1), Some(network(5))).await;
    let hoster = history.referee(t + time::Duration::seconds(2), Some(network(3))).await;
    let shares_referrer_network = history.referee(t + time::Duration::seconds(3), Some(network(1))).await;
    let outside_window = history.referee(t + time::Duration::seconds(4), Some(network(4))).await;
    let duplicate = history.referee(t + time::Duration::seconds(5), Some(network(2))).await;
    let no_network = history.referee(t + time::Duration::seconds(6), None).await;
    let disabled = history.referee(t + time::Duration::seconds(7), Some(network(6))).await;
    for user in [
        advertiser,
        shares_referrer_network,
        outside_window,
        duplicate,
        no_network,
        disabled,
    ] {
        history.billed(user, 1_000).await;
    }
    history.billed(small_spender, 999).await;
    history.earned(hoster, 500).await;
    history.disable(disabled).await;

    // Their activity happened now: qualified from the cooldown on, not a second before.
    let at = now + time::Duration::days(7) + time::Duration::seconds(5);
    let expected = [
        (Status::Qualified, None),
        (Status::Pending, Some(Reason::NoQualifyingActivity)),
        (Status::Qualified, None),
        (Status::Disqualified, Some(Reason::ReferrerNetwork)),
        (Status::Qualified, None),
        (Status::Disqualified, Some(Reason::DuplicateNetwork)),
        (Status::Disqualified, Some(Reason::NoNetwork)),
        (Status::Disqualified, Some(Reason::RefereeDisabled)),
    ];
    assert_eq!(history.statuses(at).await, expected);
    let early = history
        .statuses(now - time::Duration::seconds(1) + time::Duration::days(7))
        .await;
    assert_eq!(early[0], (Status::Pending, Some(Reason::CoolingDown)));
    assert_eq!(early[2], (Status::Pending, Some(Reason::CoolingDown)));
    // Before any activity, nothing qualifies; before a referral, it does not exist.
    let before = history.statuses(now - time::Duration::days(1)).await;
    assert_eq!(before.len(), 8);
    assert_eq!(before[0], (Status::Pending, Some(Reason::NoQualifyingActivity)));
    assert!(history.statuses(t - time::Duration::seconds(1)).await.is_empty());

    // The snapshot counts each reason, and the badge follows the qualified count.
    let mut conn = history.pool.acquire().await.unwrap();
    let snapshot = bonuses::snapshot(&mut conn, history.referrer, at).await.unwrap();
    assert_eq!(
        (
            snapshot.referrals,
            snapshot.qualified,
            snapshot.pending,
            snapshot.disqualified
        ),
        (8, 3, 1, 4)
    );
    let reasons: Vec<(Reason, i64)> = snapshot.by_reason.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        reasons,
        [
            (Reason::RefereeDisabled, 1),
            (Reason::NoNetwork, 1),
            (Reason::ReferrerNetwork, 1),
            (Reason::DuplicateNetwork, 1),
            (Reason::NoQualifyingActivity, 1)
        ]
    );
    assert_eq!(
        serde_json::to_value(snapshot.badge).unwrap(),
        json!("verified_referrer")
    );
    assert_eq!(snapshot.next_milestone, 6);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn activity_is_folded_once_in_ledger_order_without_skipping_a_late_commit(pool: PgPool) {
    let history = History::new(pool.clone(), 3, Duration::ZERO).await;
    let referee = history
        .referee(OffsetDateTime::now_utc() - time::Duration::hours(1), Some(network(20)))
        .await;
    let hoster = history.address(referee).await;
    let earning = |amount: u128, campaign: Uuid| {
        let mut posting = Posting::default();
        posting.spend(campaign, Amount(amount));
        posting.earn(Party::Hoster, hoster, Amount(amount));
        BTreeMap::from([(TOKEN, posting)])
    };
    let (first, second) = (history.campaign().await, history.campaign().await);

    // A batch still being billed holds the lower id while a later one commits first.
    let mut slow = pool.begin().await.unwrap();
    ledger::post(&mut slow, CHAIN_ID, Source::ReceiptBatch, "slow", &earning(300, first))
        .await
        .unwrap();
    let mut quick = pool.begin().await.unwrap();
    ledger::post(
        &mut quick,
        CHAIN_ID,
        Source::ReceiptBatch,
        "quick",
        &earning(250, second),
    )
    .await
    .unwrap();
    quick.commit().await.unwrap();
    let fold = tokio::spawn({
        let pool = pool.clone();
        async move { referrals::activity::fold(&pool).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fold.is_finished(), "the fold waits for the batch still being billed");
    slow.commit().await.unwrap();
    assert_eq!(fold.await.unwrap(), 2, "both moves, the late commit included");
    assert_eq!(referrals::activity::fold(&pool).await.unwrap(), 0, "each move once");

    assert_eq!(
        activity_moves(&pool, referee).await,
        [(300, 300, 300), (250, 550, 550)],
        "running totals in ledger order"
    );
    assert_eq!(
        history.statuses(OffsetDateTime::now_utc()).await,
        [(Status::Qualified, None)],
        "550 earned reaches the rule of 500"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn milestone_bonuses_are_paid_once_under_concurrent_recomputation(pool: PgPool) {
    let history = History::new(pool.clone(), 3, Duration::ZERO).await;
    history.fund_budget(1_000).await;
    let now = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let mut referees = Vec::new();
    for n in 0..3 {
        let referee = history.referee(now, Some(network(10 + n))).await;
        history.earned(referee, 500).await;
        referees.push(referee);
    }
    let referrer_address = history.address(history.referrer).await;

    let at = OffsetDateTime::now_utc();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            let referrer = history.referrer;
            tokio::spawn(async move {
                bonuses::recompute(&pool, CHAIN_ID, PLATFORM, referrer, at)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut awarded = 0;
    for run in runs {
        awarded += run.await.unwrap().0.awarded;
    }
    assert_eq!(awarded, 1, "one bonus for one block, whoever computed it");
    let bonus_postings: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_postings WHERE source = 'referral'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(bonus_postings, 1);
    assert_eq!(history.released(referrer_address).await, 100);

    // A referee disabled: the block no longer qualifies, and the bonus is taken back.
    history.disable(referees[2]).await;
    let (changed, snapshot) =
        bonuses::recompute(&pool, CHAIN_ID, PLATFORM, history.referrer, OffsetDateTime::now_utc())
            .await
            .unwrap();
    assert_eq!((changed.awarded, changed.reversed), (0, 1));
    assert_eq!(snapshot.bonuses.len(), 1);
    assert_eq!(snapshot.bonuses[0].state, BonusState::Reversed);
    assert_eq!(history.released(referrer_address).await, 0);
    assert_eq!(
        history.released(PLATFORM).await,
        100,
        "the platform, whose treasury funded it, has it back"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM referral_bonuses")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "reversed by a posting, never by deleting rows");

    // Qualifying again under the same rules pays nothing twice; new rules pay the block anew.
    sqlx::query("UPDATE users SET disabled_at = NULL WHERE id = $1")
        .bind(referees[2])
        .execute(&pool)
        .await
        .unwrap();
    let (changed, _) = bonuses::recompute(&pool, CHAIN_ID, PLATFORM, history.referrer, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(changed.awarded, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_bonus_waits_for_an_empty_budget_and_says_why(pool: PgPool) {
    let history = History::new(pool.clone(), 1, Duration::ZERO).await;
    history.fund_budget(50).await;
    let referee = history
        .referee(OffsetDateTime::now_utc() - time::Duration::seconds(5), Some(network(1)))
        .await;
    history.earned(referee, 500).await;
    // The scheduled job takes referrers never recomputed first.
    let changed = bonuses::recompute_due(&pool, CHAIN_ID, PLATFORM, OffsetDateTime::now_utc(), 1)
        .await
        .unwrap();
    assert_eq!(changed.awarded, 1);
    let mut conn = pool.acquire().await.unwrap();
    let snapshot = bonuses::snapshot(&mut conn, history.referrer, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let bonus = &snapshot.bonuses[0];
    assert_eq!(bonus.state, BonusState::Held);
    assert!(bonus.note.as_deref().unwrap().contains("referral budget"), "{bonus:?}");
    let referrer_address = history.address(history.referrer).await;
    assert_eq!(history.released(referrer_address).await, 0);

    // Topped up, the bonus is released by the holds job.
    assert_eq!(
        holds::release_due(&pool, CHAIN_ID, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        0
    );
    history.fund_budget(100).await;
    assert_eq!(
        holds::release_due(&pool, CHAIN_ID, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    assert_eq!(history.released(referrer_address).await, 100);
    let mut conn = pool.acquire().await.unwrap();
    let snapshot = bonuses::snapshot(&mut conn, history.referrer, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(snapshot.bonuses[0].state, BonusState::Released);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn rules_whose_budget_cannot_pay_their_token_are_refused_and_change_nothing(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = app_with_admin(pool.clone(), &admin);
    let admin_token = app.token(&admin).await;
    let in_force = app
        .get("/v1/admin/referrals/rules", Some(&admin_token))
        .await
        .ok()
        .clone();
    let other_token = Address::repeat_byte(0x71);
    let elsewhere = program_budget(&pool, B256::from(rand::random::<[u8; 32]>()), other_token).await;
    let campaign: Uuid = sqlx::query_scalar(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token) VALUES ('campaign', $1, $2) RETURNING id",
    )
    .bind(B256::from(rand::random::<[u8; 32]>()).as_slice())
    .bind(TOKEN.as_slice())
    .fetch_one(&pool)
    .await
    .unwrap();
    let put = |budget: Uuid| {
        let body = json!({
            "milestone": 3, "cooldownSecs": 0, "networkWindowSecs": 0, "requireNetwork": false,
            "tokens": [{ "token": TOKEN, "minBilled": "1000", "minEarned": "500", "bonus": "100", "budgetId": budget }],
        });
        app.call(Method::PUT, "/v1/admin/referrals/rules", Some(&admin_token), Some(body))
    };

    // A budget in another token, a campaign's escrow in the right one, and no account at all.
    for (budget, why) in [
        (elsewhere, "in its rule's token"),
        (campaign, "not a program budget"),
        (Uuid::new_v4(), "not a program budget"),
    ] {
        let reply = put(budget).await;
        let problem = reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
        assert_eq!(problem["field"], "tokens", "{}", reply.text);
        assert!(problem["detail"].as_str().unwrap().contains(why), "{problem}");
        let now = app.get("/v1/admin/referrals/rules", Some(&admin_token)).await;
        assert_eq!(now.ok(), &in_force, "the rules in force are unchanged");
    }

    // The same rule with a program budget in its token is the next version.
    let budget = program_budget(&pool, B256::from(rand::random::<[u8; 32]>()), TOKEN).await;
    let accepted = put(budget).await;
    assert_eq!(accepted.ok()["version"], in_force["version"].as_i64().unwrap() + 1);
    assert_eq!(accepted.body["tokens"][0]["budgetId"], json!(budget));
}

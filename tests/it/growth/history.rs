//! `History`: a referrer, the referral rules in force, and its referees' histories, written
//! as the rest of the system would (users, referrals, sign-in networks, ledger postings),
//! for the tests that judge qualification on constructed histories.

use std::collections::BTreeMap;
use std::time::Duration;

use adescrow::money::Amount;
use adescrow::money::ledger::{self, Party, Posting, Source};
use adescrow::programs::referrals;
use adescrow::programs::referrals::assess::{Reason, Status};
use adescrow::programs::referrals::bonuses;
use adescrow::programs::referrals::rules::{self, NewRules, TokenRule};
use alloy::primitives::{Address, B256};
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::fixtures::TOKEN;
use crate::money::{END, TREASURY, mirror_funding, program_budget};
use crate::support::*;

/// A referrer and the histories of its referees, written as the rest of the system would.
pub(crate) struct History {
    pub(crate) pool: PgPool,
    pub(crate) referrer: Uuid,
    budget_chain_id: B256,
    pub(crate) rules_version: i32,
}

pub(crate) fn network(n: u8) -> Vec<u8> {
    vec![n; 32]
}

impl History {
    /// A referrer and rules in force asking for 1,000 billed or 500 earned.
    pub(crate) async fn new(pool: PgPool, milestone: i32, cooldown: Duration) -> History {
        Self::with(pool, milestone, cooldown, 1_000).await
    }

    /// A referrer and rules in force asking for `min_billed` billed or 500 earned, with a bonus
    /// of 100 paid from a program budget.
    pub(crate) async fn with(pool: PgPool, milestone: i32, cooldown: Duration, min_billed: u128) -> History {
        let referrer = Self::user(&pool, OffsetDateTime::now_utc() - time::Duration::days(400)).await;
        let budget_chain_id = B256::from(rand::random::<[u8; 32]>());
        let budget = program_budget(&pool, budget_chain_id, TOKEN).await;
        let new = NewRules {
            milestone,
            cooldown,
            network_window: Duration::from_secs(30 * 86_400),
            require_network: true,
            tokens: vec![TokenRule {
                token: TOKEN,
                min_billed: Amount(min_billed),
                min_earned: Amount(500),
                bonus: Amount(100),
                budget_id: budget,
            }],
        };
        let mut conn = pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let rules = rules::create(&mut tx, &new, referrer).await.unwrap();
        tx.commit().await.unwrap();
        History {
            pool,
            referrer,
            budget_chain_id,
            rules_version: rules.version,
        }
    }

    pub(crate) async fn fund_budget(&self, amount: u128) {
        mirror_funding(&self.pool, self.budget_chain_id, TREASURY, TOKEN, END, amount).await;
    }

    pub(crate) async fn user(pool: &PgPool, created_at: OffsetDateTime) -> Uuid {
        sqlx::query_scalar("INSERT INTO users (address, created_at) VALUES ($1, $2) RETURNING id")
            .bind(Address::from(rand::random::<[u8; 20]>()).as_slice())
            .bind(created_at)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    pub(crate) async fn address(&self, user: Uuid) -> Address {
        let bytes: Vec<u8> = sqlx::query_scalar("SELECT address FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        Address::from_slice(&bytes)
    }

    /// A referee signed up at `at` from `network`.
    pub(crate) async fn referee(&self, at: OffsetDateTime, network: Option<Vec<u8>>) -> Uuid {
        let referee = Self::user(&self.pool, at).await;
        self.refer(referee, at, network).await;
        referee
    }

    /// `user` signed up at `at` from `network` with the referrer's code.
    pub(crate) async fn refer(&self, user: Uuid, at: OffsetDateTime, network: Option<Vec<u8>>) {
        sqlx::query("INSERT INTO referrals (referee_id, referrer_id, channel, network, referred_at) VALUES ($1, $2, 'code', $3, $4)")
            .bind(user)
            .bind(self.referrer)
            .bind(network)
            .bind(at)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// The referrer signed in from `network` between `first` and `last`.
    pub(crate) async fn referrer_seen(&self, network: Vec<u8>, first: OffsetDateTime, last: OffsetDateTime) {
        sqlx::query("INSERT INTO sign_in_networks (user_id, network, first_seen, last_seen) VALUES ($1, $2, $3, $4)")
            .bind(self.referrer)
            .bind(network)
            .bind(first)
            .bind(last)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// `user`'s campaign billed `amount` (a receipt batch's posting).
    pub(crate) async fn billed(&self, user: Uuid, amount: u128) {
        let brand: Uuid = sqlx::query_scalar(
            "INSERT INTO brands (owner_id, name, daily_budget, monthly_budget, time_zone) VALUES ($1, 'B', 1, 1, 'UTC') RETURNING id",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let campaign: Uuid = sqlx::query_scalar(
            "INSERT INTO campaigns (brand_id, name, token, chain_campaign_id, starts_at, ends_at)
             VALUES ($1, 'C', $2, $3, now(), now() + interval '30 days') RETURNING id",
        )
        .bind(brand)
        .bind(TOKEN.as_slice())
        .bind(B256::from(rand::random::<[u8; 32]>()).as_slice())
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let mut posting = Posting::default();
        posting.spend(campaign, Amount(amount));
        posting.earn(Party::Hoster, Address::repeat_byte(0x4e), Amount(amount));
        self.post(Source::ReceiptBatch, &Uuid::new_v4().to_string(), posting)
            .await;
    }

    /// `user` earned `amount` as a hoster.
    pub(crate) async fn earned(&self, user: Uuid, amount: u128) {
        let mut posting = Posting::default();
        let campaign = self.campaign().await;
        posting.spend(campaign, Amount(amount));
        posting.earn(Party::Hoster, self.address(user).await, Amount(amount));
        self.post(Source::ReceiptBatch, &Uuid::new_v4().to_string(), posting)
            .await;
    }

    pub(crate) async fn campaign(&self) -> Uuid {
        sqlx::query_scalar(
            "INSERT INTO escrow_accounts (kind, chain_escrow_id, token) VALUES ('campaign', $1, $2) RETURNING id",
        )
        .bind(B256::from(rand::random::<[u8; 32]>()).as_slice())
        .bind(TOKEN.as_slice())
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub(crate) async fn post(&self, source: Source, id: &str, posting: Posting) {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        ledger::post(&mut tx, CHAIN_ID, source, id, &BTreeMap::from([(TOKEN, posting)]))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // As the programs role does before it recomputes.
        referrals::activity::fold(&self.pool).await.unwrap();
    }

    pub(crate) async fn disable(&self, user: Uuid) {
        sqlx::query("UPDATE users SET disabled_at = now() WHERE id = $1")
            .bind(user)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    pub(crate) async fn statuses(&self, at: OffsetDateTime) -> Vec<(Status, Option<Reason>)> {
        let mut conn = self.pool.acquire().await.unwrap();
        let (rules, referrals) = bonuses::referrals(&mut conn, self.referrer, at).await.unwrap();
        assert_eq!(rules.version, self.rules_version);
        referrals.iter().map(|r| (r.status, r.reason)).collect()
    }

    pub(crate) async fn released(&self, payee: Address) -> u128 {
        let balances = ledger::balances(&self.pool, payee).await.unwrap();
        balances.iter().map(|b| b.earned.0).sum()
    }
}

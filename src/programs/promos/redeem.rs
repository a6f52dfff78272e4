//! Redeeming a promotion on one of one's campaigns, and what one's redemptions gave.

use std::collections::BTreeMap;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::B256;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{OfferKind, PromoCode, PromoError, Status, TokenAmount, credits};
use crate::money::Amount;
use crate::money::escrow;
use crate::money::holds::HoldReason;
use crate::money::ledger::{self, NewHold, Party, Posting, Source};
use crate::platform::outbox::Status as TxStatus;

/// A redemption, as its advertiser sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PromotionRedemption)]
pub struct Redemption {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub offer: OfferKind,
    pub campaign_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub redeemed_at: OffsetDateTime,
    /// An ad credit: its amount, and where its funding of the campaign stands: `waiting`
    /// (for the treasury), then the outbox's `queued`, `sent`, `mined`, `confirmed` or
    /// `failed` (with the chain's reason; the budget is not charged).
    pub credit: Option<Amount>,
    pub credit_status: Option<String>,
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub credit_tx: Option<B256>,
    pub credit_error: Option<String>,
    /// A fee discount: the share of the platform's fee waived, until when.
    pub discount_bps: Option<u32>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub discount_until: Option<OffsetDateTime>,
    /// A free trial: impressions it waives the fee on, and how many were billed so far.
    pub trial_impressions: Option<u32>,
    pub trial_used: u32,
    /// Platform fees waived so far, per token.
    pub waived: Vec<TokenAmount>,
}

/// A redemption just made.
pub type Redeemed = Redemption;

/// What a redemption needs to know of the campaign it names.
struct CampaignFacts {
    token: SqlAddress,
    /// What its advertiser funded it with on chain (credits and others' top-ups aside).
    funded_by_owner: Amount,
    /// Open on chain by its advertiser, in its token, and not ended.
    open: bool,
}

/// Redeems the promotion with `code` on `campaign`, one of `user`'s. All of it or nothing:
/// the limits, the redemption row, the funnel's event and, for an ad credit, the budget's
/// held debit (the treasury role sends the funding).
pub async fn redeem(
    db: &PgPool,
    chain_id: u64,
    user: Uuid,
    code: &str,
    campaign: Uuid,
    now: OffsetDateTime,
) -> Result<Redeemed, PromoError> {
    let code = PromoCode::parse(code).map_err(|_| PromoError::UnknownPromotion)?;
    let mut tx = db.begin().await?;
    let promotion = super::find(&mut tx, None, Some(code.as_str()))
        .await?
        .filter(|row| row.published_at.is_some())
        .ok_or(PromoError::UnknownPromotion)?;
    match promotion.status(now) {
        Status::Active => {}
        Status::Completed if promotion.ends_at > now => return Err(PromoError::Exhausted),
        status => return Err(PromoError::NotRedeemable { status }),
    }
    let facts = campaign_facts(&mut tx, chain_id, user, campaign, now)
        .await?
        .ok_or(PromoError::UnknownCampaign)?;
    if let Some(token) = promotion.token
        && token.0 != facts.token.0
    {
        return Err(PromoError::WrongToken(token.0));
    }
    if let Some(minimum) = promotion.min_budget
        && facts.funded_by_owner < minimum
    {
        return Err(PromoError::BelowMinimum {
            funded: facts.funded_by_owner,
            minimum,
        });
    }
    if promotion.first_time_only && billed_before(&mut tx, user).await? {
        return Err(PromoError::NotFirstTime);
    }
    let per_user = u32::try_from(promotion.per_user).unwrap_or(1);
    let before = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM promo_redemptions WHERE promotion_id = $1 AND user_id = $2"#,
        promotion.id,
        user
    )
    .fetch_one(&mut *tx)
    .await?;
    if before >= i64::from(per_user) {
        return Err(PromoError::AlreadyRedeemed(per_user));
    }

    let id = Uuid::new_v4();
    let posting_id = match (promotion.budget_id, promotion.credit) {
        (Some(budget), Some(credit)) => {
            if !facts.open {
                return Err(PromoError::CampaignNotOpen);
            }
            Some(debit_budget(&mut tx, chain_id, id, campaign, budget, credit).await?)
        }
        _ => None,
    };
    let discount_until = promotion
        .discount_days
        .map(|days| now + time::Duration::days(i64::from(days)));
    let inserted = sqlx::query!(
        "INSERT INTO promo_redemptions (id, promotion_id, user_id, ordinal, campaign_id, offer, redeemed_at, credit,
                                        posting_id, discount_bps, discount_until, trial_impressions)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (promotion_id, user_id, ordinal) DO NOTHING",
        id,
        promotion.id,
        user,
        (before + 1) as i32,
        campaign,
        promotion.offer as OfferKind,
        now,
        promotion.credit as Option<Amount>,
        posting_id,
        promotion.discount_bps,
        discount_until,
        promotion.trial_impressions
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // The same user redeeming at the same moment took this ordinal.
        return Err(PromoError::AlreadyRedeemed(per_user));
    }
    // The cap: one conditional update, which concurrent redemptions queue on.
    let counted = sqlx::query_scalar!(
        "UPDATE promotions SET redemptions = redemptions + 1
         WHERE id = $1 AND (max_redemptions IS NULL OR redemptions < max_redemptions)
           AND published_at IS NOT NULL AND NOT paused AND starts_at <= $2 AND ends_at > $2
         RETURNING redemptions",
        promotion.id,
        now
    )
    .fetch_optional(&mut *tx)
    .await?;
    if counted.is_none() {
        let now_row = super::find(&mut tx, Some(promotion.id), None).await?;
        return Err(match now_row.map(|row| row.status(now)) {
            Some(Status::Active | Status::Completed) | None => PromoError::Exhausted,
            Some(status) => PromoError::NotRedeemable { status },
        });
    }
    sqlx::query!(
        "INSERT INTO promo_events (promotion_id, kind, at) VALUES ($1, 'redemption', $2)",
        promotion.id,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(promotion = %promotion.id, redemption = %id, %user, %campaign, "promotion redeemed");
    let mut conn = db.acquire().await?;
    let mut redeemed = redemptions(&mut conn, chain_id, user, Some(id)).await?;
    redeemed.pop().ok_or(PromoError::UnknownPromotion)
}

/// Debits `budget` for an ad credit: the treasury, which will fund the campaign, is repaid
/// `credit`, held until its funding is confirmed. Refused when the budget cannot cover it.
async fn debit_budget(
    conn: &mut PgConnection,
    chain_id: u64,
    redemption: Uuid,
    campaign: Uuid,
    budget: Uuid,
    credit: Amount,
) -> Result<i64, PromoError> {
    let funds = escrow::lock_funds(conn, chain_id, &[budget]).await?;
    let funds = funds.first().ok_or(PromoError::UnknownBudget)?;
    funds.cover(credit)?;
    let mut posting = Posting::default();
    posting.spend(budget, credit);
    posting.earn(Party::Treasury, funds.owner(), credit);
    let posting = posting.hold(NewHold {
        reason: HoldReason::CreditPending,
        until: None,
        debtor: None,
        settled_after: None,
        note: format!("until the credit's funding of campaign {campaign} is confirmed on chain"),
    });
    let posted = ledger::post(
        conn,
        chain_id,
        Source::Program,
        &credits::source_id(redemption),
        &BTreeMap::from([(funds.token, posting)]),
    )
    .await?;
    posted.first().map(|p| p.posting_id).ok_or(PromoError::UnknownBudget)
}

async fn campaign_facts(
    conn: &mut PgConnection,
    chain_id: u64,
    user: Uuid,
    campaign: Uuid,
    now: OffsetDateTime,
) -> Result<Option<CampaignFacts>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.token AS "token: SqlAddress",
                  (SELECT coalesce(sum(m.amount), 0) FROM mirror_campaign_events m
                   WHERE m.chain_id = $3 AND m.campaign_id = c.chain_campaign_id AND m.kind = 'funded'
                     AND m.account = u.address) AS "funded!: Amount",
                  coalesce(cv.advertiser = u.address AND cv.token = c.token AND cv.end_time > $4, false) AS "open!"
           FROM campaigns c JOIN brands b ON b.id = c.brand_id JOIN users u ON u.id = b.owner_id
           LEFT JOIN LATERAL campaign_escrow($3, c.chain_campaign_id) cv ON true
           WHERE c.id = $1 AND b.owner_id = $2"#,
        campaign,
        user,
        chain_id as i64,
        now.unix_timestamp()
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| CampaignFacts {
        token: row.token,
        funded_by_owner: row.funded,
        open: row.open,
    }))
}

/// Whether any of `user`'s campaigns was ever billed.
async fn billed_before(conn: &mut PgConnection, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM campaign_spend s JOIN campaigns c ON c.id = s.campaign_id
                          JOIN brands b ON b.id = c.brand_id WHERE b.owner_id = $1 AND s.billed > 0) AS "billed!""#,
        user
    )
    .fetch_one(conn)
    .await
}

/// `user`'s redemptions, newest first.
pub async fn mine(db: &PgPool, chain_id: u64, user: Uuid) -> Result<Vec<Redemption>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    redemptions(&mut conn, chain_id, user, None).await
}

/// `user`'s redemptions (only `only`, when given).
async fn redemptions(
    conn: &mut PgConnection,
    chain_id: u64,
    user: Uuid,
    only: Option<Uuid>,
) -> Result<Vec<Redemption>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT r.id, p.code, p.name, r.offer AS "offer: OfferKind", r.campaign_id, r.redeemed_at,
                  r.credit AS "credit: Amount", r.discount_bps, r.discount_until, r.trial_impressions, r.trial_used,
                  o.status AS "tx_status?: TxStatus", o.mined_tx AS "tx?: SqlB256", o.error AS "tx_error?"
           FROM promo_redemptions r JOIN promotions p ON p.id = r.promotion_id
           LEFT JOIN LATERAL (
               SELECT status, mined_tx, error FROM outbox
               WHERE chain_id = $3 AND kind = 'promo_credit' AND key = r.id::text
               ORDER BY id DESC LIMIT 1) o ON true
           WHERE r.user_id = $1 AND ($2::uuid IS NULL OR r.id = $2)
           ORDER BY r.redeemed_at DESC, r.id"#,
        user,
        only,
        chain_id as i64
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let mut waived: std::collections::HashMap<Uuid, Vec<TokenAmount>> = std::collections::HashMap::new();
    for row in sqlx::query!(
        r#"SELECT redemption_id, token AS "token: SqlAddress", sum(waived) AS "waived!: Amount" FROM promo_waivers
           WHERE redemption_id = ANY($1) GROUP BY redemption_id, token ORDER BY redemption_id, token"#,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?
    {
        waived.entry(row.redemption_id).or_default().push(TokenAmount {
            token: row.token.0,
            amount: row.waived,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| Redemption {
            id: row.id,
            code: row.code,
            name: row.name,
            offer: row.offer,
            campaign_id: row.campaign_id,
            redeemed_at: row.redeemed_at,
            credit_status: row
                .credit
                .map(|_| row.tx_status.map_or("waiting", TxStatus::as_str).to_owned()),
            credit: row.credit,
            credit_tx: row.tx.map(|tx| tx.0),
            credit_error: row.tx_error,
            discount_bps: row.discount_bps.and_then(|bps| u32::try_from(bps).ok()),
            discount_until: row.discount_until,
            trial_impressions: row.trial_impressions.and_then(|n| u32::try_from(n).ok()),
            trial_used: u32::try_from(row.trial_used).unwrap_or_default(),
            waived: waived.remove(&row.id).unwrap_or_default(),
        })
        .collect())
}

//! A promotion's funnel, counted from append-only records: link visits and redemptions
//! (`promo_events`), redeemed campaigns their advertiser funded (the chain mirror's
//! `CampaignFunded` events), their billed spend since the redemption (`billed_events`) and
//! the fees waived (`promo_waivers`).

use std::collections::HashMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;

/// The promotion's funnel: link visits, redemptions, redeemed campaigns their advertiser
/// funded on chain, and what those campaigns were billed since their redemption.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PromotionFunnel)]
pub struct Funnel {
    pub visits: u64,
    pub redemptions: u64,
    pub campaigns_funded: u64,
    /// Billed spend per token.
    pub spend: Vec<TokenAmount>,
    /// Platform fees waived per token (discounts and trials).
    pub waived: Vec<TokenAmount>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PromotionTokenAmount)]
pub struct TokenAmount {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub amount: Amount,
}

/// The funnels of promotions `ids`.
pub(super) async fn funnels(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, Funnel>, sqlx::Error> {
    let mut funnels: HashMap<Uuid, Funnel> = HashMap::new();
    let counts = sqlx::query!(
        r#"SELECT promotion_id, count(*) FILTER (WHERE kind = 'visit') AS "visits!",
                  count(*) FILTER (WHERE kind = 'redemption') AS "redemptions!"
           FROM promo_events WHERE promotion_id = ANY($1) GROUP BY promotion_id"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in counts {
        let funnel = funnels.entry(row.promotion_id).or_default();
        funnel.visits = row.visits as u64;
        funnel.redemptions = row.redemptions as u64;
    }
    // A redeemed campaign counts as funded once its advertiser's own funding shows on chain.
    let funded = sqlx::query!(
        r#"SELECT r.promotion_id, count(DISTINCT r.campaign_id) AS "funded!"
           FROM promo_redemptions r JOIN campaigns c ON c.id = r.campaign_id
           JOIN brands b ON b.id = c.brand_id JOIN users u ON u.id = b.owner_id
           WHERE r.promotion_id = ANY($1)
             AND EXISTS (SELECT 1 FROM mirror_campaign_events m
                         WHERE m.campaign_id = c.chain_campaign_id AND m.kind = 'funded' AND m.account = u.address)
           GROUP BY r.promotion_id"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in funded {
        funnels.entry(row.promotion_id).or_default().campaigns_funded = row.funded as u64;
    }
    let spend = sqlx::query!(
        r#"SELECT r.promotion_id, c.token AS "token: SqlAddress", sum(e.price) AS "spend!: Amount"
           FROM (SELECT promotion_id, campaign_id, min(redeemed_at) AS since FROM promo_redemptions
                 WHERE promotion_id = ANY($1) GROUP BY promotion_id, campaign_id) r
           JOIN campaigns c ON c.id = r.campaign_id
           JOIN billed_events e ON e.campaign_id = r.campaign_id AND e.billed_at >= r.since
           GROUP BY r.promotion_id, c.token ORDER BY r.promotion_id, c.token"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in spend {
        funnels.entry(row.promotion_id).or_default().spend.push(TokenAmount {
            token: row.token.0,
            amount: row.spend,
        });
    }
    let waived = sqlx::query!(
        r#"SELECT r.promotion_id, w.token AS "token: SqlAddress", sum(w.waived) AS "waived!: Amount"
           FROM promo_waivers w JOIN promo_redemptions r ON r.id = w.redemption_id
           WHERE r.promotion_id = ANY($1) GROUP BY r.promotion_id, w.token ORDER BY r.promotion_id, w.token"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in waived {
        funnels.entry(row.promotion_id).or_default().waived.push(TokenAmount {
            token: row.token.0,
            amount: row.waived,
        });
    }
    Ok(funnels)
}

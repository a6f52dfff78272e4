//! What advertisers read about their campaigns: billed events (from receipts), served
//! decisions (counted apart), spend and budgets, broken down by ad, hoster node and day in
//! the brand's time zone.

use jiff::civil::Date;
use serde::Serialize;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;
use crate::platform::values;

/// Counts and spend over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Decisions that chose the ad: served, not necessarily shown.
    pub served: i64,
    pub impressions: i64,
    pub clicks: i64,
    pub views: i64,
    pub acquisitions: i64,
    /// Clicks per billed impression; 0 without impressions.
    pub ctr: f64,
    /// Billed spend.
    pub spend: Amount,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdMetrics {
    pub ad_id: Uuid,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetrics {
    pub node_id: Uuid,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayMetrics {
    /// A local date in the brand's zone.
    #[schema(value_type = String, format = Date)]
    pub date: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Where the campaign's money stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CampaignBudget)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Whether the escrow campaign is open on chain, by the brand owner, in this token.
    pub funded: bool,
    /// The escrow's remaining budget as the chain mirror shows it.
    pub on_chain_remaining: Amount,
    /// Everything billed so far.
    pub billed: Amount,
    /// What settlements have debited from the escrow.
    pub settled: Amount,
    /// What the campaign may still spend off chain: on-chain remaining less billed but unsettled.
    pub available: Amount,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignAnalytics {
    pub campaign_id: Uuid,
    pub time_zone: String,
    /// First local date covered.
    #[schema(value_type = String, format = Date)]
    pub from: String,
    /// Last local date covered.
    #[schema(value_type = String, format = Date)]
    pub to: String,
    pub budget: Budget,
    pub totals: Metrics,
    pub ads: Vec<AdMetrics>,
    pub nodes: Vec<NodeMetrics>,
    pub days: Vec<DayMetrics>,
}

pub async fn budget(db: impl PgExecutor<'_>, chain_id: u64, campaign: Uuid) -> Result<Budget, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT funded AS "funded!", on_chain_remaining AS "remaining!: Amount", billed AS "billed!: Amount",
                  settled AS "settled!: Amount", available AS "available!: Amount"
           FROM campaign_budgets($1) WHERE campaign_id = $2"#,
        i64::try_from(chain_id).unwrap_or(i64::MAX),
        campaign
    )
    .fetch_one(db)
    .await?;
    Ok(Budget {
        funded: row.funded,
        on_chain_remaining: row.remaining,
        billed: row.billed,
        settled: row.settled,
        available: row.available,
    })
}

/// Local dates a report covers, `from..=to`: at most [`DateRange::MAX_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    from: Date,
    to: Date,
}

/// Why a report's dates were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("must not be after to")]
    FromAfterTo,
    #[error("the range may cover at most {} days", DateRange::MAX_DAYS)]
    TooLong,
}

impl DateRange {
    pub const MAX_DAYS: i32 = 367;

    /// The dates asked for, defaulting to today in `zone` (at `now`) and the 29 days
    /// before `to`.
    pub fn in_zone(
        from: Option<values::Date>,
        to: Option<values::Date>,
        zone: &str,
        now: jiff::Timestamp,
    ) -> Result<Self, RangeError> {
        let tz = crate::adserver::schedule::zone(zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let to = to.map_or_else(|| now.to_zoned(tz).date(), values::Date::get);
        let from = from.map_or_else(
            || to.checked_sub(jiff::Span::new().days(29)).unwrap_or(to),
            values::Date::get,
        );
        Self::of(from, to)
    }

    fn of(from: Date, to: Date) -> Result<Self, RangeError> {
        if from > to {
            return Err(RangeError::FromAfterTo);
        }
        if to.since(from).map_or(true, |span| span.get_days() >= Self::MAX_DAYS) {
            return Err(RangeError::TooLong);
        }
        Ok(Self { from, to })
    }
}

/// A campaign's numbers for the local dates of `range` in `zone`.
pub async fn campaign(
    db: &sqlx::PgPool,
    chain_id: u64,
    campaign: Uuid,
    zone: &str,
    range: DateRange,
) -> Result<CampaignAnalytics, sqlx::Error> {
    let DateRange { from, to } = range;
    let tz = crate::adserver::schedule::zone(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let instant =
        |date: Date| crate::adserver::schedule::offset_date_time(crate::adserver::schedule::start_of_day(date, &tz));
    let (start, end): (OffsetDateTime, OffsetDateTime) = (instant(from), instant(to.tomorrow().unwrap_or(to)));
    let rows = sqlx::query!(
        r#"WITH events AS (
               SELECT e.ad_id, e.hoster_node_id AS node_id, (e.billed_at AT TIME ZONE $4)::date AS day,
                      0::bigint AS served, (e.event = 'impression')::int AS impressions, (e.event = 'click')::int AS clicks,
                      (e.event = 'view')::int AS views, (e.event = 'acquisition')::int AS acquisitions, e.price AS spend
               FROM billed_events e WHERE e.campaign_id = $1 AND e.billed_at >= $2 AND e.billed_at < $3
               UNION ALL
               SELECT sc.ad_id, sc.hoster_node_id, (sc.bucket AT TIME ZONE $4)::date, sc.decisions, 0, 0, 0, 0, 0
               FROM served_counts sc JOIN ads a ON a.id = sc.ad_id JOIN ad_sets s ON s.id = a.ad_set_id
               WHERE s.campaign_id = $1 AND sc.bucket >= $2 AND sc.bucket < $3
           )
           SELECT ad_id, node_id, day, GROUPING(ad_id, node_id, day) AS "grouping!",
                  coalesce(sum(served), 0)::bigint AS "served!", coalesce(sum(impressions), 0)::bigint AS "impressions!",
                  coalesce(sum(clicks), 0)::bigint AS "clicks!", coalesce(sum(views), 0)::bigint AS "views!",
                  coalesce(sum(acquisitions), 0)::bigint AS "acquisitions!", coalesce(sum(spend), 0) AS "spend!: Amount"
           FROM events GROUP BY GROUPING SETS ((ad_id), (node_id), (day), ())
           ORDER BY 4, 1, 2, 3"#,
        campaign,
        start,
        end,
        zone
    )
    .fetch_all(db)
    .await?;

    let mut analytics = CampaignAnalytics {
        campaign_id: campaign,
        time_zone: zone.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        budget: budget(db, chain_id, campaign).await?,
        totals: Metrics::default(),
        ads: Vec::new(),
        nodes: Vec::new(),
        days: Vec::new(),
    };
    for row in rows {
        let metrics = Metrics {
            served: row.served,
            impressions: row.impressions,
            clicks: row.clicks,
            views: row.views,
            acquisitions: row.acquisitions,
            ctr: if row.impressions > 0 {
                row.clicks as f64 / row.impressions as f64
            } else {
                0.0
            },
            spend: row.spend,
        };
        // GROUPING sets a bit for each column that is rolled up: 0b011 is per ad, and so on.
        match (row.grouping, row.ad_id, row.node_id, row.day) {
            (0b011, Some(ad_id), _, _) => analytics.ads.push(AdMetrics { ad_id, metrics }),
            (0b101, _, Some(node_id), _) => analytics.nodes.push(NodeMetrics { node_id, metrics }),
            (0b110, _, _, Some(day)) => analytics.days.push(DayMetrics {
                date: day.to_string(),
                metrics,
            }),
            (0b111, ..) => analytics.totals = metrics,
            _ => {}
        }
    }
    Ok(analytics)
}

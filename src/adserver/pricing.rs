//! What each billable event costs: admins set defaults per token, an ad may set its own,
//! and [`UnitPrices::effective`] is the one place that decides which applies.
//!
//! Prices are unit prices in token base units. Impressions are quoted to people as CPM
//! (per thousand), so the API speaks CPM and requires it to be a whole multiple of 1,000
//! base units: every single impression then costs an exact integer amount.

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;
use crate::platform::values::{Invalid, ValueError};

/// Something a hoster can report and an advertiser pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "billable_event", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Impression,
    Click,
    View,
    Acquisition,
}

impl EventType {
    pub const ALL: [EventType; 4] = [Self::Impression, Self::Click, Self::View, Self::Acquisition];

    /// The name the API and the database use.
    pub fn label(self) -> &'static str {
        match self {
            Self::Impression => "impression",
            Self::Click => "click",
            Self::View => "view",
            Self::Acquisition => "acquisition",
        }
    }
}

/// The price of each event type, in base units per event; `None` means not billable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnitPrices([Option<Amount>; 4]);

impl UnitPrices {
    pub fn get(&self, event: EventType) -> Option<Amount> {
        self.0[event as usize]
    }

    pub fn set(&mut self, event: EventType, price: Option<Amount>) {
        self.0[event as usize] = price;
    }

    /// An ad's own price where it has one, else the token's default.
    pub fn effective(own: &UnitPrices, defaults: &UnitPrices) -> UnitPrices {
        let mut prices = *defaults;
        for event in EventType::ALL {
            if let Some(price) = own.get(event) {
                prices.set(event, Some(price));
            }
        }
        prices
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// The most one event of this ad can cost; a campaign needs at least this much left.
    pub fn max(&self) -> Amount {
        self.0.iter().flatten().copied().max().unwrap_or_default()
    }

    pub fn to_list(self) -> PriceList {
        PriceList {
            cpm: self
                .get(EventType::Impression)
                .map(|p| Amount(p.0.saturating_mul(1000))),
            cpc: self.get(EventType::Click),
            cpv: self.get(EventType::View),
            cpa: self.get(EventType::Acquisition),
        }
    }

    /// Prices as four columns hold them, in [`EventType::ALL`] order.
    pub fn from_columns(
        impression: Option<Amount>,
        click: Option<Amount>,
        view: Option<Amount>,
        acquisition: Option<Amount>,
    ) -> Self {
        Self([impression, click, view, acquisition])
    }

    /// The four prices in [`EventType::ALL`] order, for binding.
    pub fn to_columns(self) -> [Option<Amount>; 4] {
        self.0
    }
}

/// Prices as the API shows and takes them. Each is optional: an ad without its own price
/// for an event uses the default of its campaign's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceList {
    /// Cost per thousand impressions; a multiple of 1,000 base units.
    #[schema(value_type = Option<crate::money::CpmAmount>)]
    pub cpm: Option<Amount>,
    /// Cost per click.
    #[schema(value_type = Option<crate::money::PositiveAmount>)]
    pub cpc: Option<Amount>,
    /// Cost per (video) view.
    #[schema(value_type = Option<crate::money::PositiveAmount>)]
    pub cpv: Option<Amount>,
    /// Cost per acquisition (conversion).
    #[schema(value_type = Option<crate::money::PositiveAmount>)]
    pub cpa: Option<Amount>,
}

impl PriceList {
    /// Checks every price and converts CPM to a per-impression price. A refusal names the
    /// member at fault (`cpm`, `cpc`, ...).
    pub fn to_unit_prices(self) -> Result<UnitPrices, Invalid> {
        let positive = |field: &'static str, price: Option<Amount>| match price {
            Some(p) if p.is_zero() => Err(Invalid::new(field, ValueError::Refused("must be greater than zero"))),
            other => Ok(other),
        };
        let cpm = positive("cpm", self.cpm)?;
        if cpm.is_some_and(|p| p.0 % 1000 != 0) {
            return Err(Invalid::new(
                "cpm",
                ValueError::Refused(
                    "must be a multiple of 1000 base units, so that one impression costs a whole base unit",
                ),
            ));
        }
        Ok(UnitPrices([
            cpm.map(|p| Amount(p.0 / 1000)),
            positive("cpc", self.cpc)?,
            positive("cpv", self.cpv)?,
            positive("cpa", self.cpa)?,
        ]))
    }
}

/// The default prices of one token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPrices {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub prices: PriceList,
}

/// Every token's defaults.
pub async fn list_defaults(db: impl PgExecutor<'_>) -> Result<Vec<(Address, UnitPrices)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT token AS "token: SqlAddress", event AS "event: EventType", price AS "price: Amount"
           FROM default_prices ORDER BY token, event"#
    )
    .fetch_all(db)
    .await?;
    let mut tokens: Vec<(Address, UnitPrices)> = Vec::new();
    for row in rows {
        let token = row.token.0;
        let price = Some(row.price);
        match tokens.last_mut() {
            Some((last, prices)) if *last == token => prices.set(row.event, price),
            _ => {
                let mut prices = UnitPrices::default();
                prices.set(row.event, price);
                tokens.push((token, prices));
            }
        }
    }
    Ok(tokens)
}

/// Replaces a token's defaults: events without a price become unbillable by default.
pub async fn replace_defaults(
    db: &PgPool,
    token: Address,
    prices: &UnitPrices,
    admin: Uuid,
) -> Result<(), sqlx::Error> {
    let (events, amounts): (Vec<EventType>, Vec<Amount>) = EventType::ALL
        .into_iter()
        .filter_map(|event| prices.get(event).map(|price| (event, price)))
        .unzip();
    let mut tx = db.begin().await?;
    sqlx::query!(
        "DELETE FROM default_prices WHERE token = $1",
        SqlAddress(token) as SqlAddress
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO default_prices (token, event, price, updated_by)
         SELECT $1, e, p, $4 FROM UNNEST($2::billable_event[], $3::numeric[]) AS t(e, p)",
        SqlAddress(token) as SqlAddress,
        &events as &[EventType],
        &amounts[..] as &[Amount],
        admin
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_prices_override_defaults_event_by_event() {
        let defaults = PriceList {
            cpm: Some(Amount(2_000_000)),
            cpc: Some(Amount(50_000)),
            ..PriceList::default()
        }
        .to_unit_prices()
        .unwrap();
        let own = PriceList {
            cpc: Some(Amount(70_000)),
            cpa: Some(Amount(1_000_000)),
            ..PriceList::default()
        }
        .to_unit_prices()
        .unwrap();
        let effective = UnitPrices::effective(&own, &defaults);
        assert_eq!(effective.get(EventType::Impression), Some(Amount(2_000)));
        assert_eq!(effective.get(EventType::Click), Some(Amount(70_000)));
        assert_eq!(effective.get(EventType::View), None);
        assert_eq!(effective.get(EventType::Acquisition), Some(Amount(1_000_000)));
        assert_eq!(effective.max(), Amount(1_000_000));
    }

    #[test]
    fn refuses_zero_and_fractional_cpm() {
        let zero = PriceList {
            cpc: Some(Amount(0)),
            ..PriceList::default()
        };
        assert_eq!(zero.to_unit_prices().unwrap_err().field, "cpc");
        let whole = PriceList {
            cpm: Some(Amount(1_000)),
            cpc: Some(Amount(1)),
            ..PriceList::default()
        };
        assert_eq!(
            whole.to_unit_prices().unwrap().get(EventType::Impression),
            Some(Amount(1))
        );
        let fractional = PriceList {
            cpm: Some(Amount(1_500)),
            ..PriceList::default()
        };
        assert_eq!(fractional.to_unit_prices().unwrap_err().field, "cpm");
    }
}

//! Calendar periods in a zone: a local day, an ISO week (Monday to Sunday), a calendar
//! month, or all time. Pure functions of an instant or a date, so billing, the API and the
//! tests agree wherever the clock is (midnight, month ends, DST changes).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::adserver::schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "leaderboard_period", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    Month,
    All,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 4] = [Self::Day, Self::Week, Self::Month, Self::All];

    pub fn label(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// One period: its kind and its first local day (1970-01-01 for all time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub kind: PeriodKind,
    pub starts_on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("a period is day, week, month or all")]
    UnknownKind,
    #[error("a date is YYYY-MM-DD")]
    BadDate,
}

/// The first day of all time's only period.
const EPOCH: Date = jiff::civil::date(1970, 1, 1);

impl Period {
    /// The period of `kind` holding local date `date`.
    pub fn containing(kind: PeriodKind, date: Date) -> Self {
        let starts_on = match kind {
            PeriodKind::Day => date,
            PeriodKind::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(jiff::Span::new().days(back)).unwrap_or(date)
            }
            PeriodKind::Month => date.first_of_month(),
            PeriodKind::All => EPOCH,
        };
        Self { kind, starts_on }
    }

    /// The periods of every kind an instant falls in, in `zone`.
    pub fn all_at(at: Timestamp, zone: &TimeZone) -> [Period; 4] {
        let date = at.to_zoned(zone.clone()).date();
        PeriodKind::ALL.map(|kind| Self::containing(kind, date))
    }

    /// The day after its last: `None` for all time.
    pub fn next_start(&self) -> Option<Date> {
        let span = match self.kind {
            PeriodKind::Day => jiff::Span::new().days(1),
            PeriodKind::Week => jiff::Span::new().weeks(1),
            PeriodKind::Month => jiff::Span::new().months(1),
            PeriodKind::All => return None,
        };
        self.starts_on.checked_add(span).ok()
    }

    /// When it ends in `zone` (the start of its next period): `None` for all time.
    pub fn ends_at(&self, zone: &TimeZone) -> Option<Timestamp> {
        self.next_start().map(|next| schedule::start_of_day(next, zone))
    }

    /// A period as the API names it: a kind and any date in it (`YYYY-MM-DD`); no date
    /// means the current one.
    pub fn parse(kind: &str, date: Option<&str>, now: Timestamp, zone: &TimeZone) -> Result<Self, PeriodError> {
        let kind = PeriodKind::parse(kind).ok_or(PeriodError::UnknownKind)?;
        let date = match date {
            Some(text) => text.parse::<Date>().map_err(|_| PeriodError::BadDate)?,
            None => now.to_zoned(zone.clone()).date(),
        };
        Ok(Self::containing(kind, date))
    }

    /// Its first day as Postgres takes it.
    pub fn starts_on_db(&self) -> time::Date {
        schedule::civil_date(self.starts_on)
    }
}

/// A Postgres `date` as a jiff date: both take years -9999 to 9999 and agree on the
/// calendar, so this cannot fail for a date Postgres returned.
pub fn from_db(date: time::Date) -> Date {
    Date::new(date.year() as i16, u8::from(date.month()) as i8, date.day() as i8).unwrap_or(EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn periods_are_local_days_iso_weeks_and_months() {
        let zone = TimeZone::get("America/New_York").unwrap();
        // 03:30 UTC on Monday 2 March 2026 is still Sunday 1 March in New York.
        let [day, week, month, all] = Period::all_at(at("2026-03-02T03:30:00Z"), &zone);
        assert_eq!(day.starts_on, jiff::civil::date(2026, 3, 1));
        assert_eq!(
            week.starts_on,
            jiff::civil::date(2026, 2, 23),
            "the ISO week began on Monday"
        );
        assert_eq!(month.starts_on, jiff::civil::date(2026, 3, 1));
        assert_eq!(all.starts_on, EPOCH);
        assert_eq!(all.ends_at(&zone), None);
    }

    #[test]
    fn a_day_across_a_dst_change_ends_at_the_next_local_midnight() {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        // 29 March 2026: clocks go from 02:00 to 03:00, so the day is 23 hours long.
        let day = Period::containing(PeriodKind::Day, jiff::civil::date(2026, 3, 29));
        assert_eq!(day.ends_at(&zone), Some(at("2026-03-29T22:00:00Z")));
        let before = Period::containing(PeriodKind::Day, jiff::civil::date(2026, 3, 28));
        assert_eq!(before.ends_at(&zone), Some(at("2026-03-28T23:00:00Z")));
        // The last second of the short day is in it; the next is in the 30th.
        assert_eq!(Period::all_at(at("2026-03-29T21:59:59Z"), &zone)[0], day);
        assert_eq!(
            Period::all_at(at("2026-03-29T22:00:00Z"), &zone)[0].starts_on,
            jiff::civil::date(2026, 3, 30)
        );
    }

    #[test]
    fn bad_kinds_and_dates_are_refused() {
        let now = at("2026-12-06T00:00:00Z");
        assert_eq!(
            Period::parse("year", None, now, &TimeZone::UTC),
            Err(PeriodError::UnknownKind)
        );
        assert_eq!(
            Period::parse("day", Some("2026-13-01"), now, &TimeZone::UTC),
            Err(PeriodError::BadDate)
        );
        let month = Period::parse("month", Some("2026-02-17"), now, &TimeZone::UTC).unwrap();
        assert_eq!(month.next_start(), Some(jiff::civil::date(2026, 3, 1)));
    }
}

//! When a campaign may run: its dates, and its dayparting window in the brand's time zone.
//! Pure functions of an instant, so the scheduler, the ad server and the tests agree and
//! tests can put the clock anywhere (midnight, month ends, DST changes).
//!
//! Zones come from the IANA database bundled into the binary (jiff's `tzdb-bundle-always`),
//! so every machine resolves a zone name the same way.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

/// Looks up an IANA zone name such as `Europe/Berlin`.
pub fn zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

/// Converts from the `time` crate, which sqlx speaks, to jiff, which knows zones. jiff's
/// range ends about a day short of `time`'s (on 9999-12-30); instants past either end are
/// taken as that end, which no schedule can tell apart from it.
pub fn timestamp(at: OffsetDateTime) -> Timestamp {
    let nanos = at.unix_timestamp_nanos();
    Timestamp::from_nanosecond(nanos).unwrap_or(if nanos < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// Converts back from jiff to the `time` crate, whose range holds all of jiff's.
pub fn offset_date_time(at: Timestamp) -> OffsetDateTime {
    let nanos = at.as_nanosecond();
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if nanos < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

/// Hours of the local day in which a campaign runs: `[start, end)`. A window whose end is
/// before its start runs past midnight: 22 to 6 is 22:00 to 05:59 the next morning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daypart {
    pub start_hour: u8,
    pub end_hour: u8,
}

impl Daypart {
    /// A window of hours in 0..=23 whose start and end differ.
    pub fn new(start_hour: u8, end_hour: u8) -> Option<Daypart> {
        (start_hour < 24 && end_hour < 24 && start_hour != end_hour).then_some(Daypart { start_hour, end_hour })
    }

    pub fn contains(&self, local_hour: u8) -> bool {
        if self.start_hour < self.end_hour {
            (self.start_hour..self.end_hour).contains(&local_hour)
        } else {
            local_hour >= self.start_hour || local_hour < self.end_hour
        }
    }
}

/// A campaign's dates and optional daypart, evaluated in its brand's zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub daypart: Option<Daypart>,
}

/// A stored daypart that is not a window of hours (the schema forbids it; the database may
/// hold it anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("daypart {start:?} to {end:?} is not a window of hours 0 to 23")]
pub struct InvalidDaypart {
    pub start: Option<i16>,
    pub end: Option<i16>,
}

impl Schedule {
    /// A campaign's schedule as stored: dates read through `schedule_instant()` (so that
    /// Postgres instants past `time`'s range are readable), and a daypart given by both of
    /// its hours or neither.
    pub fn from_db(
        starts_at: OffsetDateTime,
        ends_at: OffsetDateTime,
        daypart_start_hour: Option<i16>,
        daypart_end_hour: Option<i16>,
    ) -> Result<Schedule, InvalidDaypart> {
        let daypart = match (daypart_start_hour, daypart_end_hour) {
            (None, None) => None,
            (Some(start), Some(end)) => Some(
                u8::try_from(start)
                    .ok()
                    .zip(u8::try_from(end).ok())
                    .and_then(|(start, end)| Daypart::new(start, end))
                    .ok_or(InvalidDaypart {
                        start: Some(start),
                        end: Some(end),
                    })?,
            ),
            (start, end) => return Err(InvalidDaypart { start, end }),
        };
        Ok(Schedule {
            starts_at: timestamp(starts_at),
            ends_at: timestamp(ends_at),
            daypart,
        })
    }

    pub fn has_ended(&self, now: Timestamp) -> bool {
        now >= self.ends_at
    }

    /// Whether the campaign may show ads at `now`: within its dates and its daypart.
    pub fn is_live(&self, now: Timestamp, zone: &TimeZone) -> bool {
        self.is_live_at(now, local_hour(now, zone))
    }

    /// [`Self::is_live`] for a caller that already knows the local hour at `now`.
    pub fn is_live_at(&self, now: Timestamp, local_hour: u8) -> bool {
        now >= self.starts_at && now < self.ends_at && self.daypart.is_none_or(|daypart| daypart.contains(local_hour))
    }
}

/// The hour of the local wall clock at `now`.
pub fn local_hour(now: Timestamp, zone: &TimeZone) -> u8 {
    now.to_zoned(zone.clone()).hour() as u8
}

/// The instant `date` begins in `zone`. Only the first and last days of jiff's range can
/// fall outside it in some zones; they are taken as its ends.
pub fn start_of_day(date: jiff::civil::Date, zone: &TimeZone) -> Timestamp {
    date.to_zoned(zone.clone())
        .map(|start| start.timestamp())
        .unwrap_or(if date.year() < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

/// The local calendar date at `now`, and the first of its month, as Postgres `date`s.
pub fn local_day_and_month(now: Timestamp, zone: &TimeZone) -> (time::Date, time::Date) {
    let date = now.to_zoned(zone.clone()).date();
    (civil_date(date), civil_date(date.first_of_month()))
}

/// A jiff date as a `time` date: both take years -9999 to 9999 and agree on the calendar.
pub fn civil_date(date: jiff::civil::Date) -> time::Date {
    // `nth_next` from January cannot fail, unlike `Month::try_from`.
    let month = time::Month::January.nth_next(date.month().unsigned_abs() - 1);
    time::Date::from_calendar_date(i32::from(date.year()), month, date.day().unsigned_abs()).unwrap_or(
        if date.year() < 0 {
            time::Date::MIN
        } else {
            time::Date::MAX
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn daypart_past_midnight_wraps() {
        let night = Daypart::new(22, 6).unwrap();
        assert!(night.contains(22) && night.contains(23) && night.contains(0) && night.contains(5));
        assert!(!night.contains(6) && !night.contains(12) && !night.contains(21));
        let office = Daypart::new(9, 17).unwrap();
        assert!(office.contains(9) && office.contains(16));
        assert!(!office.contains(17) && !office.contains(8));
        assert_eq!(Daypart::new(5, 5), None);
        assert_eq!(Daypart::new(0, 24), None);
    }

    #[test]
    fn daypart_is_read_on_the_local_clock() {
        let tokyo = zone("Asia/Tokyo").unwrap();
        let schedule = Schedule {
            starts_at: at("2026-01-01T00:00:00Z"),
            ends_at: at("2027-01-01T00:00:00Z"),
            daypart: Daypart::new(22, 6),
        };
        // 14:00 UTC is 23:00 in Tokyo: inside; 00:00 UTC is 09:00 in Tokyo: outside.
        assert!(schedule.is_live(at("2026-03-10T14:00:00Z"), &tokyo));
        assert!(schedule.is_live(at("2026-03-10T20:59:59Z"), &tokyo));
        assert!(!schedule.is_live(at("2026-03-10T21:00:00Z"), &tokyo));
        assert!(!schedule.is_live(at("2026-03-11T00:00:00Z"), &tokyo));
    }

    #[test]
    fn local_days_and_months_turn_at_local_midnight_across_dst() {
        let date = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        let day = |at_utc: &str, zone: &TimeZone| {
            let (day, month) = local_day_and_month(at(at_utc), zone);
            (day.to_string(), month.to_string())
        };
        let berlin = zone("Europe/Berlin").unwrap();
        // Summer time: local midnight is 22:00 UTC the day before.
        assert_eq!(
            day("2026-07-14T21:59:59Z", &berlin),
            ("2026-07-14".into(), "2026-07-01".into())
        );
        assert_eq!(
            day("2026-07-14T22:00:00Z", &berlin),
            ("2026-07-15".into(), "2026-07-01".into())
        );
        // Clocks went forward on 29 March: the month turns at 22:00 UTC on the 31st.
        assert_eq!(
            day("2026-03-31T21:59:59Z", &berlin),
            ("2026-03-31".into(), "2026-03-01".into())
        );
        assert_eq!(
            day("2026-03-31T22:00:00Z", &berlin),
            ("2026-04-01".into(), "2026-04-01".into())
        );
        // Santiago skips midnight when summer time starts: the 6th begins at 01:00 local.
        let santiago = zone("America/Santiago").unwrap();
        assert_eq!(day("2026-09-06T03:59:59Z", &santiago).0, "2026-09-05");
        assert_eq!(day("2026-09-06T04:00:00Z", &santiago).0, "2026-09-06");
        assert_eq!(
            date("2026-09-06").to_zoned(santiago).unwrap().timestamp(),
            at("2026-09-06T04:00:00Z")
        );
        assert!(zone("Mars/Olympus_Mons").is_none());
    }

    #[test]
    fn instants_past_jiffs_range_are_its_ends() {
        use time::macros::datetime;
        assert_eq!(timestamp(datetime!(9999-12-31 23:59:59 UTC)), Timestamp::MAX);
        assert_eq!(timestamp(datetime!(-9999-01-01 00:00 UTC)), Timestamp::MIN);
        let inside = datetime!(2026-03-10 14:00:00.5 UTC);
        assert_eq!(offset_date_time(timestamp(inside)), inside);
        let far = timestamp(datetime!(9999-12-31 23:59:59 UTC));
        let (day, month) = local_day_and_month(far, &zone("Pacific/Kiritimati").unwrap());
        assert_eq!(
            (day.to_string(), month.to_string()),
            ("9999-12-31".into(), "9999-12-01".into())
        );
    }

    #[test]
    fn stored_dayparts_are_both_hours_or_neither() {
        use time::macros::datetime;
        let (start, end) = (datetime!(2026-01-01 0:00 UTC), datetime!(2027-01-01 0:00 UTC));
        assert_eq!(
            Schedule::from_db(start, end, Some(22), Some(6)).unwrap().daypart,
            Daypart::new(22, 6)
        );
        assert_eq!(Schedule::from_db(start, end, None, None).unwrap().daypart, None);
        for (start_hour, end_hour) in [
            (Some(9), None),
            (None, Some(9)),
            (Some(300), Some(6)),
            (Some(-1), Some(6)),
            (Some(5), Some(5)),
        ] {
            assert!(
                Schedule::from_db(start, end, start_hour, end_hour).is_err(),
                "{start_hour:?} {end_hour:?}"
            );
        }
    }
}

//! Values every domain takes from outside, each a newtype whose `parse` is the only way in:
//! once a value is a [`Name`] or an [`Instant`], no later code checks it again. A refusal
//! is a [`ValueError`] that names the bound; [`At::at`] adds the field it came from.

use std::fmt;

use jiff::civil;
use time::{OffsetDateTime, UtcOffset};
use url::Url;

/// Why a value was refused. The messages are the API's: they reach clients as `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must be {min} to {max} characters")]
    Length { min: usize, max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must be in the years {} to {}", YEARS.start, YEARS.end - 1)]
    Year,
    #[error("must be a date as YYYY-MM-DD")]
    DateFormat,
    #[error("unknown IANA time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("must be an http or https URL")]
    NotWebUrl,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must have at most {max} entries")]
    TooMany { max: usize },
    #[error("must be {min} to {max}")]
    OutOfRange { min: i64, max: i64 },
    /// A domain's own rule for one value, in its words.
    #[error("{0}")]
    Refused(&'static str),
    /// One entry of a list is refused; the field path gets `[index]`.
    #[error("entry {index}: {error}")]
    Entry { index: usize, error: Box<ValueError> },
}

/// A refused value and the field it came from, as a path (`targeting.regions[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct Invalid {
    pub field: String,
    pub error: ValueError,
}

impl Invalid {
    /// Names the field; an [`ValueError::Entry`] becomes an index in the path.
    pub fn new(field: impl Into<String>, error: ValueError) -> Self {
        let mut field = field.into();
        let mut error = error;
        while let ValueError::Entry { index, error: inner } = error {
            field = format!("{field}[{index}]");
            error = *inner;
        }
        Self { field, error }
    }

    /// The same refusal inside `parent`: `cpm` within `prices` is `prices.cpm`.
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            error: self.error,
        }
    }
}

/// Names the field a parse result came from.
pub trait At<T> {
    fn at(self, field: impl Into<String>) -> Result<T, Invalid>;
}

impl<T> At<T> for Result<T, ValueError> {
    fn at(self, field: impl Into<String>) -> Result<T, Invalid> {
        self.map_err(|error| Invalid::new(field, error))
    }
}

/// Trimmed text of `MIN` to `MAX` characters (Unicode scalar values).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let value = value.trim();
        let len = value.chars().count();
        if !(MIN..=MAX).contains(&len) {
            return Err(ValueError::Length { min: MIN, max: MAX });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Display for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A short reference a client chooses (a viewer id, an order reference): 1 to 128
/// characters.
pub type Reference = Text<1, 128>;

/// A display name: trimmed, 1 to 100 characters (the database checks the same bound), on
/// one line: no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    pub const MAX: usize = 100;

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let text = Text::<1, { Name::MAX }>::parse(value)?;
        if text.as_str().chars().any(char::is_control) {
            return Err(ValueError::ControlCharacter);
        }
        Ok(Self(text.into_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The years in which the service accepts instants and dates (campaign dates, receipt
/// times, report ranges): `[2000, 2100)`. Well inside what the escrow (40-bit seconds),
/// Postgres and both time crates represent, so no later conversion of an accepted value,
/// in any zone, can fail.
pub const YEARS: std::ops::Range<i32> = 2000..2100;

/// An instant within [`YEARS`] (in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(OffsetDateTime);

impl Instant {
    pub fn parse(at: OffsetDateTime) -> Result<Self, ValueError> {
        if !YEARS.contains(&at.to_offset(UtcOffset::UTC).year()) {
            return Err(ValueError::Year);
        }
        Ok(Self(at))
    }

    pub fn get(self) -> OffsetDateTime {
        self.0
    }
}

/// A calendar date within [`YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(civil::Date);

impl Date {
    /// A date written as `YYYY-MM-DD`.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let date: civil::Date = value.parse().map_err(|_| ValueError::DateFormat)?;
        Self::new(date)
    }

    pub fn new(date: civil::Date) -> Result<Self, ValueError> {
        if !YEARS.contains(&i32::from(date.year())) {
            return Err(ValueError::Year);
        }
        Ok(Self(date))
    }

    pub fn get(self) -> civil::Date {
        self.0
    }
}

/// An IANA time zone name the zone database bundled into the binary knows.
#[derive(Debug, Clone)]
pub struct TimeZone {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl TimeZone {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let name = value.trim();
        let zone = jiff::tz::TimeZone::get(name).map_err(|_| ValueError::UnknownTimeZone(name.to_owned()))?;
        Ok(Self {
            name: name.to_owned(),
            zone,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }
}

impl PartialEq for TimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZone {}

/// A link shown to viewers: http or https with a host, at most 2048 characters, so no
/// `javascript:` or `data:` URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebUrl(Url);

impl WebUrl {
    pub const MAX: usize = 2048;

    pub fn parse(url: Url) -> Result<Self, ValueError> {
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ValueError::NotWebUrl);
        }
        if url.as_str().len() > Self::MAX {
            return Err(ValueError::TooLong { max: Self::MAX });
        }
        Ok(Self(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn into_url(self) -> Url {
        self.0
    }
}

impl std::str::FromStr for WebUrl {
    type Err = ValueError;

    fn from_str(value: &str) -> Result<Self, ValueError> {
        Self::parse(value.parse().map_err(|_| ValueError::NotWebUrl)?)
    }
}

/// A share in basis points: 0 to 10,000 (a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bps(u16);

impl Bps {
    pub const WHOLE: u16 = 10_000;

    pub fn parse(value: u32) -> Result<Self, ValueError> {
        u16::try_from(value)
            .ok()
            .filter(|bps| *bps <= Self::WHOLE)
            .map(Self)
            .ok_or(ValueError::OutOfRange {
                min: 0,
                max: i64::from(Self::WHOLE),
            })
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// A targeting label (a region, community or user type): trimmed and lowercased, 1 to 64
/// characters. Decisions compare labels the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        Ok(Self(Text::<1, 64>::parse(value)?.as_str().to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Targeting labels: at most 100 [`Label`]s, duplicates (after normalizing) dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<Label>);

impl Labels {
    pub const MAX: usize = 100;

    pub fn parse(values: &[String]) -> Result<Self, ValueError> {
        if values.len() > Self::MAX {
            return Err(ValueError::TooMany { max: Self::MAX });
        }
        let mut labels = Vec::with_capacity(values.len());
        for (index, value) in values.iter().enumerate() {
            let label = Label::parse(value).map_err(|error| ValueError::Entry {
                index,
                error: Box::new(error),
            })?;
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        Ok(Self(labels))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// The labels as plain strings, as they are stored and shown.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|label| label.0.clone()).collect()
    }
}

/// An integer within `MIN..=MAX` (priorities, caps, counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bounded<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    pub fn parse(value: impl Into<i64>) -> Result<Self, ValueError> {
        let value = value.into();
        if !(MIN..=MAX).contains(&value) {
            return Err(ValueError::OutOfRange { min: MIN, max: MAX });
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use time::Month;

    use super::*;

    fn at(year: i32, month: Month, day: u8, hour: u8, offset_hours: i8) -> OffsetDateTime {
        time::Date::from_calendar_date(year, month, day)
            .unwrap()
            .with_hms(hour, 0, 0)
            .unwrap()
            .assume_offset(UtcOffset::from_hms(offset_hours, 0, 0).unwrap())
    }

    #[test]
    fn names_are_trimmed_and_bounded_on_one_line() {
        assert_eq!(Name::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert_eq!(Name::parse("a").unwrap().as_str(), "a");
        let longest = "é".repeat(100);
        assert_eq!(Name::parse(&longest).unwrap().as_str(), longest);
        let too_long = "é".repeat(101);
        assert_eq!(Name::parse(&too_long), Err(ValueError::Length { min: 1, max: 100 }));
        assert_eq!(Name::parse("   "), Err(ValueError::Length { min: 1, max: 100 }));
        assert_eq!(Name::parse(""), Err(ValueError::Length { min: 1, max: 100 }));
        assert_eq!(Name::parse("Ac\nme"), Err(ValueError::ControlCharacter));
        assert_eq!(Name::parse("Ac\u{7f}me"), Err(ValueError::ControlCharacter));
        assert_eq!(Name::parse("").unwrap_err().to_string(), "must be 1 to 100 characters");
    }

    #[test]
    fn text_bounds_count_characters_after_trimming() {
        type Reason = Text<1, 500>;
        assert!(Reason::parse(&"x".repeat(500)).is_ok());
        assert!(Reason::parse(&format!(" {} ", "x".repeat(500))).is_ok());
        assert_eq!(
            Reason::parse(&"x".repeat(501)),
            Err(ValueError::Length { min: 1, max: 500 })
        );
        assert!(Reason::parse(" ").is_err());
        assert_eq!(Text::<0, 3>::parse(" ").unwrap().as_str(), "");
        assert!(Reference::parse(&"v".repeat(128)).is_ok());
        assert!(Reference::parse(&"v".repeat(129)).is_err());
    }

    #[test]
    fn instants_and_dates_outside_the_supported_years_are_refused() {
        assert!(Instant::parse(at(2099, Month::December, 31, 23, 0)).is_ok());
        assert!(Instant::parse(at(2000, Month::January, 1, 0, 0)).is_ok());
        assert_eq!(Instant::parse(at(2100, Month::January, 1, 0, 0)), Err(ValueError::Year));
        assert!(Instant::parse(at(1999, Month::December, 31, 23, 0)).is_err());
        assert!(Instant::parse(at(9999, Month::December, 31, 23, 0)).is_err());
        // The year counts in UTC.
        assert!(Instant::parse(at(2100, Month::January, 1, 0, 1)).is_ok());
        assert!(Instant::parse(at(2000, Month::January, 1, 0, -1)).is_ok());
        assert!(Instant::parse(at(2000, Month::January, 1, 0, 1)).is_err());
        assert_eq!(ValueError::Year.to_string(), "must be in the years 2000 to 2099");

        assert!(Date::parse("2000-01-01").is_ok());
        assert!(Date::parse("2099-12-31").is_ok());
        assert_eq!(Date::parse("1999-12-31"), Err(ValueError::Year));
        assert_eq!(Date::parse("2100-01-01"), Err(ValueError::Year));
        assert_eq!(Date::parse("02/12/2026"), Err(ValueError::DateFormat));
        assert_eq!(Date::parse("2026-02-30"), Err(ValueError::DateFormat));
    }

    #[test]
    fn time_zones_are_iana_names() {
        let zone = TimeZone::parse(" Europe/Berlin ").unwrap();
        assert_eq!(zone.name(), "Europe/Berlin");
        assert_eq!(
            TimeZone::parse("Mars/Olympus"),
            Err(ValueError::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert_eq!(
            TimeZone::parse("Mars/Olympus").unwrap_err().to_string(),
            "unknown IANA time zone \"Mars/Olympus\""
        );
        assert!(TimeZone::parse("").is_err());
    }

    #[test]
    fn web_urls_are_http_or_https_with_a_host_and_bounded() {
        assert!("https://example.com/landing".parse::<WebUrl>().is_ok());
        assert!("http://example.com".parse::<WebUrl>().is_ok());
        assert_eq!("javascript:alert(1)".parse::<WebUrl>(), Err(ValueError::NotWebUrl));
        assert_eq!("data:text/html,hi".parse::<WebUrl>(), Err(ValueError::NotWebUrl));
        assert_eq!("ftp://example.com/".parse::<WebUrl>(), Err(ValueError::NotWebUrl));
        let prefix = "https://example.com/";
        let longest = format!("{prefix}{}", "a".repeat(WebUrl::MAX - prefix.len()));
        assert!(longest.parse::<WebUrl>().is_ok());
        let too_long = format!("{longest}a");
        assert_eq!(too_long.parse::<WebUrl>(), Err(ValueError::TooLong { max: 2048 }));
    }

    #[test]
    fn basis_points_are_at_most_a_whole() {
        assert_eq!(Bps::parse(0).unwrap().get(), 0);
        assert_eq!(Bps::parse(10_000).unwrap().get(), 10_000);
        assert_eq!(Bps::parse(10_001), Err(ValueError::OutOfRange { min: 0, max: 10_000 }));
        assert!(Bps::parse(u32::MAX).is_err());
    }

    #[test]
    fn labels_are_normalized_deduplicated_and_bounded() {
        let labels = Labels::parse(&[" EU ".into(), "eu".into(), "us".into()]).unwrap();
        assert_eq!(labels.to_strings(), ["eu", "us"]);
        assert!(Label::parse(&"x".repeat(64)).is_ok());
        assert_eq!(
            Label::parse(&"x".repeat(65)),
            Err(ValueError::Length { min: 1, max: 64 })
        );
        let hundred: Vec<String> = (0..100).map(|i| format!("l{i}")).collect();
        assert_eq!(Labels::parse(&hundred).unwrap().iter().count(), 100);
        let too_many: Vec<String> = (0..101).map(|i| format!("l{i}")).collect();
        assert_eq!(Labels::parse(&too_many), Err(ValueError::TooMany { max: 100 }));
        let invalid = Labels::parse(&["eu".into(), " ".into()]).at("targeting.regions");
        assert_eq!(
            invalid,
            Err(Invalid {
                field: "targeting.regions[1]".into(),
                error: ValueError::Length { min: 1, max: 64 }
            })
        );
    }

    #[test]
    fn bounded_integers_refuse_just_outside() {
        type Priority = Bounded<0, 100>;
        assert!(Priority::parse(0).is_ok());
        assert!(Priority::parse(100).is_ok());
        assert_eq!(Priority::parse(-1), Err(ValueError::OutOfRange { min: 0, max: 100 }));
        assert!(Priority::parse(101).is_err());
        assert_eq!(Priority::parse(101).unwrap_err().to_string(), "must be 0 to 100");
    }
}

//! Checks of request values that serde's types cannot express, each failing with a 422 that
//! names the field.

use jiff::civil::Date;
use time::OffsetDateTime;
use url::Url;

use super::error::{ApiError, ApiResult};
use crate::adserver::schedule;
use crate::money::Amount;

/// A display name: trimmed, 1 to 100 characters (the database checks the same bound).
pub fn name<'a>(field: &str, value: &'a str) -> ApiResult<&'a str> {
    text(field, value, 1, 100)
}

/// Trimmed text of `min` to `max` characters.
pub fn text<'a>(field: &str, value: &'a str, min: usize, max: usize) -> ApiResult<&'a str> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(ApiError::invalid(field, format!("must be {min} to {max} characters")));
    }
    Ok(value)
}

/// The years in which the service accepts instants and dates (campaign dates, receipt
/// times, report ranges): `[2000, 2100)`. Well inside what the escrow (40-bit seconds),
/// Postgres and both time crates represent, so no later conversion of an accepted value,
/// in any zone, can fail.
pub const YEARS: std::ops::Range<i32> = 2000..2100;

/// An instant within [`YEARS`] (in UTC).
pub fn instant(field: &str, at: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    if !YEARS.contains(&at.to_offset(time::UtcOffset::UTC).year()) {
        return Err(year_out_of_range(field));
    }
    Ok(at)
}

/// A calendar date as `YYYY-MM-DD`, within [`YEARS`].
pub fn date(field: &str, value: &str) -> ApiResult<Date> {
    let date: Date = value
        .parse()
        .map_err(|_| ApiError::invalid(field, "must be a date as YYYY-MM-DD"))?;
    if !YEARS.contains(&i32::from(date.year())) {
        return Err(year_out_of_range(field));
    }
    Ok(date)
}

fn year_out_of_range(field: &str) -> ApiError {
    ApiError::invalid(
        field,
        format!("must be in the years {} to {}", YEARS.start, YEARS.end - 1),
    )
}

/// An amount that must be more than zero (budgets, prices).
pub fn positive(field: &str, amount: Amount) -> ApiResult<Amount> {
    if amount.is_zero() {
        return Err(ApiError::invalid(field, "must be greater than zero"));
    }
    Ok(amount)
}

/// An IANA time zone name the bundled zone database knows.
pub fn time_zone(field: &str, value: &str) -> ApiResult<String> {
    let value = value.trim();
    if schedule::zone(value).is_none() {
        return Err(ApiError::invalid(field, format!("unknown IANA time zone {value:?}")));
    }
    Ok(value.to_owned())
}

/// A link shown to viewers: http or https only, so no `javascript:` or `data:` URLs.
pub fn web_url(field: &str, url: &Url) -> ApiResult<()> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ApiError::invalid(field, "must be an http or https URL"));
    }
    if url.as_str().len() > 2048 {
        return Err(ApiError::invalid(field, "must be at most 2048 characters"));
    }
    Ok(())
}

/// Targeting labels (regions, communities, user types): trimmed, lowercase, 1 to 64
/// characters each, at most 100, without duplicates. Decisions compare them the same way.
pub fn labels(field: &str, values: &[String]) -> ApiResult<Vec<String>> {
    if values.len() > 100 {
        return Err(ApiError::invalid(field, "must have at most 100 entries"));
    }
    let mut labels = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let label = label(&format!("{field}[{i}]"), value)?;
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    Ok(labels)
}

/// One targeting label, normalized as [`labels`] does.
pub fn label(field: &str, value: &str) -> ApiResult<String> {
    Ok(text(field, value, 1, 64)?.to_lowercase())
}

#[cfg(test)]
mod tests {
    use time::{Month, UtcOffset};

    use super::*;

    fn at(year: i32, month: Month, day: u8, hour: u8, offset_hours: i8) -> OffsetDateTime {
        time::Date::from_calendar_date(year, month, day)
            .unwrap()
            .with_hms(hour, 0, 0)
            .unwrap()
            .assume_offset(UtcOffset::from_hms(offset_hours, 0, 0).unwrap())
    }

    #[test]
    fn instants_and_dates_outside_the_supported_years_are_refused() {
        assert!(instant("endsAt", at(2099, Month::December, 31, 23, 0)).is_ok());
        assert!(instant("endsAt", at(9999, Month::December, 31, 23, 0)).is_err());
        assert!(
            instant("endsAt", at(2100, Month::January, 1, 0, 1)).is_ok(),
            "2099 in UTC"
        );
        assert!(instant("at", at(1970, Month::January, 1, 0, 0)).is_err());
        assert!(date("to", "2026-12-02").is_ok());
        assert!(date("to", "9999-12-31").is_err());
        assert!(date("from", "02/12/2026").is_err());
    }
}

//! Checks of request values that serde's types cannot express, each failing with a 422 that
//! names the field.

use url::Url;

use super::error::{ApiError, ApiResult};
use crate::money::Amount;
use crate::schedule;

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

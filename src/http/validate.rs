//! Request values as handlers take them: each is parsed into its newtype from
//! [`crate::platform::values`], and a refusal becomes a 422 that names the field.

use time::OffsetDateTime;

use super::error::ApiResult;
use crate::platform::values::{At, Instant, Invalid, Name, ValueError};

/// A display name (see [`Name`]), trimmed.
pub fn name<'a>(field: &str, value: &'a str) -> ApiResult<&'a str> {
    Name::parse(value).at(field)?;
    Ok(value.trim())
}

/// Trimmed text of `min` to `max` characters, for bounds chosen at run time; fixed bounds
/// are a [`crate::platform::values::Text`].
pub fn text<'a>(field: &str, value: &'a str, min: usize, max: usize) -> ApiResult<&'a str> {
    let value = value.trim();
    if !(min..=max).contains(&value.chars().count()) {
        return Err(Invalid::new(field, ValueError::Length { min, max }).into());
    }
    Ok(value)
}

/// An instant within [`crate::platform::values::YEARS`].
pub fn instant(field: &str, at: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    Ok(Instant::parse(at).at(field)?.get())
}

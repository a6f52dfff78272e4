//! Checks of request values that serde's types cannot express, each failing with a 422 that
//! names the field.

use super::error::{ApiError, ApiResult};

/// A display name: trimmed, 1 to 100 characters (the database checks the same bound).
pub fn name<'a>(field: &str, value: &'a str) -> ApiResult<&'a str> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 {
        return Err(ApiError::invalid(field, "must be 1 to 100 characters"));
    }
    Ok(value)
}

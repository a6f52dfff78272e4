//! Request extractors whose rejections are problem documents like every other error.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::{AppState, middleware};
use crate::accounts::principal::{AuthError, MissingRole, Refusal};
use crate::accounts::{Authenticated, Principal};

/// A JSON body. Unlike `axum::Json`, a rejection names the field at fault (as a path such
/// as `items[2].price`) in a problem document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        parse(&bytes).map(Json)
    }
}

/// A JSON body, checked for its media type and size but not yet parsed: for handlers that
/// parse large bodies off the async runtime (with [`parse`]).
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl<S> FromRequest<S> for JsonBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        Bytes::from_request(req, state)
            .await
            .map(JsonBody)
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                    ApiError::PayloadTooLarge
                }
                other => ApiError::MalformedBody(other.body_text()),
            })
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(req: &Request) -> bool {
    let Some(value) = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes a JSON document, classifying failures: broken JSON is a 400, JSON of the
/// wrong shape is a 422 naming the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul(bytes)?;
    // Tracking the path costs on every value; only a body that fails pays for it, parsed
    // a second time to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                ApiError::invalid(field_path(&path, &message), message)
            }
            _ => ApiError::MalformedBody(inner.to_string()),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedBody(error.to_string()))?;
    Ok(value)
}

const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Refuses a body with U+0000 in any string, naming where. Postgres cannot store it in text
/// and no field has a use for it, so one check here covers every field of every body, and
/// a body is refused before anything is written. JSON can only carry it as the escape
/// `\u0000`, so a body without that sequence (nearly all) costs one SIMD scan.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if memchr::memmem::find(bytes, br"\u0000").is_none() {
        return Ok(());
    }
    // Broken JSON is reported by the typed parse that follows.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match nul_path(&value) {
        Some(path) => Err(ApiError::invalid(path, NUL_MESSAGE)),
        None => Ok(()),
    }
}

/// The path (as [`parse`] names fields: `items[2].title`) of the first string or member
/// name holding U+0000.
fn nul_path(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let join = |parent: &str, child: &str| {
        if parent.is_empty() {
            child.to_owned()
        } else {
            format!("{parent}.{child}")
        }
    };
    let mut pending = vec![(String::new(), value)];
    while let Some((path, value)) = pending.pop() {
        match value {
            Value::String(text) if text.contains('\0') => {
                return Some(if path.is_empty() { "body".to_owned() } else { path });
            }
            Value::Array(items) => pending.extend(
                items
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, item)| (format!("{path}[{i}]"), item)),
            ),
            Value::Object(members) => {
                for (name, member) in members.iter().rev() {
                    if name.contains('\0') {
                        return Some(join(&path, name));
                    }
                    pending.push((join(&path, name), member));
                }
            }
            _ => {}
        }
    }
    None
}

/// serde reports a missing field at its parent's path, naming the field in backticks;
/// append it so the client learns the full path. (Unknown fields are already in the path.)
fn field_path(path: &str, message: &str) -> String {
    let named = message
        .starts_with("missing field")
        .then(|| message.split('`').nth(1))
        .flatten();
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (".", None) => "body".to_owned(),
        (path, None) => path.to_owned(),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// A path parameter. A rejection names the parameter that failed to parse.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let field = match &rejection {
            PathRejection::FailedToDeserializePathParams(error) => match error.kind() {
                ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                _ => "path".to_owned(),
            },
            _ => "path".to_owned(),
        };
        ApiError::invalid(field, rejection.body_text())
    }
}

/// A query string. A rejection is a 422 problem like any other bad field, as is U+0000 in
/// any value.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = url::form_urlencoded::parse(query.as_bytes()).find(|(_, value)| value.contains('\0')) {
            return Err(ApiError::invalid(name, NUL_MESSAGE));
        }
        let axum::extract::Query(value) = axum::extract::Query::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid("query", rejection.body_text())
    }
}

/// The request's bearer credential.
pub(super) fn bearer(headers: &HeaderMap) -> Result<&str, Refusal> {
    let header = headers.get(AUTHORIZATION).ok_or(Refusal::Missing)?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(Refusal::NotBearer)
}

/// A user, by session token or API key; identified once per request by the rate limit.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match middleware::identity(parts, state).await? {
            Authenticated::User(principal) => Ok(principal),
            Authenticated::Node(_) => Err(AuthError::Refused(Refusal::InvalidSession).into()),
        }
    }
}

/// A hoster node calling with a node session token. Resolved from memory: the token is a
/// MAC, and the serving index knows which nodes are retired or lost their owner's hoster role.
#[derive(Debug, Clone, Copy)]
pub struct NodeCaller(pub uuid::Uuid);

impl FromRequestParts<AppState> for NodeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match middleware::identity(parts, state).await {
            Ok(Authenticated::Node(node)) => Ok(NodeCaller(node)),
            Err(
                error @ (AuthError::Database(_)
                | AuthError::Refused(Refusal::Missing | Refusal::NotBearer | Refusal::InactiveNode)),
            ) => Err(error.into()),
            // A user's credential, or one that is nobody's: either way not a node's.
            Ok(Authenticated::User(_)) | Err(AuthError::Refused(_)) => {
                Err(AuthError::Refused(Refusal::InvalidNodeSession).into())
            }
        }
    }
}

impl From<MissingRole> for ApiError {
    fn from(error: MissingRole) -> Self {
        ApiError::Forbidden(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        price: u64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    fn field_of(body: &str) -> String {
        match parse::<Order>(body.as_bytes()).unwrap_err() {
            ApiError::InvalidField { field, .. } => field,
            other => panic!("expected InvalidField, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(
            field_of(r#"{"items":[{"name":"a","price":1},{"name":"b","price":"x"}]}"#),
            "items[1].price"
        );
        assert_eq!(field_of(r#"{"items":[{"name":"a"}]}"#), "items[0].price");
        assert_eq!(
            field_of(r#"{"items":[{"name":"a","price":1,"colour":"red"}]}"#),
            "items[0].colour"
        );
        assert_eq!(field_of(r#"{}"#), "items");
    }

    #[test]
    fn nul_is_refused_where_it_is() {
        let nul_at = |body: &str| match refuse_nul(body.as_bytes()) {
            Err(ApiError::InvalidField { field, .. }) => Some(field),
            Ok(()) => None,
            Err(other) => panic!("expected InvalidField, got {other:?}"),
        };
        assert_eq!(nul_at(r#"{"name":"a\u0000b"}"#).as_deref(), Some("name"));
        assert_eq!(
            nul_at(r#"{"items":[{"name":"a"},{"name":"\u0000"}]}"#).as_deref(),
            Some("items[1].name")
        );
        assert_eq!(nul_at(r#"{"tags":{"a\u0000":1}}"#).as_deref(), Some("tags.a\0"));
        // An escaped backslash followed by "u0000" is six ordinary characters.
        assert_eq!(nul_at(r#"{"name":"\\u0000"}"#), None);
        assert_eq!(nul_at(r#"{"name":"plain"}"#), None);
    }

    #[test]
    fn broken_json_is_malformed() {
        for body in ["{", "not json", r#"{"items":[]} trailing"#] {
            assert!(
                matches!(parse::<Order>(body.as_bytes()), Err(ApiError::MalformedBody(_))),
                "{body}"
            );
        }
    }
}

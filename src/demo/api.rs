//! The demo's HTTP client: the public API exactly as a wallet app or a hoster node calls
//! it, JSON in and out, with a bearer token where the route needs one.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::error::{Failure, Result};

/// An API answer that was not necessarily a success.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &Url) -> Self {
        Self {
            http: reqwest::Client::new(),
            // Paths are appended, not joined, so an API behind a path prefix still works.
            base: base.as_str().trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns whatever came back.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Result<Reply> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |source| Failure::Unreachable {
            url: self.url(path),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }

    /// Sends a request that must succeed; returns its JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Result<Value> {
        let reply = self.send(method.clone(), path, token, body).await?;
        if reply.status.is_success() {
            Ok(reply.body)
        } else {
            Err(Failure::Api {
                method: method.as_str().to_owned(),
                path: path.to_owned(),
                status: reply.status.as_u16(),
                body: reply.body.to_string(),
            })
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Value> {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value> {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Posts raw bytes (a file) that must be accepted; returns the JSON answer.
    pub async fn upload(&self, path: &str, token: &str, content_type: &str, content: &[u8]) -> Result<Value> {
        let unreachable = |source| Failure::Unreachable {
            url: self.url(path),
            source,
        };
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(content.to_vec())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            return Err(Failure::Api {
                method: "POST".to_owned(),
                path: path.to_owned(),
                status: status.as_u16(),
                body: body.to_string(),
            });
        }
        Ok(body)
    }

    /// Gets raw bytes (a download) that must be served.
    pub async fn download(&self, path: &str) -> Result<Vec<u8>> {
        let unreachable = |source| Failure::Unreachable {
            url: self.url(path),
            source,
        };
        let response = self.http.get(self.url(path)).send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(Failure::Api {
                method: "GET".to_owned(),
                path: path.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    }
}

/// A string member of a JSON answer, or a mismatch naming it.
pub fn text<'a>(body: &'a Value, pointer: &str) -> Result<&'a str> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::mismatch(format!("member {pointer}"), "a string", body))
}

/// A decimal amount (token base units) of a JSON answer.
pub fn amount(body: &Value, pointer: &str) -> Result<u128> {
    let value = text(body, pointer)?;
    value
        .parse()
        .map_err(|_| Failure::mismatch(format!("member {pointer}"), "a decimal amount", value))
}

/// A parsed member (an address, a hash) of a JSON answer.
pub fn parsed<T: std::str::FromStr>(body: &Value, pointer: &str) -> Result<T> {
    let value = text(body, pointer)?;
    value
        .parse()
        .map_err(|_| Failure::mismatch(format!("member {pointer}"), "a well-formed value", value))
}

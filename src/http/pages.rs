//! The wallet pages (`web/app`, built by `scripts/pages` into `--web-dir`) under `/app`:
//! each page's HTML at `/app/<page>/`, its content-hashed assets at `/app/assets/` (gzipped
//! copies sent to browsers that accept them), and `/app/config.json`, the deployment the
//! pages talk to. The pages call the API on this origin and the chain through the user's
//! wallet, so their CSP allows scripts, styles and requests to `'self'` only.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;
use super::extract::Json;

const PAGES_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
                         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the pages need to know about the deployment.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PagesConfig {
    chain_id: u64,
    escrow: Option<Address>,
    consent: Option<Address>,
    /// Seconds after a campaign's end before its advertiser may withdraw.
    grace_period: Option<u64>,
    /// A block explorer's transaction URL prefix (the hash is appended); none on a devnet.
    explorer_tx: Option<String>,
}

pub fn router(web_dir: &Path) -> Router<AppState> {
    if !web_dir.join("index.html").is_file() {
        tracing::warn!(dir = %web_dir.display(), "the wallet pages are not built (scripts/pages build); /app answers 404");
    }
    let dir = web_dir.to_path_buf();
    let assets = ServeDir::new(web_dir.join("assets")).precompressed_gzip();
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/config.json", get(config))
        .route("/app/", get(page).with_state(dir.clone()))
        .route(
            "/app/{page}",
            get(|UrlPath(name): UrlPath<String>| async move {
                match page_name(&name) {
                    Some(name) => Redirect::permanent(&format!("/app/{name}/")).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route("/app/{page}/", get(page).with_state(dir))
        // Content-hashed names: a changed asset is a new URL.
        .nest_service(
            "/app/assets",
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ))
                .service(assets),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGES_CSP),
        ))
}

async fn config(State(state): State<AppState>) -> Json<PagesConfig> {
    Json(PagesConfig {
        chain_id: state.config.chain_id,
        escrow: state.config.escrow_address,
        consent: state.config.consent_address,
        grace_period: state.config.grace_period,
        explorer_tx: state.config.explorer_tx_url.clone(),
    })
}

/// A page's name: a lower-case word, so that nothing else reaches the file system or a
/// `Location` header.
fn page_name(name: &str) -> Option<&str> {
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()) && name != "assets").then_some(name)
}

/// A page's HTML: `/app/` is the home page, `/app/<page>/` the others.
async fn page(State(dir): State<PathBuf>, name: Option<UrlPath<String>>) -> Response {
    let file = match name {
        None => dir.join("index.html"),
        Some(UrlPath(name)) => match page_name(&name) {
            Some(name) => dir.join(name).join("index.html"),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    match tokio::fs::read_to_string(&file).await {
        Ok(html) => ([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

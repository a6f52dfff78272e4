//! The wallet pages in Debian's Chromium, against a devnet the test starts: the pages built
//! by `web/app/build.mjs`, served by `adescrow serve`'s own code, and driven through
//! `web/app/e2e/browser.mjs` with the test wallet injected (an EIP-1193 provider announced
//! through EIP-6963 that forwards to anvil's unlocked accounts, and rejects on cue). Each
//! test checks the chain and the API, not only the page. Screenshots of every page go to
//! `target/screenshots/pages/`, and each cold load's figures to `loads.jsonl` there.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use adescrow::contracts::TestToken;
use adescrow::platform::config::ApiArgs;
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::support::devnet::Devnet;
use crate::support::{sign_in_body, siwe_message};

mod advertiser;
mod branding;
mod hoster;
mod programs;
mod serving;
mod sign_in;
mod viewer;

/// Gzipped JavaScript one page may load (the issue's budget).
pub const JS_BUDGET: u64 = 150_000;

/// The pages, built once per test process into a directory of its own.
fn built_pages() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("adescrow-pages-{}", std::process::id()));
        let output = std::process::Command::new("node")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("web/app/build.mjs")
            .arg(&dir)
            .output()
            .expect("node runs (scripts/test installs it)");
        assert!(
            output.status.success(),
            "building the pages failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// Where screenshots and load figures go.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/pages");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A devnet serving the pages, and a browser with the test wallet.
pub struct Pages {
    pub devnet: Devnet,
    pub browser: Browser,
}

impl Pages {
    pub async fn start(pool: PgPool) -> Pages {
        Self::start_with(pool, Duration::from_secs(86_400)).await
    }

    /// With the escrow's grace period `grace`.
    pub async fn start_with(pool: PgPool, grace: Duration) -> Pages {
        Self::start_adjusted(pool, grace, |_| {}).await
    }

    /// With the escrow's grace period `grace` and the API's settings changed by `adjust`.
    pub async fn start_adjusted(pool: PgPool, grace: Duration, adjust: impl FnOnce(&mut ApiArgs)) -> Pages {
        let devnet = Devnet::start_with(pool, grace, |api| {
            api.web_dir = built_pages().to_path_buf();
            adjust(api);
        })
        .await;
        let browser = Browser::launch().await;
        Pages { devnet, browser }
    }

    /// The URL of a page: "" for home, or "advertiser", "hoster", ...
    pub fn url(&self, page: &str) -> String {
        let path = if page.is_empty() {
            String::new()
        } else {
            format!("{page}/")
        };
        format!("{}app/{path}", self.devnet.api_url)
    }

    /// The wallet of anvil's account `index`, on anvil's chain.
    pub async fn wallet(&mut self, index: usize) -> Address {
        let account = self.devnet.anvil.addresses()[index];
        self.browser
            .cmd(json!({ "cmd": "wallet", "rpc": self.devnet.anvil.endpoint_url(), "account": account }))
            .await;
        account
    }

    /// A cold load of `page`, screenshot `shot`, with its figures recorded and checked:
    /// interactive, no CSP violation, every control named, JavaScript within the budget.
    pub async fn open(&mut self, page: &str, shot: &str) -> Load {
        let url = self.url(page);
        let load = self.browser.open(&url).await;
        let violations = self.browser.eval("JSON.stringify(window.__cspViolations)").await;
        assert_eq!(violations, json!("[]"), "the page broke its CSP: {url}");
        let unnamed = self.browser.eval(UNNAMED_CONTROLS).await;
        assert_eq!(unnamed, json!([]), "controls without a label or text on {url}");
        load.check(&url);
        self.browser.screenshot(shot).await;
        load
    }

    /// Connects the wallet of account `index` on the home page and signs in with SIWE.
    pub async fn sign_in(&mut self, index: usize) -> Address {
        let account = self.wallet(index).await;
        self.open("", "home-signed-out").await;
        self.browser.click_button("Connect adescrow test wallet").await;
        self.browser.click_button("Sign in").await;
        self.browser.wait_for("Signed in as").await;
        account
    }

    /// The API over HTTP, as another client would call it: `(status, body)`.
    pub async fn api(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, self.devnet.api_url.join(path).unwrap());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A call that must succeed (2xx): its JSON answer.
    pub async fn api_ok(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let (status, answer) = self.api(method.clone(), path, token, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// A public read that must succeed.
    pub async fn get(&self, path: &str) -> Value {
        self.api_ok(Method::GET, path, None, None).await
    }

    /// GET `path` (with `token`, if any) until `ready` accepts a successful answer, for up to
    /// 30 s; that answer.
    pub async fn api_until(&self, path: &str, token: Option<&str>, ready: impl Fn(&Value) -> bool) -> Value {
        let mut last = (0, Value::Null);
        for _ in 0..300 {
            last = self.api(Method::GET, path, token, None).await;
            if (200..300).contains(&last.0) && ready(&last.1) {
                return last.1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET {path} never got ready; last answer: {} {}", last.0, last.1);
    }

    /// An access token for anvil's account `index`, signed in over HTTP with SIWE (for the
    /// other parties of a test: sellers, admins, resellers).
    pub async fn api_token(&self, index: usize) -> String {
        let wallet = self.signer(index);
        let (_, challenge) = self.api(Method::GET, "/v1/auth/nonce", None, None).await;
        let message = siwe_message(
            wallet.address(),
            challenge["domain"].as_str().unwrap(),
            challenge["uri"].as_str().unwrap(),
            challenge["chainId"].as_u64().unwrap(),
            challenge["nonce"].as_str().unwrap(),
            time::OffsetDateTime::now_utc(),
        );
        let (status, session) = self
            .api(
                Method::POST,
                "/v1/auth/siwe",
                None,
                Some(sign_in_body(&wallet, &message)),
            )
            .await;
        assert_eq!(status, 200, "{session}");
        session["accessToken"].as_str().unwrap().to_owned()
    }

    /// An access token for anvil's account `index`, which has taken `role`.
    pub async fn api_token_with_role(&self, index: usize, role: &str) -> String {
        let token = self.api_token(index).await;
        self.api_ok(
            Method::POST,
            "/v1/me/roles",
            Some(&token),
            Some(json!({ "role": role })),
        )
        .await;
        token
    }

    /// The access token of the page's own session, to ask the API what the page's user sees.
    pub async fn page_token(&mut self) -> String {
        let token = self
            .browser
            .eval("JSON.parse(localStorage.getItem('adescrow.session')).accessToken")
            .await;
        token.as_str().unwrap().to_owned()
    }

    /// The key of anvil's account `index`.
    pub fn signer(&self, index: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(self.devnet.anvil.keys()[index].clone())
    }

    /// The devnet's test token (6 decimals; anyone may mint it).
    pub fn test_token(&self) -> Address {
        self.devnet.deployment.test_token.as_ref().unwrap().address
    }

    /// Anvil's account `to` mints itself `amount` of the test token (the devnet's stand-in for
    /// buying stablecoins), and the mint is mined.
    pub async fn mint(&self, to: Address, amount: u128) {
        TestToken::new(self.test_token(), self.chain())
            .mint(to, U256::from(amount))
            .from(to)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }

    /// On a phone's screen, a cold load of `page` (screenshot `shot`), once `shown` has waited
    /// for what it shows, is no wider than the screen; then back to a desktop's screen.
    pub async fn assert_fits_phone(&mut self, page: &str, shot: &str, shown: impl AsyncFnOnce(&mut Browser)) -> Load {
        self.browser.phone(true).await;
        let load = self.open(page, shot).await;
        shown(&mut self.browser).await;
        // Not `innerWidth`: a phone's browser widens its layout viewport to overflowing
        // content, and the screen's width is the root element's client width.
        let fits = self
            .browser
            .eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            .await;
        assert_eq!(fits, json!(true), "{page}: something is wider than a phone's screen");
        self.browser.phone(false).await;
        load
    }

    /// An RPC provider on the devnet's anvil, for checking the chain.
    pub fn chain(&self) -> impl Provider + use<> {
        ProviderBuilder::new().connect_http(self.devnet.anvil.endpoint_url())
    }

    pub async fn eth_balance(&self, account: Address) -> U256 {
        self.chain().get_balance(account).await.unwrap()
    }
}

/// `amount` base units as the page's `format.units` shows them: the whole part grouped by
/// thousands, the fraction without trailing zeros, then the symbol if there is one.
pub fn units(amount: u128, decimals: u8, symbol: &str) -> String {
    let scale = 10u128.pow(decimals.into());
    let whole = (amount / scale).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let fraction = format!("{:0width$}", amount % scale, width = decimals.into());
    let fraction = fraction.trim_end_matches('0');
    let shown = if fraction.is_empty() {
        grouped
    } else {
        format!("{grouped}.{fraction}")
    };
    if symbol.is_empty() {
        shown
    } else {
        format!("{shown} {symbol}")
    }
}

/// Form controls without a label, buttons and links without text, images without `alt`:
/// what a screen reader could not name.
const UNNAMED_CONTROLS: &str = r#"[
    ...[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter((c) => !c.labels?.length && !c.getAttribute('aria-label'))
        .map((c) => `${c.tagName.toLowerCase()}#${c.id || c.name || '?'} has no label`),
    ...[...document.querySelectorAll('button, a[href]')]
        .filter((b) => !b.textContent.trim() && !b.getAttribute('aria-label'))
        .map((b) => `${b.tagName.toLowerCase()} without text`),
    ...[...document.querySelectorAll('img:not([alt])')].map((i) => `img ${i.src} without alt`),
]"#;

/// What a cold load measured (both also go to `loads.jsonl`, for the figures).
#[derive(Debug)]
pub struct Load {
    /// From navigation to the page saying it is interactive.
    pub interactive_ms: f64,
    /// Gzipped JavaScript bytes over the wire.
    pub js_gzip: u64,
}

impl Load {
    /// Sane bounds, not the target: the target (1 s) is measured by `scripts/pages bench`
    /// on an idle machine; here many tests share two cores. A page that never settles, or
    /// that takes many seconds, still fails.
    fn check(&self, url: &str) {
        assert!(
            self.interactive_ms > 0.0 && self.interactive_ms < 15_000.0,
            "{url} took {} ms to become interactive",
            self.interactive_ms
        );
        assert!(
            self.js_gzip <= JS_BUDGET,
            "{url} loads {} bytes of gzipped JavaScript, over {JS_BUDGET}",
            self.js_gzip
        );
    }
}

/// `web/app/e2e/browser.mjs`: one JSON command per line, one answer per line.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    shots: usize,
}

impl Browser {
    pub async fn launch() -> Browser {
        let mut child = Command::new("node")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("web/app/e2e/browser.mjs")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Not killed on drop: when a test fails, dropping `stdin` ends the driver's input,
            // and the driver closes Chromium before it exits. Killed, it would leave Chromium.
            .spawn()
            .expect("node runs (scripts/test installs it, with Chromium)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Browser {
            child,
            stdin,
            stdout,
            shots: 0,
        }
    }

    /// Sends one command; its value, or a panic with the driver's error.
    pub async fn cmd(&mut self, command: Value) -> Value {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        let line = tokio::time::timeout(Duration::from_secs(90), self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser did not answer {command}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the browser driver exited on {command}"));
        let answer: Value = serde_json::from_str(&line).unwrap();
        if answer["ok"] != json!(true) {
            self.failure_shot().await;
            panic!("browser: {command} failed: {}", answer["error"]);
        }
        answer["value"].clone()
    }

    /// On a failure, what the page looked like.
    async fn failure_shot(&mut self) {
        let path = artifacts().join(format!("failure-{}.png", std::process::id()));
        let command = json!({ "cmd": "screenshot", "path": path });
        let _ = self.stdin.write_all(format!("{command}\n").as_bytes()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line()).await;
    }

    /// A cold load of `url`.
    pub async fn open(&mut self, url: &str) -> Load {
        let value = self.cmd(json!({ "cmd": "open", "url": url })).await;
        let interactive_ms = value["interactiveMs"].as_f64().unwrap();
        let js_gzip = value["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["encodedBytes"].as_u64().unwrap())
            .sum();
        let record = json!({ "url": url, "interactiveMs": interactive_ms, "jsGzipBytes": js_gzip });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(artifacts().join("loads.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut file, format!("{record}\n").as_bytes()).unwrap();
        eprintln!("cold load: {record}");
        Load {
            interactive_ms,
            js_gzip,
        }
    }

    pub async fn click(&mut self, selector: &str) {
        self.cmd(json!({ "cmd": "click", "selector": selector })).await;
    }

    pub async fn click_button(&mut self, text: &str) {
        self.cmd(json!({ "cmd": "click", "button": text })).await;
    }

    pub async fn fill(&mut self, label: &str, value: &str) {
        self.cmd(json!({ "cmd": "fill", "label": label, "value": value })).await;
    }

    pub async fn select(&mut self, label: &str, value: &str) {
        self.cmd(json!({ "cmd": "select", "label": label, "value": value }))
            .await;
    }

    /// Waits until the page shows `text`; returns the text of the element holding it.
    pub async fn wait_for(&mut self, text: &str) -> String {
        self.cmd(json!({ "cmd": "waitFor", "text": text }))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until an element matching `selector` shows `text`.
    pub async fn wait_in(&mut self, selector: &str, text: &str) -> String {
        self.cmd(json!({ "cmd": "waitFor", "text": text, "selector": selector }))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn text(&mut self, selector: &str) -> String {
        self.cmd(json!({ "cmd": "text", "selector": selector }))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn eval(&mut self, expression: &str) -> Value {
        self.cmd(json!({ "cmd": "eval", "expression": expression })).await
    }

    /// The next wallet request of `method` is refused as a user refuses (4001).
    pub async fn reject_next(&mut self, method: &str) {
        self.cmd(json!({ "cmd": "reject", "method": method })).await;
    }

    /// Every wallet request so far: (method, rejected).
    pub async fn wallet_calls(&mut self) -> Vec<(String, bool)> {
        self.cmd(json!({ "cmd": "calls" }))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["method"].as_str().unwrap().to_owned(), c["rejected"] == json!(true)))
            .collect()
    }

    /// The wallet requests that asked the user (signatures and transactions): (method, declined).
    pub async fn asks(&mut self) -> Vec<(String, bool)> {
        let mut calls = self.wallet_calls().await;
        calls.retain(|(method, _)| {
            ["personal_sign", "eth_signTypedData_v4", "eth_sendTransaction"].contains(&method.as_str())
        });
        calls
    }

    /// A phone's screen (390 x 844) or back to a desktop's.
    pub async fn phone(&mut self, on: bool) {
        let (width, height) = if on { (390, 844) } else { (1280, 800) };
        self.cmd(json!({ "cmd": "viewport", "width": width, "height": height, "mobile": on }))
            .await;
    }

    /// A full-page PNG, `target/screenshots/pages/<name>.png`.
    pub async fn screenshot(&mut self, name: &str) {
        self.shots += 1;
        let path = artifacts().join(format!("{name}.png"));
        self.cmd(json!({ "cmd": "screenshot", "path": path })).await;
    }

    pub async fn close(mut self) {
        let _ = self.stdin.write_all(b"{\"cmd\":\"close\"}\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
    }
}

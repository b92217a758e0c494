//! Test support: a real API server on 127.0.0.1 (embedded store in a
//! temporary directory, NDJSON event log, in-process sandbox venue) and a
//! real HTTP client.
#![allow(dead_code)]

pub mod adapters;
pub mod money;
pub mod redis;
pub mod webhooks;

use api::events::log::EventLog;
use api::store::embedded::EmbeddedStore;
use api::store::Store;
use api::{Api, ApiConfig, ApiParts};
use feeds::{SandboxConfig, SandboxVenue, Venue};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const PASSWORD: &str = "Correct-Horse-9-Battery";

/// A running API server.
pub struct TestApi {
    pub addr: SocketAddr,
    pub api: Api,
    pub venue: SandboxVenue,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

/// The config tests run with: short sandbox delays.
pub fn test_config() -> ApiConfig {
    ApiConfig {
        kyc_verify_delay_ms: 50,
        fiat_confirm_delay_ms: 50,
        ..ApiConfig::default()
    }
}

pub async fn start() -> TestApi {
    start_with(test_config()).await
}

pub async fn start_with(config: ApiConfig) -> TestApi {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(config, dir).await
}

/// Starts on an existing data directory (restart tests).
pub async fn start_in(config: ApiConfig, dir: tempfile::TempDir) -> TestApi {
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    start_on(config, dir, store).await
}

/// Starts a node on `store`, which other nodes may share (multi-node
/// tests; give every node the same `jwt_secret`). Without `kms_key_id`,
/// every such node gets the same local data key file, as nodes sharing a
/// store must.
pub async fn start_sharing(config: ApiConfig, store: Arc<dyn Store>) -> TestApi {
    let dir = tempfile::tempdir().expect("temp dir");
    if config.kms_key_id.is_empty() {
        use base64::Engine as _;
        let keys = dir.path().join("keys");
        api::owner_only::dir(&keys).expect("keys dir");
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        api::owner_only::create_once(&keys.join(api::seal::DATA_KEY_FILE), &key)
            .expect("shared data key file");
    }
    start_on(config, dir, store).await
}

/// Starts a node on `store` with `dir` as its data directory.
pub async fn start_on(config: ApiConfig, dir: tempfile::TempDir, store: Arc<dyn Store>) -> TestApi {
    let log = Arc::new(EventLog::open(dir.path()).expect("event log"));
    start_publishing(config, dir, store, log).await
}

/// Starts a node on `store` with `dir` as its data directory, publishing
/// its events to `publisher` (SQS, say) instead of the data directory's
/// event log.
pub async fn start_publishing(
    config: ApiConfig,
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    publisher: Arc<dyn api::events::EventPublisher>,
) -> TestApi {
    let venue = SandboxVenue::start(SandboxConfig {
        events_per_sec: 50,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let api = Api::start(ApiParts {
        config,
        data_dir: dir.path().to_path_buf(),
        store,
        publisher,
        venue: Arc::new(venue.clone()) as Arc<dyn Venue>,
        self_url: format!("http://{addr}"),
    })
    .await
    .expect("api start");
    let app = api::http::layers(api::router(api.clone()));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    TestApi {
        addr,
        api,
        venue,
        dir,
        http: reqwest::Client::new(),
        server,
    }
}

impl TestApi {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The events in the data directory's event log.
    pub fn events(&self) -> Vec<api::events::Event> {
        EventLog::read_all(&self.dir.path().join(EventLog::FILE)).expect("read event log")
    }

    /// Stops the server and returns the data directory (restart tests).
    pub async fn stop(self) -> tempfile::TempDir {
        self.server.abort();
        self.api.stop().await;
        self.venue.stop().await;
        self.dir
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send(req).await
    }

    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.put(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send(req).await
    }

    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send(req).await
    }

    pub async fn delete(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send(req).await
    }

    /// Registers `email` and logs in; returns (user_id, access, refresh).
    pub async fn signup(&self, email: &str) -> (String, String, String) {
        let (s, body, _) = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 201, "register: {body}");
        let user_id = body["user_id"].as_str().expect("user_id").to_owned();
        let (s, body, _) = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 200, "login: {body}");
        (
            user_id,
            body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        )
    }

    /// Submits a KYC document and waits for the sandbox to verify it.
    pub async fn verify_kyc(&self, token: &str) {
        let (s, body, _) = self
            .post(
                "/users/kyc-documents",
                Some(token),
                json!({"document_type": "passport", "content_base64": "aGVsbG8="}),
            )
            .await;
        assert_eq!(s, 202, "kyc-documents: {body}");
        for _ in 0..200 {
            let (_, body, _) = self.get("/users/kyc-status", Some(token)).await;
            if body["kyc_status"] == "VERIFIED" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("KYC never verified");
    }
}

/// An HTTP client whose connections leave from `ip` (any 127.0.0.0/8
/// address on Linux), so a test can act as several client addresses.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"))
        .build()
        .expect("http client")
}

impl TestApi {
    /// `POST path` with `client` (e.g. one of [`client_from`]).
    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        send(client.post(self.url(path)).json(&body)).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body, headers)
}

/// Asserts the docs/API.md error body with `code` and `status`.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "status; body: {body}");
    assert_eq!(body["error"]["code"], want_code, "code; body: {body}");
    assert!(
        body["error"]["message"].is_string(),
        "message; body: {body}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "request_id; body: {body}"
    );
}

/// `events` as an [`api::events::EventPublisher`] takes them.
pub fn shared(events: &[api::events::Event]) -> Vec<Arc<api::events::Event>> {
    events.iter().cloned().map(Arc::new).collect()
}

//! The one configuration type of the `nax-hub` binary, and how it is loaded.
//!
//! Values are layered, later layers winning: built-in defaults, then an
//! optional TOML file (`--config FILE`), then `NAX_*` environment variables,
//! then command-line flags (docs/ARCHITECTURE.md, "Configuration"). Mistakes fail loudly
//! at start-up instead of being ignored: an unknown key in the file, an
//! unknown `NAX_*` variable and an out-of-range value are all errors that
//! name the offending key.
//!
//! Every flag is declared once, in [`Cli`], together with its environment
//! variable; that declaration is the list of known variables. Environment
//! values are parsed by the same clap parsers as flags, but from an explicit
//! list of variables handed to [`Config::load_from`], so tests never touch
//! the process environment.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

mod http;
pub use http::HttpConfig;

/// Prefix of every environment variable the hub reads.
pub const ENV_PREFIX: &str = "NAX_";

/// `NAX_*` variables that are not configuration but are still allowed:
/// the log filter (read by the logging set-up) and anything starting with
/// [`TEST_ENV_PREFIX`].
pub const LOG_ENV: &str = "NAX_LOG";

/// Prefix of `NAX_*` variables reserved for tests; never an error.
pub const TEST_ENV_PREFIX: &str = "NAX_TEST_";

/// Largest config file read (see docs/SECURITY.md, "Input bounds"); a
/// real one is a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Everything the hub needs to start. Built by [`Config::load`]; validated,
/// so every field is within the documented range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the WebSocket listener binds to.
    pub bind: IpAddr,
    /// Port of the WebSocket listener; 0 means "any free port" (tests).
    pub port: u16,
    /// Directory for persisted data (history snapshots).
    #[serde(serialize_with = "serialize_path_lossy")]
    pub data_dir: PathBuf,
    /// Where market data comes from.
    pub venue: VenueConfig,
    /// Per-connection and per-process limits (docs/PROTOCOL.md, "Heartbeats and
    /// limits").
    pub limits: Limits,
    /// How much recent trade history is kept per channel.
    pub history: HistoryConfig,
    /// The HTTP server's connection limits and trusted proxies (TOML
    /// section `[http]`).
    pub http: HttpConfig,
    /// The REST API (TOML section `[api]`; secrets print as `<redacted>`).
    pub api: api::ApiConfig,
    /// On shutdown, how long connections get to flush before being dropped.
    pub shutdown_drain_ms: u64,
    /// Sent to clients in the `shutdown` message: when to reconnect.
    pub reconnect_after_ms: u64,
    /// Browser origins (`scheme://host[:port]`) allowed to open `/ws`
    /// besides the hub's own; `["*"]` allows any. Requests without an
    /// `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            data_dir: PathBuf::from("./data"),
            venue: VenueConfig::default(),
            limits: Limits::default(),
            history: HistoryConfig::default(),
            http: HttpConfig::default(),
            api: api::ApiConfig::default(),
            shutdown_drain_ms: 5_000,
            reconnect_after_ms: 1_000,
            allowed_origins: Vec::new(),
        }
    }
}

/// The upstream venue the hub mirrors (TOML section `[venue]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VenueConfig {
    /// Which venue implementation to run.
    pub kind: VenueKind,
    /// Synthetic events per second across all pairs; at least 1.
    pub events_per_sec: u32,
    /// Seed of the synthetic venue: the same seed replays the same market.
    pub seed: u64,
    /// A pair whose upstream sends nothing for this long is marked stale
    /// (`GET /ready` 503 `stale:PAIR`, `GET /markets` status `stale`);
    /// 0 disables the check.
    pub stale_after_ms: u64,
    /// `graphql` venue: the upstream's GraphQL endpoint (subscriptions on
    /// the same path over WebSocket).
    pub endpoint: String,
    /// `graphql` venue: the bearer token (required; printed redacted).
    #[serde(serialize_with = "api::secret::Secret::redacted_serialize_opt")]
    pub token: Option<api::secret::Secret>,
    /// `graphql` venue: timeout of one query, mutation or connect, ms.
    pub request_timeout_ms: u64,
    /// `graphql` venue: reconnect backoff, doubling from min to max, ms.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for VenueConfig {
    fn default() -> Self {
        Self {
            kind: VenueKind::Sandbox,
            events_per_sec: 400,
            seed: 0x5eed,
            stale_after_ms: 10_000,
            endpoint: "http://127.0.0.1:9090/graphql".into(),
            token: None,
            request_timeout_ms: 2_000,
            backoff_min_ms: 100,
            backoff_max_ms: 5_000,
        }
    }
}

/// The venue implementations the hub can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VenueKind {
    /// The embedded, deterministic synthetic venue.
    #[default]
    Sandbox,
    /// A venue speaking `feeds/src/shift/schema.graphql` at
    /// `venue.endpoint` (Shift Markets, or the standalone `nax-venue`).
    Graphql,
}

/// Limits that protect the hub from clients and from itself (TOML section
/// `[limits]`). All counts and sizes are at least 1 after validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Concurrent WebSocket connections; further upgrades are refused.
    pub max_connections: usize,
    /// Channels per connection (`too_many_subscriptions` beyond).
    pub max_subscriptions: usize,
    /// Sustained client frames per second per connection (`rate_limited`).
    pub frames_per_sec: u32,
    /// Client frames a connection may send at once before rate limiting.
    pub frame_burst: u32,
    /// Rejected client frames after which the hub closes with 1008.
    pub max_invalid_frames: u32,
    /// Largest accepted inbound frame, bytes (close 1009 beyond); ≥ 1024.
    pub max_frame_bytes: usize,
    /// Bytes queued towards one client before it counts as a slow consumer;
    /// ≥ 64 KiB.
    pub outbound_queue_bytes: usize,
    /// Kernel send buffer (SO_SNDBUF) of each client socket, bytes; ≥ 16 KiB.
    /// Kept small so that a slow client fills its outbound queue (and is
    /// conflated or closed) instead of hiding megabytes in the kernel.
    pub socket_send_buffer_bytes: usize,
    /// Interval between WebSocket Pings.
    pub ping_interval_ms: u64,
    /// Silence after which a connection is closed; greater than
    /// `ping_interval_ms`.
    pub pong_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_subscriptions: 200,
            frames_per_sec: 20,
            frame_burst: 50,
            max_invalid_frames: 100,
            max_frame_bytes: 16 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            socket_send_buffer_bytes: 256 * 1024,
            ping_interval_ms: 20_000,
            pong_timeout_ms: 60_000,
        }
    }
}

/// Recent trade history kept per channel (TOML section `[history]`); an
/// entry is dropped when either bound is exceeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Most messages kept per channel; at least 1.
    pub max_messages: usize,
    /// Oldest message kept, in milliseconds; at least 1.
    pub max_age_ms: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_messages: 1_000,
            max_age_ms: 60_000,
        }
    }
}

/// A configuration that loaded but cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A value is outside its allowed range; `key` is its TOML path
    /// (e.g. `limits.max_frame_bytes`).
    #[error("invalid configuration: {key} = {value}: {reason}")]
    Invalid {
        /// Dotted TOML path of the offending key.
        key: &'static str,
        /// The rejected value, as given.
        value: String,
        /// What the value must be.
        reason: String,
    },
    /// A `NAX_*` environment variable whose value does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// A `NAX_*` environment variable the hub does not know (likely a typo).
    #[error("unknown environment variable {name}; known: {known}")]
    UnknownEnv {
        /// The unknown variable.
        name: String,
        /// Comma-separated list of the known variables.
        known: String,
    },
}

/// The command line of `nax-hub`. Each option may also come from the
/// environment variable shown in `--help`; a flag beats its variable.
#[derive(Debug, Parser)]
#[command(
    name = "nax-hub",
    bin_name = "nax-hub",
    version,
    about = "NA-X Stream hub: order-book cache and WebSocket market-data fan-out"
)]
pub struct Cli {
    /// TOML configuration file; its keys mirror the config (top-level keys
    /// and the sections venue, limits, history, http and api).
    #[arg(long, env = "NAX_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "NAX_BIND", value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "NAX_PORT")]
    pub port: Option<u16>,
    /// Directory for persisted data.
    #[arg(long, env = "NAX_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Venue implementation.
    #[arg(long, env = "NAX_VENUE")]
    pub venue: Option<VenueKind>,
    /// Synthetic venue events per second.
    #[arg(long, env = "NAX_EVENTS_PER_SEC")]
    pub events_per_sec: Option<u32>,
    /// Synthetic venue seed (decimal or 0x-hex).
    #[arg(long, env = "NAX_SEED", value_parser = parse_u64_maybe_hex)]
    pub seed: Option<u64>,
    /// `graphql` venue: its GraphQL endpoint URL.
    #[arg(long, env = "NAX_VENUE_ENDPOINT", value_name = "URL")]
    pub venue_endpoint: Option<String>,
    /// `graphql` venue: its bearer token (prefer the variable: flags show
    /// in process lists).
    #[arg(long, env = "NAX_VENUE_TOKEN", hide_env_values = true)]
    pub venue_token: Option<String>,
    /// HS256 key of access tokens (at least 32 bytes); every node of a
    /// deployment needs the same one. Unset: generated into the data
    /// directory. Prefer the variable: flags show in process lists.
    #[arg(long, env = "NAX_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Where the REST state lives: `embedded` (data directory) or
    /// `dynamodb`.
    #[arg(long, env = "NAX_STORE", value_parser = parse_store_kind)]
    pub store: Option<api::config::StoreKind>,
    /// DynamoDB endpoint override (e.g. a local emulator).
    #[arg(long, env = "NAX_DYNAMODB_ENDPOINT", value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// Prefix of the DynamoDB table names (Terraform's `resource_prefix`).
    #[arg(long, env = "NAX_DYNAMODB_TABLE_PREFIX")]
    pub dynamodb_table_prefix: Option<String>,
    /// Create missing DynamoDB tables at start (development).
    #[arg(long, env = "NAX_DYNAMODB_CREATE_TABLES")]
    pub dynamodb_create_tables: Option<bool>,
    /// AWS region of DynamoDB, SQS and KMS.
    #[arg(long, env = "NAX_AWS_REGION")]
    pub aws_region: Option<String>,
    /// Publish events to SQS instead of the log in the data directory.
    #[arg(long, env = "NAX_EVENTS_TO_SQS")]
    pub events_to_sqs: Option<bool>,
    /// SQS endpoint override (e.g. a local emulator).
    #[arg(long, env = "NAX_SQS_ENDPOINT", value_name = "URL")]
    pub sqs_endpoint: Option<String>,
    /// Prefix of the SQS queue names (Terraform's `resource_prefix`).
    #[arg(long, env = "NAX_SQS_QUEUE_PREFIX")]
    pub sqs_queue_prefix: Option<String>,
    /// Create missing SQS queues at start (development).
    #[arg(long, env = "NAX_SQS_CREATE_QUEUES")]
    pub sqs_create_queues: Option<bool>,
    /// KMS key (id, ARN or alias) whose data key seals stored secrets;
    /// every node of a deployment shares the data key through the store.
    /// Unset: a key file generated into `<data dir>/keys/data.key`.
    #[arg(long, env = "NAX_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,
    /// KMS endpoint override (e.g. a local emulator).
    #[arg(long, env = "NAX_KMS_ENDPOINT", value_name = "URL")]
    pub kms_endpoint: Option<String>,
    /// Redis shared by the nodes (`redis://` or `rediss://`); may hold a
    /// password, so prefer the variable.
    #[arg(long, env = "NAX_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Concurrent connection limit.
    #[arg(long, env = "NAX_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Channels per connection.
    #[arg(long, env = "NAX_MAX_SUBSCRIPTIONS")]
    pub max_subscriptions: Option<usize>,
    /// Sustained client frames per second per connection.
    #[arg(long, env = "NAX_FRAMES_PER_SEC")]
    pub frames_per_sec: Option<u32>,
    /// Client frame burst per connection.
    #[arg(long, env = "NAX_FRAME_BURST")]
    pub frame_burst: Option<u32>,
    /// Rejected frames before a connection is closed.
    #[arg(long, env = "NAX_MAX_INVALID_FRAMES")]
    pub max_invalid_frames: Option<u32>,
    /// Largest inbound frame in bytes.
    #[arg(long, env = "NAX_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Outbound bytes queued per client before slow-consumer handling.
    #[arg(long, env = "NAX_OUTBOUND_QUEUE_BYTES")]
    pub outbound_queue_bytes: Option<usize>,
    /// Kernel send buffer of each client socket in bytes.
    #[arg(long, env = "NAX_SOCKET_SEND_BUFFER_BYTES")]
    pub socket_send_buffer_bytes: Option<usize>,
    /// Interval between WebSocket Pings, ms.
    #[arg(long, env = "NAX_PING_INTERVAL_MS")]
    pub ping_interval_ms: Option<u64>,
    /// Silence before a connection is closed, ms.
    #[arg(long, env = "NAX_PONG_TIMEOUT_MS")]
    pub pong_timeout_ms: Option<u64>,
    /// Trade history messages kept per channel.
    #[arg(long, env = "NAX_HISTORY_MAX_MESSAGES")]
    pub history_max_messages: Option<usize>,
    /// Trade history age kept per channel, ms.
    #[arg(long, env = "NAX_HISTORY_MAX_AGE_MS")]
    pub history_max_age_ms: Option<u64>,
    /// Time connections get to flush on shutdown, ms.
    #[arg(long, env = "NAX_SHUTDOWN_DRAIN_MS")]
    pub shutdown_drain_ms: Option<u64>,
    /// Reconnect delay announced to clients on shutdown, ms.
    #[arg(long, env = "NAX_RECONNECT_AFTER_MS")]
    pub reconnect_after_ms: Option<u64>,
    /// Browser origins allowed to open /ws besides the hub's own,
    /// comma-separated (`*`: any).
    #[arg(long, env = "NAX_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Time a connection has to send complete request headers, ms.
    #[arg(long, env = "NAX_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// Silence allowed on a kept-alive connection between requests, ms.
    #[arg(long, env = "NAX_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// The same for connections from trusted proxies, ms (above the load
    /// balancer's idle timeout).
    #[arg(long, env = "NAX_PROXY_IDLE_TIMEOUT_MS")]
    pub proxy_idle_timeout_ms: Option<u64>,
    /// Largest request head (request line and headers), bytes.
    #[arg(long, env = "NAX_MAX_HEAD_BYTES")]
    pub max_head_bytes: Option<usize>,
    /// Open connections per peer address (trusted proxies exempt).
    #[arg(long, env = "NAX_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Trusted proxies, comma-separated IPs or CIDR blocks (the load
    /// balancer's subnets): their X-Forwarded-For names the client.
    #[arg(long, env = "NAX_TRUSTED_PROXIES", value_name = "CIDRS", value_parser = http::parse_trusted_proxies)]
    pub trusted_proxies: Option<api::http::TrustedProxies>,
}

/// `embedded` or `dynamodb`.
fn parse_store_kind(s: &str) -> Result<api::config::StoreKind, String> {
    match s {
        "embedded" => Ok(api::config::StoreKind::Embedded),
        "dynamodb" => Ok(api::config::StoreKind::Dynamodb),
        other => Err(format!("unknown store {other:?}: embedded or dynamodb")),
    }
}

impl Config {
    /// Loads the configuration from the process's command line and `NAX_*`
    /// environment variables (and the file they name).
    ///
    /// Like `clap::Parser::parse`, this prints usage errors, `--help` and
    /// `--version` and exits the process; other errors are returned.
    pub fn load() -> anyhow::Result<Config> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("environment variable {name} is not valid UTF-8"))?;
            env.push((name.to_owned(), value));
        }
        match Self::load_from(std::env::args_os(), env) {
            Err(e) => match e.downcast::<clap::Error>() {
                Ok(clap_error) => clap_error.exit(),
                Err(e) => Err(e),
            },
            ok => ok,
        }
    }

    /// Loads the configuration from explicit arguments (the first is the
    /// program name) and environment variables, without reading the process
    /// environment. Variables not starting with `NAX_` are ignored.
    ///
    /// Errors: clap errors (including `--help`, as [`clap::Error`]), an
    /// unreadable or invalid file, an unknown variable or an invalid value
    /// ([`ConfigError`]).
    pub fn load_from<A, T>(
        args: A,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config>
    where
        A: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let cli = parse_cli(&args, &env)?;

        let mut config = match &cli.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply(cli);
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file; missing keys keep their defaults, unknown keys are
    /// errors. A file over [`MAX_FILE_BYTES`] is refused without being
    /// read whole.
    fn from_file(path: &Path) -> anyhow::Result<Config> {
        use std::io::Read as _;
        let reading = || format!("reading config file {}", path.display());
        let file = std::fs::File::open(path).with_context(reading)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .with_context(reading)?;
        Self::from_toml(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Parses the text of a config file (no other layer, not validated:
    /// see [`Config::validate`]). Text over [`MAX_FILE_BYTES`] is refused
    /// before the TOML parser reads it; the parser bounds nesting itself
    /// (`recursion limit exceeded` past 80 levels of arrays, inline tables
    /// or dotted keys, whatever the stack).
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        if text.len() > MAX_FILE_BYTES {
            anyhow::bail!("larger than {MAX_FILE_BYTES} bytes");
        }
        Ok(toml::from_str(text)?)
    }

    /// Overwrites every field given by a flag or environment variable.
    fn apply(&mut self, cli: Cli) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut self.bind, cli.bind);
        set(&mut self.port, cli.port);
        set(&mut self.data_dir, cli.data_dir);
        set(&mut self.venue.kind, cli.venue);
        set(&mut self.venue.events_per_sec, cli.events_per_sec);
        set(&mut self.venue.seed, cli.seed);
        set(&mut self.venue.endpoint, cli.venue_endpoint);
        if let Some(secret) = cli.jwt_secret {
            self.api.jwt_secret = Some(api::secret::Secret::new(secret));
        }
        if let Some(token) = cli.venue_token {
            self.venue.token = Some(api::secret::Secret::new(token));
        }
        let api = &mut self.api;
        set(&mut api.store, cli.store);
        set(&mut api.dynamodb_endpoint, cli.dynamodb_endpoint);
        set(&mut api.dynamodb_table_prefix, cli.dynamodb_table_prefix);
        set(&mut api.dynamodb_create_tables, cli.dynamodb_create_tables);
        if let Some(region) = cli.aws_region {
            api.dynamodb_region = region.clone();
            api.kms_region = region.clone();
            api.sqs_region = region;
        }
        set(&mut api.kms_key_id, cli.kms_key_id);
        set(&mut api.kms_endpoint, cli.kms_endpoint);
        set(&mut api.events_to_sqs, cli.events_to_sqs);
        set(&mut api.sqs_endpoint, cli.sqs_endpoint);
        set(&mut api.sqs_queue_prefix, cli.sqs_queue_prefix);
        set(&mut api.sqs_create_queues, cli.sqs_create_queues);
        if let Some(url) = cli.redis_url {
            api.redis_url = Some(api::secret::Secret::new(url));
        }
        let limits = &mut self.limits;
        set(&mut limits.max_connections, cli.max_connections);
        set(&mut limits.max_subscriptions, cli.max_subscriptions);
        set(&mut limits.frames_per_sec, cli.frames_per_sec);
        set(&mut limits.frame_burst, cli.frame_burst);
        set(&mut limits.max_invalid_frames, cli.max_invalid_frames);
        set(&mut limits.max_frame_bytes, cli.max_frame_bytes);
        set(&mut limits.outbound_queue_bytes, cli.outbound_queue_bytes);
        set(
            &mut limits.socket_send_buffer_bytes,
            cli.socket_send_buffer_bytes,
        );
        set(&mut limits.ping_interval_ms, cli.ping_interval_ms);
        set(&mut limits.pong_timeout_ms, cli.pong_timeout_ms);
        set(&mut self.history.max_messages, cli.history_max_messages);
        set(&mut self.history.max_age_ms, cli.history_max_age_ms);
        set(&mut self.shutdown_drain_ms, cli.shutdown_drain_ms);
        set(&mut self.reconnect_after_ms, cli.reconnect_after_ms);
        set(&mut self.allowed_origins, cli.allowed_origins);
        let http = &mut self.http;
        set(&mut http.header_timeout_ms, cli.header_timeout_ms);
        set(&mut http.idle_timeout_ms, cli.idle_timeout_ms);
        set(&mut http.proxy_idle_timeout_ms, cli.proxy_idle_timeout_ms);
        set(&mut http.max_head_bytes, cli.max_head_bytes);
        set(&mut http.max_connections_per_ip, cli.max_connections_per_ip);
        set(&mut http.trusted_proxies, cli.trusted_proxies);
    }

    /// Checks every range documented on the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn at_least<T: PartialOrd + ToString>(
            key: &'static str,
            value: T,
            min: T,
            unit: &str,
        ) -> Result<(), ConfigError> {
            if value >= min {
                return Ok(());
            }
            Err(ConfigError::Invalid {
                key,
                value: value.to_string(),
                reason: format!("must be at least {}{unit}", min.to_string()),
            })
        }
        let (venue, limits, history) = (&self.venue, &self.limits, &self.history);
        at_least("venue.events_per_sec", venue.events_per_sec, 1, "")?;
        if venue.kind == VenueKind::Graphql {
            if venue.token.as_ref().is_none_or(|t| t.expose().is_empty()) {
                return Err(ConfigError::Invalid {
                    key: "venue.token",
                    value: String::new(),
                    reason: "a graphql venue needs a bearer token (NAX_VENUE_TOKEN)".into(),
                });
            }
            if !(venue.endpoint.starts_with("http://") || venue.endpoint.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key: "venue.endpoint",
                    value: venue.endpoint.clone(),
                    reason: "must be an http:// or https:// URL".into(),
                });
            }
            at_least(
                "venue.request_timeout_ms",
                venue.request_timeout_ms,
                1,
                " ms",
            )?;
            at_least("venue.backoff_min_ms", venue.backoff_min_ms, 1, " ms")?;
            at_least(
                "venue.backoff_max_ms",
                venue.backoff_max_ms,
                venue.backoff_min_ms,
                " ms",
            )?;
        }
        at_least(
            "api.backplane_stream_len",
            self.api.backplane_stream_len,
            1,
            " entries",
        )?;
        at_least("limits.max_connections", limits.max_connections, 1, "")?;
        at_least("limits.max_subscriptions", limits.max_subscriptions, 1, "")?;
        at_least("limits.frames_per_sec", limits.frames_per_sec, 1, "")?;
        at_least("limits.frame_burst", limits.frame_burst, 1, "")?;
        at_least(
            "limits.max_invalid_frames",
            limits.max_invalid_frames,
            1,
            "",
        )?;
        at_least(
            "limits.max_frame_bytes",
            limits.max_frame_bytes,
            1024,
            " bytes",
        )?;
        at_least(
            "limits.outbound_queue_bytes",
            limits.outbound_queue_bytes,
            64 * 1024,
            " bytes (64 KiB)",
        )?;
        at_least(
            "limits.socket_send_buffer_bytes",
            limits.socket_send_buffer_bytes,
            16 * 1024,
            " bytes (16 KiB)",
        )?;
        at_least("limits.ping_interval_ms", limits.ping_interval_ms, 1, " ms")?;
        if limits.pong_timeout_ms <= limits.ping_interval_ms {
            return Err(ConfigError::Invalid {
                key: "limits.pong_timeout_ms",
                value: limits.pong_timeout_ms.to_string(),
                reason: format!(
                    "must be greater than limits.ping_interval_ms ({})",
                    limits.ping_interval_ms
                ),
            });
        }
        if let Some(bad) = self.allowed_origins.iter().find(|o| !is_origin(o)) {
            return Err(ConfigError::Invalid {
                key: "allowed_origins",
                value: bad.clone(),
                reason: "each entry must be `*` or scheme://host[:port] (http or https, no path)"
                    .into(),
            });
        }
        at_least("history.max_messages", history.max_messages, 1, "")?;
        at_least("history.max_age_ms", history.max_age_ms, 1, " ms")?;
        self.http.validate()
    }

    /// The whole configuration on one line of `key=value` pairs (dotted TOML
    /// paths) for the start-up log. Values of keys that look secret (their
    /// name contains `token`, `secret`, `password` or `key`) are shown as
    /// `***`.
    pub fn redacted(&self) -> String {
        let value = match serde_json::to_value(self) {
            Ok(value) => value,
            // Unreachable: every field is a number, a string or an enum.
            Err(e) => return format!("<configuration not renderable: {e}>"),
        };
        let mut line = String::new();
        write_flattened(&mut line, "", &value);
        line
    }
}

/// Parses the command line, filling flags that are absent from their
/// environment variables in `env`, and rejects unknown `NAX_*` variables.
fn parse_cli(args: &[OsString], env: &[(String, String)]) -> anyhow::Result<Cli> {
    let full = Cli::command();
    // (argument id, long flag, variable) for every flag with a variable.
    let bindings: Vec<(String, String, String)> = full
        .get_arguments()
        .filter_map(|arg| {
            let var = arg.get_env()?.to_str()?;
            let long = arg.get_long()?;
            Some((arg.get_id().to_string(), long.to_owned(), var.to_owned()))
        })
        .collect();
    // Parse flags with a command that does not read the process environment.
    let no_env = || Cli::command().mut_args(|arg| arg.env(None));
    let matches = match no_env().try_get_matches_from(args) {
        Ok(matches) => matches,
        // Render help with the full command, which lists each flag's
        // variable (but never its current value).
        Err(e) if is_display(&e) => {
            let help = full.mut_args(|arg| arg.hide_env_values(true));
            return Err(help.try_get_matches_from(args).err().unwrap_or(e).into());
        }
        Err(e) => return Err(e.into()),
    };
    check_env_names(env, &bindings)?;

    // Each variable whose flag is absent becomes that flag, placed before
    // the user's arguments (so a trailing `--` cannot swallow it).
    let program = args.first().cloned().unwrap_or_else(|| "nax-hub".into());
    let mut merged = vec![program.clone()];
    for (name, value) in env {
        let Some((id, long, _)) = bindings.iter().find(|(_, _, var)| var == name) else {
            continue;
        };
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = OsString::from(format!("--{long}={value}"));
        // Parse alone first so that an error names the variable.
        if let Err(e) = no_env().try_get_matches_from([program.clone(), flag.clone()]) {
            return Err(ConfigError::Env {
                name: name.clone(),
                value: value.clone(),
                reason: clap_reason(&e),
            }
            .into());
        }
        merged.push(flag);
    }
    merged.extend(args.iter().skip(1).cloned());
    let matches = no_env().try_get_matches_from(&merged)?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// Fails on the first `NAX_*` variable that is neither bound to a flag nor
/// reserved ([`LOG_ENV`], [`TEST_ENV_PREFIX`]).
fn check_env_names(
    env: &[(String, String)],
    bindings: &[(String, String, String)],
) -> Result<(), ConfigError> {
    let is_known = |name: &str| {
        name == LOG_ENV
            || name.starts_with(TEST_ENV_PREFIX)
            || bindings.iter().any(|(_, _, var)| var == name)
    };
    match env.iter().find(|(name, _)| !is_known(name)) {
        None => Ok(()),
        Some((name, _)) => {
            let mut known: Vec<&str> = bindings.iter().map(|(_, _, var)| var.as_str()).collect();
            known.push(LOG_ENV);
            Err(ConfigError::UnknownEnv {
                name: name.clone(),
                known: known.join(", "),
            })
        }
    }
}

/// The first line of a clap error without its `error: ` prefix.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Whether a clap "error" is really a request for help or version text.
fn is_display(e: &clap::Error) -> bool {
    use clap::error::ErrorKind;
    matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
}

/// `*`, or `http(s)://host[:port]` with no path, query or user part.
fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(host) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = host.strip_suffix('/').unwrap_or(host);
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
}

/// Accepts `24301` as well as `0x5eed`.
fn parse_u64_maybe_hex(s: &str) -> Result<u64, std::num::ParseIntError> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
}

/// Serializes a path even if it is not UTF-8, so rendering never fails.
fn serialize_path_lossy<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// Appends `prefix.key=value` pairs, space-separated, redacting secrets.
fn write_flattened(out: &mut String, prefix: &str, value: &serde_json::Value) {
    let serde_json::Value::Object(fields) = value else {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{prefix}={value}");
        return;
    };
    for (key, field) in fields {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if looks_secret(key) {
            write_flattened(out, &path, &serde_json::Value::from("***"));
        } else {
            write_flattened(out, &path, field);
        }
    }
}

/// Whether a key's value must not appear in logs.
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password", "key"]
        .iter()
        .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let argv = std::iter::once("nax-hub").chain(args.iter().copied());
        Config::load_from(argv, env(vars))
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn path(file: &tempfile::NamedTempFile) -> &str {
        file.path().to_str().unwrap()
    }

    fn invalid_key(result: anyhow::Result<Config>) -> &'static str {
        match result.unwrap_err().downcast::<ConfigError>().unwrap() {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let config = load(&[], &[]).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.port, 8080);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.venue.kind, VenueKind::Sandbox);
        assert_eq!(config.venue.seed, 0x5eed);
        assert_eq!(config.limits.max_frame_bytes, 16_384);
        assert_eq!(config.limits.outbound_queue_bytes, 1 << 20);
        assert_eq!(config.limits.pong_timeout_ms, 60_000);
        assert_eq!(config.history.max_messages, 1_000);
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let file = toml_file(
            "port = 9000\n\
             [venue]\nkind = \"sandbox\"\nseed = 0x1234\n\
             [limits]\nmax_connections = 5\n\
             [history]\nmax_age_ms = 10\n",
        );
        let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(config.venue.seed, 0x1234);
        assert_eq!(config.venue.events_per_sec, 400);
        assert_eq!(config.limits.max_connections, 5);
        assert_eq!(config.limits.max_subscriptions, 200);
        assert_eq!(config.history.max_age_ms, 10);
    }

    #[test]
    fn env_overrides_file_and_flag_overrides_env() {
        let file = toml_file("port = 9000\ndata_dir = \"/file\"\n[venue]\nseed = 1\n");
        let path = file.path().to_str().unwrap();
        let vars = [
            ("NAX_CONFIG", path),
            ("NAX_PORT", "9001"),
            ("NAX_SEED", "0x10"),
            ("NAX_DATA_DIR", "/env"),
        ];
        let config = load(&[], &vars).unwrap();
        assert_eq!(config.port, 9001);
        assert_eq!(config.venue.seed, 16);
        assert_eq!(config.data_dir, PathBuf::from("/env"));

        let config = load(&["--port", "9002", "--data-dir=/cli"], &vars).unwrap();
        assert_eq!(config.port, 9002);
        assert_eq!(config.data_dir, PathBuf::from("/cli"));
        assert_eq!(config.venue.seed, 16, "env still applies to other keys");
    }

    #[test]
    fn flag_beats_an_invalid_env_value() {
        let config = load(&["--port", "1"], &[("NAX_PORT", "not-a-port")]).unwrap();
        assert_eq!(config.port, 1);
    }

    #[test]
    fn env_values_cannot_be_swallowed_by_a_trailing_double_dash() {
        let config = load(&["--"], &[("NAX_PORT", "9003")]).unwrap();
        assert_eq!(config.port, 9003);
    }

    #[test]
    fn secrets_from_the_environment_print_redacted() {
        let secret = "s3cret-s3cret-s3cret-s3cret-s3cret";
        let config = load(
            &[],
            &[("NAX_JWT_SECRET", secret), ("NAX_VENUE_TOKEN", "tok-123")],
        )
        .unwrap();
        assert_eq!(
            config.api.jwt_secret.as_ref().map(|s| s.expose()),
            Some(secret)
        );
        let printed = config.redacted();
        assert!(
            !printed.contains(secret) && !printed.contains("tok-123"),
            "{printed}"
        );
        assert!(printed.contains("api.jwt_secret=\"***\""), "{printed}");
    }

    #[test]
    fn production_backends_come_from_the_environment_and_the_redis_password_is_redacted() {
        let config = load(
            &[],
            &[
                ("NAX_STORE", "dynamodb"),
                ("NAX_DYNAMODB_TABLE_PREFIX", "prod-"),
                ("NAX_AWS_REGION", "eu-west-1"),
                ("NAX_EVENTS_TO_SQS", "true"),
                ("NAX_SQS_QUEUE_PREFIX", "prod-"),
                ("NAX_REDIS_URL", "rediss://:hunter2-pw@cache:6379"),
                ("NAX_KMS_KEY_ID", "alias/nax-prod"),
                ("NAX_KMS_ENDPOINT", "http://127.0.0.1:5000"),
            ],
        )
        .unwrap();
        assert_eq!(config.api.kms_key_id, "alias/nax-prod");
        assert_eq!(config.api.kms_endpoint, "http://127.0.0.1:5000");
        assert_eq!(config.api.kms_region, "eu-west-1");
        assert_eq!(config.api.store, api::config::StoreKind::Dynamodb);
        assert_eq!(config.api.dynamodb_table_prefix, "prod-");
        assert_eq!(config.api.dynamodb_region, "eu-west-1");
        assert_eq!(config.api.sqs_region, "eu-west-1");
        assert!(config.api.events_to_sqs);
        assert_eq!(config.api.sqs_queue_prefix, "prod-");
        assert_eq!(
            config.api.redis_url.as_ref().map(|s| s.expose()),
            Some("rediss://:hunter2-pw@cache:6379")
        );
        assert!(
            !config.redacted().contains("hunter2"),
            "{}",
            config.redacted()
        );
        assert!(load(&[], &[("NAX_STORE", "postgres")]).is_err());
    }

    #[test]
    fn redacted_renders_extreme_values() {
        let config = load(&[], &[("NAX_SEED", "18446744073709551615")]).unwrap();
        assert!(config
            .redacted()
            .contains("venue.seed=18446744073709551615"));
    }

    #[test]
    fn port_zero_means_any_free_port() {
        assert_eq!(load(&["--port", "0"], &[]).unwrap().port, 0);
    }

    #[test]
    fn oversized_file_is_refused_before_it_is_read_whole() {
        let file = toml_file(&format!("# {}\nport = 9000\n", "x".repeat(MAX_FILE_BYTES)));
        let err = format!("{:#}", load(&["--config", path(&file)], &[]).unwrap_err());
        assert!(err.contains("larger than 1048576 bytes"), "{err}");
        let file = toml_file(&format!("# {}\nport = 9000\n", "x".repeat(1000)));
        assert_eq!(load(&["--config", path(&file)], &[]).unwrap().port, 9000);
    }

    #[test]
    fn deeply_nested_file_is_a_clear_error_not_a_crash() {
        let n = 100_000;
        for text in [
            format!("a = {}", "[".repeat(n)),
            format!("a = {}1{}", "[".repeat(n), "]".repeat(n)),
            format!("a = {}", "{b = ".repeat(n)),
            format!("a = {}1{}", "{b = ".repeat(n), "}".repeat(n)),
            format!("{} = 1", vec!["a"; n].join(".")),
            format!("[{}]", vec!["a"; n].join(".")),
            format!("[[{}]]", vec!["a"; n].join(".")),
        ] {
            let file = toml_file(&text);
            let err = format!("{:#}", load(&["--config", path(&file)], &[]).unwrap_err());
            assert!(err.starts_with("parsing config file"), "{err}");
            assert_eq!(err.lines().last(), Some("recursion limit exceeded"));
        }
    }

    #[test]
    fn unknown_toml_key_is_an_error() {
        let file = toml_file("[limits]\nmax_conections = 5\n");
        let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("max_conections"), "{text}");
    }

    #[test]
    fn unknown_nax_env_var_is_an_error_but_reserved_ones_are_not() {
        let err = load(&[], &[("NAX_PROT", "1")]).unwrap_err();
        match err.downcast::<ConfigError>().unwrap() {
            ConfigError::UnknownEnv { name, known } => {
                assert_eq!(name, "NAX_PROT");
                assert!(known.contains("NAX_PORT"), "{known}");
            }
            other => panic!("expected UnknownEnv, got {other:?}"),
        }
        let vars = [("NAX_LOG", "debug"), ("NAX_TEST_X", "1"), ("PATH", "/bin")];
        assert!(load(&[], &vars).is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(
            invalid_key(load(&["--max-frame-bytes", "512"], &[])),
            "limits.max_frame_bytes"
        );
        assert_eq!(
            invalid_key(load(&[], &[("NAX_OUTBOUND_QUEUE_BYTES", "1000")])),
            "limits.outbound_queue_bytes"
        );
        assert_eq!(
            invalid_key(load(&["--frames-per-sec", "0"], &[])),
            "limits.frames_per_sec"
        );
        assert_eq!(
            invalid_key(load(&["--pong-timeout-ms", "20000"], &[])),
            "limits.pong_timeout_ms"
        );
        let file = toml_file("[history]\nmax_messages = 0\n");
        let path = file.path().to_str().unwrap();
        assert_eq!(
            invalid_key(load(&["--config", path], &[])),
            "history.max_messages"
        );
    }

    #[test]
    fn allowed_origins_come_from_a_list_and_are_checked() {
        let config = load(
            &[],
            &[(
                "NAX_ALLOWED_ORIGINS",
                "https://trade.example.com,http://localhost:3000",
            )],
        )
        .unwrap();
        assert_eq!(
            config.allowed_origins,
            ["https://trade.example.com", "http://localhost:3000"]
        );
        assert_eq!(
            load(&["--allowed-origins", "*"], &[])
                .unwrap()
                .allowed_origins,
            ["*"]
        );
        for bad in [
            "trade.example.com",
            "https://x.example/path",
            "ftp://x",
            "https://",
        ] {
            assert_eq!(
                invalid_key(load(&["--allowed-origins", bad], &[])),
                "allowed_origins",
                "{bad}"
            );
        }
    }

    #[test]
    fn unparsable_env_value_names_the_variable() {
        let err = load(&[], &[("NAX_PORT", "eighty")]).unwrap_err();
        match err.downcast::<ConfigError>().unwrap() {
            ConfigError::Env { name, reason, .. } => {
                assert_eq!(name, "NAX_PORT");
                assert!(reason.contains("invalid value 'eighty'"), "{reason}");
            }
            other => panic!("expected Env, got {other:?}"),
        }
    }

    #[test]
    fn unparsable_flag_is_a_clap_error() {
        let err = load(&["--port", "eighty"], &[]).unwrap_err();
        assert!(err.downcast_ref::<clap::Error>().is_some());
    }

    #[test]
    fn help_renders_with_flags_and_variables() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("NA-X Stream hub"), "{help}");
        assert!(help.contains("--outbound-queue-bytes"), "{help}");
        assert!(help.contains("NAX_OUTBOUND_QUEUE_BYTES"), "{help}");
        Cli::command().debug_assert();
    }

    #[test]
    fn help_flag_is_reported_as_display_help() {
        let err = load(&["--help"], &[]).unwrap_err();
        let err = err.downcast::<clap::Error>().unwrap();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(err.to_string().contains("NAX_PORT"), "{err}");
    }

    #[test]
    fn redacted_is_one_line_with_every_key() {
        let line = Config::default().redacted();
        assert!(!line.contains('\n'));
        assert!(line.contains("port=8080"), "{line}");
        assert!(line.contains("venue.kind=\"sandbox\""), "{line}");
        assert!(
            line.contains("limits.outbound_queue_bytes=1048576"),
            "{line}"
        );
    }

    #[test]
    fn secret_looking_keys_are_masked() {
        let value = serde_json::json!({"port": 1, "venue": {"api_key": "k", "Token": "t"}});
        let mut line = String::new();
        write_flattened(&mut line, "", &value);
        assert!(line.starts_with("port=1 "), "{line}");
        assert!(line.contains("venue.Token=\"***\""), "{line}");
        assert!(line.contains("venue.api_key=\"***\""), "{line}");
        assert!(!line.contains("\"k\"") && !line.contains("\"t\""), "{line}");
    }
}

//! The command line of `nax-hub` ([`Cli`]): every flag with its `NAX_*`
//! variable, declared once, and how the given ones overwrite the
//! configuration (the last layer of docs/ARCHITECTURE.md, "Configuration").

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

use super::{http, Config, VenueKind};

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
    /// `development` (stand-ins allowed) or `production` (the start fails
    /// while the venue, a provider, a key, the store or the event log is
    /// a stand-in).
    #[arg(long, env = "NAX_PROFILE")]
    pub profile: Option<super::Profile>,
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
    /// Stripe's webhook endpoint secret (`whsec_...`). Unset: generated
    /// into the data directory (the sandbox signs with it).
    #[arg(long, env = "NAX_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Banxa's webhook HMAC secret. Unset: generated.
    #[arg(long, env = "NAX_BANXA_WEBHOOK_SECRET", hide_env_values = true)]
    pub banxa_webhook_secret: Option<String>,
    /// BCB Group's webhook HMAC secret. Unset: generated.
    #[arg(long, env = "NAX_BCB_WEBHOOK_SECRET", hide_env_values = true)]
    pub bcb_webhook_secret: Option<String>,
    /// Banxa's merchant API URL; set, `banxa` deposits are Banxa buy
    /// orders (with the key, the wallet and `NAX_BANXA_WEBHOOK_SECRET`).
    #[arg(long, env = "NAX_BANXA_API_URL", value_name = "URL")]
    pub banxa_api_url: Option<String>,
    /// Banxa's merchant API key.
    #[arg(long, env = "NAX_BANXA_API_KEY", hide_env_values = true)]
    pub banxa_api_key: Option<String>,
    /// The coin Banxa buys with a deposit (default USDT).
    #[arg(long, env = "NAX_BANXA_COIN")]
    pub banxa_coin: Option<String>,
    /// The exchange's wallet Banxa delivers that coin to.
    #[arg(long, env = "NAX_BANXA_WALLET_ADDRESS")]
    pub banxa_wallet_address: Option<String>,
    /// BCB Group's API URL (`https://api.bcb.group`); set, `bcb` deposits
    /// are transfers to the exchange's BCB account (with the client id
    /// and secret, and `NAX_BCB_WEBHOOK_SECRET`).
    #[arg(long, env = "NAX_BCB_API_URL", value_name = "URL")]
    pub bcb_api_url: Option<String>,
    /// BCB's OAuth token service (default `https://auth.bcb.group`).
    #[arg(long, env = "NAX_BCB_AUTH_URL", value_name = "URL")]
    pub bcb_auth_url: Option<String>,
    /// BCB's OAuth client id.
    #[arg(long, env = "NAX_BCB_CLIENT_ID")]
    pub bcb_client_id: Option<String>,
    /// BCB's OAuth client secret.
    #[arg(long, env = "NAX_BCB_CLIENT_SECRET", hide_env_values = true)]
    pub bcb_client_secret: Option<String>,
    /// Stripe's API URL (`https://api.stripe.com`); set, `stripe`
    /// deposits are PaymentIntents (with `NAX_STRIPE_API_KEY` and
    /// `NAX_STRIPE_WEBHOOK_SECRET`).
    #[arg(long, env = "NAX_STRIPE_API_URL", value_name = "URL")]
    pub stripe_api_url: Option<String>,
    /// Stripe's secret (or restricted) API key.
    #[arg(long, env = "NAX_STRIPE_API_KEY", hide_env_values = true)]
    pub stripe_api_key: Option<String>,
    /// The KYC implementation: `sandbox` (default) or `sumsub`.
    #[arg(long, env = "NAX_KYC_PROVIDER")]
    pub kyc_provider: Option<String>,
    /// Sumsub's API URL (`https://api.sumsub.com`), for
    /// `NAX_KYC_PROVIDER=sumsub`.
    #[arg(long, env = "NAX_SUMSUB_API_URL", value_name = "URL")]
    pub sumsub_api_url: Option<String>,
    /// Sumsub's app token.
    #[arg(long, env = "NAX_SUMSUB_APP_TOKEN", hide_env_values = true)]
    pub sumsub_app_token: Option<String>,
    /// Sumsub's secret key (signs our requests).
    #[arg(long, env = "NAX_SUMSUB_SECRET_KEY", hide_env_values = true)]
    pub sumsub_secret_key: Option<String>,
    /// Sumsub's webhook secret key (`X-Payload-Digest`). Unset: generated.
    #[arg(long, env = "NAX_SUMSUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub sumsub_webhook_secret: Option<String>,
    /// The Sumsub verification level applicants are made at.
    #[arg(long, env = "NAX_SUMSUB_LEVEL_NAME")]
    pub sumsub_level_name: Option<String>,
    /// The custody implementation: `sandbox` (default) or `fireblocks`.
    #[arg(long, env = "NAX_CUSTODY_PROVIDER")]
    pub custody_provider: Option<String>,
    /// Fireblocks' API URL, for `NAX_CUSTODY_PROVIDER=fireblocks`.
    #[arg(long, env = "NAX_FIREBLOCKS_API_URL", value_name = "URL")]
    pub fireblocks_api_url: Option<String>,
    /// Fireblocks' API key.
    #[arg(long, env = "NAX_FIREBLOCKS_API_KEY", hide_env_values = true)]
    pub fireblocks_api_key: Option<String>,
    /// PEM file of the Fireblocks API user's RSA private key.
    #[arg(long, env = "NAX_FIREBLOCKS_API_SECRET_FILE", value_name = "FILE")]
    pub fireblocks_api_secret_file: Option<String>,
    /// The same key's PEM text (wins over the file; for ECS secrets).
    #[arg(long, env = "NAX_FIREBLOCKS_API_SECRET", hide_env_values = true)]
    pub fireblocks_api_secret: Option<String>,
    /// The Fireblocks vault account of deposits and withdrawals.
    #[arg(long, env = "NAX_FIREBLOCKS_VAULT_ID")]
    pub fireblocks_vault_id: Option<String>,
    /// Our asset symbols to Fireblocks asset ids (`BTC=BTC_TEST,…`).
    #[arg(long, env = "NAX_FIREBLOCKS_ASSET_IDS")]
    pub fireblocks_asset_ids: Option<String>,
    /// Fireblocks' JWKS URL of webhooks v2 (e.g.
    /// `https://keys.fireblocks.io/.well-known/jwks.json`). Set: v2
    /// signatures are verified with it, and v1 only while
    /// `NAX_FIREBLOCKS_PUBLIC_KEY_FILE` is set too.
    #[arg(long, env = "NAX_FIREBLOCKS_JWKS_URL", value_name = "URL")]
    pub fireblocks_jwks_url: Option<String>,
    /// PEM file of Fireblocks' webhook public key. Unset: the sandbox
    /// custody's own key pair, generated.
    #[arg(long, env = "NAX_FIREBLOCKS_PUBLIC_KEY_FILE", value_name = "FILE")]
    pub fireblocks_public_key_file: Option<String>,
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
    /// AWS region of DynamoDB, SQS, KMS and Secrets Manager.
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
    /// How often `aws-sm:` references of provider secrets are fetched
    /// again, ms (a rotation is in use within this long).
    #[arg(long, env = "NAX_SECRETS_TTL_MS")]
    pub secrets_ttl_ms: Option<u64>,
    /// Secrets Manager endpoint override (e.g. a local emulator).
    #[arg(long, env = "NAX_SECRETS_ENDPOINT", value_name = "URL")]
    pub secrets_endpoint: Option<String>,
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
    /// Log lines as `json` or `text` (default: JSON unless standard
    /// output is a terminal).
    #[arg(long, env = "NAX_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<super::logging::LogFormat>,
    /// Send traces over OTLP/HTTP to this base URL (e.g.
    /// `http://127.0.0.1:4318`; unset: none).
    #[arg(long, env = "NAX_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
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
    /// Requests slower than this (ms) count as slow (the REST latency
    /// alarm's threshold).
    #[arg(long, env = "NAX_SLOW_REQUEST_MS")]
    pub slow_request_ms: Option<u64>,
    /// Trusted proxies, comma-separated IPs or CIDR blocks (the load
    /// balancer's subnets): their X-Forwarded-For names the client.
    /// The API applies received webhooks in this process
    /// (`[api] webhook_worker_in_process`; default true). Production runs
    /// `nax-worker webhooks` instead.
    #[arg(long, env = "NAX_WEBHOOK_WORKER_IN_PROCESS")]
    pub webhook_worker_in_process: Option<bool>,
    /// Run the queue consumers inside `nax-hub` (`[worker] in_process`).
    #[arg(long, env = "NAX_WORKER_IN_PROCESS")]
    pub worker_in_process: Option<bool>,
    /// `nax-worker`: port of `/health`, `/ready` and `/metrics`.
    #[arg(long, env = "NAX_WORKER_HEALTH_PORT")]
    pub worker_health_port: Option<u16>,
    /// S3 bucket of the audit archive (unset: `<data_dir>/audit/`).
    #[arg(long, env = "NAX_AUDIT_BUCKET")]
    pub audit_bucket: Option<String>,
    /// KMS key id of the audit archive's server-side encryption.
    #[arg(long, env = "NAX_AUDIT_KMS_KEY_ID")]
    pub audit_kms_key_id: Option<String>,
    /// S3 endpoint override (e.g. a local emulator).
    #[arg(long, env = "NAX_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// HubSpot CRM API base URL.
    #[arg(long, env = "NAX_HUBSPOT_BASE_URL", value_name = "URL")]
    pub hubspot_base_url: Option<String>,
    /// HubSpot private app token (unset: no CRM sync). Prefer the
    /// variable: flags show in process lists.
    #[arg(long, env = "NAX_HUBSPOT_TOKEN", hide_env_values = true)]
    pub hubspot_token: Option<String>,
    /// HubSpot requests per 10 s the CRM sync stays under.
    #[arg(long, env = "NAX_HUBSPOT_REQUESTS_PER_10S")]
    pub hubspot_requests_per_10s: Option<u32>,
    /// Reconciliation: age after which a deposit or withdrawal that is
    /// not final is re-queried, seconds.
    #[arg(long, env = "NAX_RECONCILE_STUCK_AFTER_SECS")]
    pub reconcile_stuck_after_secs: Option<u64>,
    /// EventBridge bus the domain events also go to (with
    /// `events_to_sqs`); unset: none.
    #[arg(long, env = "NAX_EVENTBRIDGE_BUS")]
    pub eventbridge_bus: Option<String>,
    /// EventBridge endpoint override (e.g. a local emulator).
    #[arg(long, env = "NAX_EVENTBRIDGE_ENDPOINT", value_name = "URL")]
    pub eventbridge_endpoint: Option<String>,
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

/// Accepts `24301` as well as `0x5eed`.
fn parse_u64_maybe_hex(s: &str) -> Result<u64, std::num::ParseIntError> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
}

impl Config {
    /// Overwrites every field given by a flag or environment variable.
    pub(super) fn apply(&mut self, cli: Cli) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut self.profile, cli.profile);
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
        for (field, value) in [
            (
                &mut self.api.stripe_webhook_secret,
                cli.stripe_webhook_secret,
            ),
            (&mut self.api.banxa_webhook_secret, cli.banxa_webhook_secret),
            (&mut self.api.bcb_webhook_secret, cli.bcb_webhook_secret),
            (
                &mut self.api.sumsub_webhook_secret,
                cli.sumsub_webhook_secret,
            ),
            (&mut self.api.sumsub_app_token, cli.sumsub_app_token),
            (&mut self.api.bcb_client_secret, cli.bcb_client_secret),
            (&mut self.api.sumsub_secret_key, cli.sumsub_secret_key),
            (
                &mut self.api.fireblocks_api_secret,
                cli.fireblocks_api_secret,
            ),
        ] {
            if let Some(secret) = value {
                *field = Some(api::secret::Secret::new(secret));
            }
        }
        if let Some(key) = cli.banxa_api_key {
            self.api.banxa_api_key = Some(api::secret::Secret::new(key));
        }
        if let Some(key) = cli.stripe_api_key {
            self.api.stripe_api_key = Some(api::secret::Secret::new(key));
        }
        set(&mut self.api.stripe_api_url, cli.stripe_api_url);
        set(&mut self.api.bcb_api_url, cli.bcb_api_url);
        set(&mut self.api.bcb_auth_url, cli.bcb_auth_url);
        set(&mut self.api.bcb_client_id, cli.bcb_client_id);
        set(&mut self.api.banxa_api_url, cli.banxa_api_url);
        set(&mut self.api.banxa_coin, cli.banxa_coin);
        set(&mut self.api.banxa_wallet_address, cli.banxa_wallet_address);
        set(&mut self.api.fireblocks_jwks_url, cli.fireblocks_jwks_url);
        set(&mut self.api.custody_provider, cli.custody_provider);
        set(&mut self.api.kyc_provider, cli.kyc_provider);
        set(&mut self.api.sumsub_api_url, cli.sumsub_api_url);
        set(&mut self.api.sumsub_level_name, cli.sumsub_level_name);
        set(&mut self.api.fireblocks_api_url, cli.fireblocks_api_url);
        if let Some(key) = cli.fireblocks_api_key {
            self.api.fireblocks_api_key = Some(api::secret::Secret::new(key));
        }
        if let Some(file) = cli.fireblocks_api_secret_file {
            self.api.fireblocks_api_secret_file = Some(file);
        }
        set(&mut self.api.fireblocks_vault_id, cli.fireblocks_vault_id);
        set(&mut self.api.fireblocks_asset_ids, cli.fireblocks_asset_ids);
        if let Some(file) = cli.fireblocks_public_key_file {
            self.api.fireblocks_public_key_file = Some(file);
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
            api.secrets_region = region.clone();
            api.sqs_region = region;
        }
        set(&mut api.kms_key_id, cli.kms_key_id);
        set(&mut api.kms_endpoint, cli.kms_endpoint);
        set(&mut api.secrets_ttl_ms, cli.secrets_ttl_ms);
        set(&mut api.secrets_endpoint, cli.secrets_endpoint);
        set(&mut api.events_to_sqs, cli.events_to_sqs);
        set(&mut api.sqs_endpoint, cli.sqs_endpoint);
        set(&mut api.sqs_queue_prefix, cli.sqs_queue_prefix);
        set(&mut api.sqs_create_queues, cli.sqs_create_queues);
        set(&mut api.eventbridge_bus, cli.eventbridge_bus);
        set(
            &mut api.webhook_worker_in_process,
            cli.webhook_worker_in_process,
        );
        set(&mut api.eventbridge_endpoint, cli.eventbridge_endpoint);
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
        if let Some(format) = cli.log_format {
            self.log_format = Some(format);
        }
        if let Some(endpoint) = cli.otlp_endpoint {
            self.otlp_endpoint = Some(endpoint);
        }
        let http = &mut self.http;
        set(&mut http.header_timeout_ms, cli.header_timeout_ms);
        set(&mut http.idle_timeout_ms, cli.idle_timeout_ms);
        set(&mut http.proxy_idle_timeout_ms, cli.proxy_idle_timeout_ms);
        set(&mut http.max_head_bytes, cli.max_head_bytes);
        set(&mut http.max_connections_per_ip, cli.max_connections_per_ip);
        set(&mut http.slow_request_ms, cli.slow_request_ms);
        set(&mut http.trusted_proxies, cli.trusted_proxies);
        let worker = &mut self.worker;
        if let Some(on) = cli.worker_in_process {
            worker.in_process = Some(on);
        }
        set(&mut worker.health_port, cli.worker_health_port);
        set(&mut worker.audit_bucket, cli.audit_bucket);
        set(&mut worker.audit_kms_key_id, cli.audit_kms_key_id);
        set(&mut worker.s3_endpoint, cli.s3_endpoint);
        set(&mut worker.hubspot_base_url, cli.hubspot_base_url);
        if let Some(token) = cli.hubspot_token {
            worker.hubspot_token = Some(api::secret::Secret::new(token));
        }
        set(
            &mut worker.hubspot_requests_per_10s,
            cli.hubspot_requests_per_10s,
        );
        set(
            &mut worker.reconcile_stuck_after_secs,
            cli.reconcile_stuck_after_secs,
        );
    }
}

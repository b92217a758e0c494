//! [`ApiConfig`]: the `[api]` section of the hub's configuration. Every
//! field has a working default, so the service runs with no configuration;
//! secrets left unset are generated once and kept in the data directory.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// How bearer tokens are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Tokens this service issues (`POST /auth/login`), HS256.
    #[default]
    Local,
    /// AWS Cognito RS256 access tokens verified against the pool's JWKS.
    Cognito,
}

/// Cognito verification settings (used when `auth_mode = "cognito"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CognitoConfig {
    /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID/.well-known/jwks.json`.
    pub jwks_url: String,
    /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID`.
    pub issuer: String,
    /// The app client id (`client_id` claim of access tokens).
    pub client_id: String,
    /// How long fetched keys are cached.
    pub jwks_cache_secs: u64,
}

/// Where the API's state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A crash-safe file in the data directory (one node).
    #[default]
    Embedded,
    /// DynamoDB, the tables of `infra/terraform/dynamodb.tf` (any number
    /// of nodes).
    Dynamodb,
}

/// REST settings. See each field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub auth_mode: AuthMode,
    pub cognito: CognitoConfig,
    /// HS256 key of local access tokens; generated into the data directory
    /// when unset.
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub jwt_secret: Option<Secret>,
    /// `iss` and `aud` of local access tokens.
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// Access-token lifetime (docs/API.md: 15 minutes).
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime (docs/API.md: 7 days).
    pub refresh_token_ttl_secs: u64,
    /// Requests per minute per client (user, else IP) on rate-limited routes.
    pub requests_per_minute: u32,
    /// Burst above the steady rate.
    pub request_burst: u32,
    /// Failed logins of one account from one client address before that
    /// pair waits: 1 s after the `login_failures_allowed`-th failure,
    /// doubling with each further one (see `auth::throttle`). A client
    /// address may fail 5 times this many across accounts.
    pub login_failures_allowed: u32,
    /// The longest wait of an (account, address) pair, and the window of
    /// an address's failures across accounts. 0 turns failure throttling
    /// off.
    pub login_lockout_secs: u64,
    /// Successful logins per account per minute (from the first one);
    /// past it, logins of the account get 429 until the minute ends.
    /// At least 1.
    pub login_successes_per_account_per_minute: u32,
    /// Successful logins per client address per minute, over every
    /// account; past it, logins from the address get 429 until the minute
    /// ends. At least 1.
    pub login_successes_per_address_per_minute: u32,
    /// Threads that hash passwords (argon2id, register and login). Each
    /// keeps one 19 MiB buffer for the life of the process, so password
    /// hashing holds at most this many × 19 MiB (default 4: 76 MiB)
    /// whatever the load; more requests queue (64 per thread, then 503
    /// `auth_busy`). 1 to 64.
    pub argon2_threads: usize,
    /// Venue events (order reports, fills, balances) the order sync may
    /// hold unapplied before new orders get 503 `overloaded`; cancels
    /// still go through (`trading::backlog`). At least 1.
    pub order_sync_backlog_max: usize,
    /// Sandbox KYC provider: delay before a submitted document is verified.
    pub kyc_verify_delay_ms: u64,
    /// Sandbox payment provider: delay before it confirms a fiat deposit
    /// by calling the webhook.
    pub fiat_confirm_delay_ms: u64,
    /// The custody implementation (`providers::CUSTODY`):
    /// `sandbox` (default) derives addresses and completes withdrawals
    /// itself. An unknown name stops the start.
    pub custody_provider: String,
    /// The payment implementation serving every fiat provider
    /// (`providers::PAYMENTS`): `sandbox` (default).
    pub payment_provider: String,
    /// The KYC review implementation (`providers::KYC`):
    /// `sandbox` (default) decides after `kyc_verify_delay_ms`.
    pub kyc_provider: String,
    /// The public base URL of this service's webhooks, as registered
    /// with the providers (`{base}/webhooks/{provider}`): the sandbox
    /// providers call it (empty: the hub's own address), and its path is
    /// the prefix of the path Banxa signs (behind a gateway that strips
    /// one, e.g. `https://api.example.com/api`).
    pub webhook_base_url: String,
    /// Signing secrets of the HMAC webhook providers; generated into the
    /// data directory when unset.
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub stripe_webhook_secret: Option<Secret>,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub banxa_webhook_secret: Option<Secret>,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub bcb_webhook_secret: Option<Secret>,
    /// Sumsub's webhook secret key (`X-Payload-Digest`); generated when
    /// unset.
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub sumsub_webhook_secret: Option<Secret>,
    /// Sumsub's API (`https://api.sumsub.com`), for `kyc_provider =
    /// "sumsub"` (`providers::kyc_sumsub`), with its app token and secret
    /// key, and the verification level applicants are made at.
    pub sumsub_api_url: String,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub sumsub_app_token: Option<Secret>,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub sumsub_secret_key: Option<Secret>,
    pub sumsub_level_name: String,
    /// Banxa's merchant API (`https://{partner}.banxa.com`, or
    /// `.banxa-sandbox.com`); set, `banxa` deposits are Banxa buy orders
    /// (`providers::payment_banxa`), signed with `banxa_api_key` and the
    /// Banxa secret (`banxa_webhook_secret`: Banxa signs its webhooks with
    /// the same one). Empty: `payment_provider` serves Banxa too.
    pub banxa_api_url: String,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub banxa_api_key: Option<Secret>,
    /// BCB Group's API (`https://api.bcb.group`, or
    /// `https://api.uat.bcb.group`); set, `bcb` deposits are transfers to
    /// the exchange's BCB account (`providers::payment_bcb`), with an
    /// OAuth token from `bcb_auth_url` for `bcb_client_id`.
    pub bcb_api_url: String,
    pub bcb_auth_url: String,
    pub bcb_client_id: String,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub bcb_client_secret: Option<Secret>,
    /// Stripe's API (`https://api.stripe.com`); set, `stripe` deposits are
    /// PaymentIntents (`providers::payment_stripe`) made with
    /// `stripe_api_key` (a secret or restricted key). Empty:
    /// `payment_provider` serves Stripe too.
    pub stripe_api_url: String,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub stripe_api_key: Option<Secret>,
    /// The coin Banxa buys with a deposit, delivered to
    /// `banxa_wallet_address` (the exchange's wallet).
    pub banxa_coin: String,
    pub banxa_wallet_address: String,
    /// PEM file of Fireblocks' webhook public key (legacy
    /// `Fireblocks-Signature`); unset: the sandbox custody's own key pair
    /// (generated into the data directory), unless `fireblocks_jwks_url`
    /// is set, which then accepts webhooks v2 only.
    pub fireblocks_public_key_file: Option<String>,
    /// Fireblocks' API (`https://api.fireblocks.io`, or
    /// `https://sandbox-api.fireblocks.io`), for `custody_provider =
    /// "fireblocks"` (`providers::custody_fireblocks`), with the API
    /// user's key and the PEM file of its RSA private key.
    pub fireblocks_api_url: String,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub fireblocks_api_key: Option<Secret>,
    pub fireblocks_api_secret_file: Option<String>,
    /// The same key's PEM text itself (ECS passes secrets as variables,
    /// not files); wins over the file.
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub fireblocks_api_secret: Option<Secret>,
    /// The vault account holding deposit addresses and paying withdrawals.
    pub fireblocks_vault_id: String,
    /// Our asset symbols → Fireblocks asset ids (`BTC=BTC_TEST,…`;
    /// unlisted: the same symbol).
    pub fireblocks_asset_ids: String,
    /// Fireblocks' JWKS of webhooks v2 (`Fireblocks-Webhook-Signature`,
    /// e.g. `https://keys.fireblocks.io/.well-known/jwks.json`); empty:
    /// v1 only.
    pub fireblocks_jwks_url: String,
    /// Timeout of one venue or provider call.
    pub upstream_timeout_ms: u64,
    /// Attempts of an idempotent upstream call (1 = no retry).
    pub upstream_attempts: u32,
    /// Redis shared by every node (`redis://[:password@]host:port`): rate
    /// limits, session state and revocations, the private-channel
    /// backplane and the `market:{pair}:orderbook` cache. Unset: each node
    /// keeps these in process (one node). Redis down: each part falls back
    /// to its in-process behaviour (metrics `nax_*_fallbacks_total`).
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub redis_url: Option<Secret>,
    /// Put before every Redis key and stream name (deployments sharing a
    /// Redis keep apart with it).
    pub redis_key_prefix: String,
    /// Entries the private-channel backplane's Redis stream keeps (about:
    /// `MAXLEN ~`). A node whose listener falls further behind closes its
    /// private channels' connections (4008) instead of missing updates.
    pub backplane_stream_len: u64,
    /// Where users, transactions, sessions and the outbox are kept.
    pub store: StoreKind,
    /// DynamoDB endpoint override (e.g. moto); empty: the region's AWS
    /// endpoint.
    pub dynamodb_endpoint: String,
    pub dynamodb_region: String,
    /// Prepended to table names; the Terraform `resource_prefix`.
    pub dynamodb_table_prefix: String,
    /// Create missing tables at start (local development and tests;
    /// production tables come from Terraform).
    pub dynamodb_create_tables: bool,
    /// AWS credentials for DynamoDB, SQS, KMS and Secrets Manager (e.g.
    /// moto's `test`/`test`); empty: the default AWS provider chain
    /// (environment, ECS task role).
    pub aws_access_key_id: String,
    #[serde(serialize_with = "Secret::redacted_serialize_opt")]
    pub aws_secret_access_key: Option<Secret>,
    /// Publish events to SQS (the three queues of docs/ARCHITECTURE.md) instead of the
    /// NDJSON log in the data directory.
    pub events_to_sqs: bool,
    /// SQS endpoint override (e.g. moto); empty: the region's AWS endpoint.
    pub sqs_endpoint: String,
    pub sqs_region: String,
    /// Prepended to queue names; the Terraform `resource_prefix`.
    pub sqs_queue_prefix: String,
    /// Create missing queues (with their dead-letter queues) at start
    /// (local development; production queues come from Terraform).
    pub sqs_create_queues: bool,
    /// Run the webhook applier (`webhooks::worker`) in this process, on
    /// `webhook-processing-queue` (SQS with `events_to_sqs`, else the
    /// event log in the data directory). Off where a separate worker
    /// (`nax-worker webhooks`) consumes the queue.
    pub webhook_worker_in_process: bool,
    /// EventBridge bus (name or ARN) the domain events also go to (order
    /// filled, deposit / withdrawal completed, KYC status changed; see
    /// `events::eventbridge`), after SQS. Empty: off. Only with
    /// `events_to_sqs`.
    pub eventbridge_bus: String,
    /// EventBridge endpoint override (e.g. moto); empty: the region's AWS
    /// endpoint. The region is `sqs_region`.
    pub eventbridge_endpoint: String,
    /// KMS key (id, ARN or `alias/...`) whose data key seals the stored
    /// secrets (TOTP seeds, password hashes; see `seal/`): generated once
    /// with `GenerateDataKey`, kept wrapped in the store for every node,
    /// unwrapped with `Decrypt` at start. Empty: a key file generated
    /// into `<data_dir>/keys/data.key` (one node, or nodes sharing that
    /// file).
    pub kms_key_id: String,
    /// KMS endpoint override (e.g. moto); empty: the region's AWS endpoint.
    pub kms_endpoint: String,
    pub kms_region: String,
    /// How often provider credentials that are Secrets Manager references
    /// (`aws-sm:<secret-id>[#<json-key>]`, see `secrets`) are fetched
    /// again; a rotated value is in use within this long, without a
    /// restart. At least 100 ms.
    pub secrets_ttl_ms: u64,
    /// Secrets Manager endpoint override (e.g. moto); empty: the region's
    /// AWS endpoint.
    pub secrets_endpoint: String,
    pub secrets_region: String,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before letting one call through.
    pub breaker_open_ms: u64,
}

impl ApiConfig {
    /// The fixed AWS credentials, when both parts are set.
    pub fn aws_credentials(&self) -> Option<crate::events::sqs::StaticCredentials> {
        let secret = self.aws_secret_access_key.as_ref()?;
        (!self.aws_access_key_id.is_empty()).then(|| crate::events::sqs::StaticCredentials {
            access_key_id: self.aws_access_key_id.clone(),
            secret_access_key: secret.clone(),
        })
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            auth_mode: AuthMode::Local,
            cognito: CognitoConfig {
                jwks_cache_secs: 3600,
                ..CognitoConfig::default()
            },
            jwt_secret: None,
            jwt_issuer: "nax-stream".into(),
            jwt_audience: "nax-stream-api".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            requests_per_minute: 600,
            request_burst: 100,
            login_failures_allowed: 5,
            login_lockout_secs: 300,
            login_successes_per_account_per_minute: 10,
            login_successes_per_address_per_minute: 60,
            argon2_threads: 4,
            order_sync_backlog_max: 100_000,
            kyc_verify_delay_ms: 1000,
            fiat_confirm_delay_ms: 500,
            custody_provider: "sandbox".into(),
            payment_provider: "sandbox".into(),
            kyc_provider: "sandbox".into(),
            webhook_base_url: String::new(),
            stripe_webhook_secret: None,
            banxa_webhook_secret: None,
            banxa_api_url: String::new(),
            banxa_api_key: None,
            banxa_coin: "USDT".to_owned(),
            stripe_api_url: String::new(),
            bcb_api_url: String::new(),
            bcb_auth_url: "https://auth.bcb.group".to_owned(),
            bcb_client_id: String::new(),
            bcb_client_secret: None,
            sumsub_webhook_secret: None,
            sumsub_api_url: String::new(),
            sumsub_app_token: None,
            sumsub_secret_key: None,
            sumsub_level_name: "basic-kyc-level".to_owned(),
            fireblocks_jwks_url: String::new(),
            fireblocks_api_url: String::new(),
            fireblocks_api_key: None,
            fireblocks_api_secret_file: None,
            fireblocks_api_secret: None,
            fireblocks_vault_id: String::new(),
            fireblocks_asset_ids: String::new(),
            stripe_api_key: None,
            banxa_wallet_address: String::new(),
            bcb_webhook_secret: None,
            fireblocks_public_key_file: None,
            upstream_timeout_ms: 2000,
            upstream_attempts: 3,
            redis_url: None,
            redis_key_prefix: String::new(),
            backplane_stream_len: crate::cluster::backplane::STREAM_LEN,
            store: StoreKind::Embedded,
            dynamodb_endpoint: String::new(),
            dynamodb_region: "us-east-1".into(),
            dynamodb_table_prefix: String::new(),
            dynamodb_create_tables: false,
            aws_access_key_id: String::new(),
            aws_secret_access_key: None,
            events_to_sqs: false,
            sqs_endpoint: String::new(),
            sqs_region: "us-east-1".into(),
            sqs_queue_prefix: String::new(),
            sqs_create_queues: false,
            webhook_worker_in_process: true,
            eventbridge_bus: String::new(),
            eventbridge_endpoint: String::new(),
            kms_key_id: String::new(),
            kms_endpoint: String::new(),
            kms_region: "us-east-1".into(),
            secrets_ttl_ms: 300_000,
            secrets_endpoint: String::new(),
            secrets_region: "us-east-1".into(),
            breaker_failures: 5,
            breaker_open_ms: 5000,
        }
    }
}

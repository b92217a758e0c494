//! The `[worker]` section: the queue consumers (docs/ARCHITECTURE.md,
//! "After the queues"), run by `nax-worker` and, when `in_process`, by
//! `nax-hub` itself.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// The queue consumers (TOML section `[worker]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// `nax-hub` runs the consumers (audit archive, CRM sync when a
    /// HubSpot token is set, reconciliation) in its own process. Unset:
    /// when events go to the embedded log (the one-command default);
    /// with SQS, `nax-worker` runs them (several hubs must not each run
    /// an audit archiver).
    pub in_process: Option<bool>,
    /// Where `nax-worker` serves `/health`, `/ready` and `/metrics`.
    pub health_bind: IpAddr,
    pub health_port: u16,
    /// S3 bucket of the audit archive; empty: files under
    /// `<data_dir>/audit/`.
    pub audit_bucket: String,
    /// KMS key the archive's objects are encrypted with (SSE-KMS); empty:
    /// the bucket's default encryption.
    pub audit_kms_key_id: String,
    /// S3 endpoint override (a local emulator); empty: AWS.
    pub s3_endpoint: String,
    /// Events per archive object at most, and how long a batch gathers.
    pub audit_batch_max: usize,
    pub audit_batch_wait_ms: u64,
    /// HubSpot CRM API base URL.
    pub hubspot_base_url: String,
    /// HubSpot private app token; unset: the CRM sync does not run.
    #[serde(serialize_with = "api::secret::Secret::redacted_serialize_opt")]
    pub hubspot_token: Option<api::secret::Secret>,
    /// Requests per 10-second window the CRM sync stays under (HubSpot's
    /// limit for the app's tier).
    pub hubspot_requests_per_10s: u32,
    /// A deposit or withdrawal still not final after this long is
    /// re-queried by reconciliation.
    pub reconcile_stuck_after_secs: u64,
    /// How often the in-process reconciliation runs; 0: never (run
    /// `nax-worker reconcile` instead).
    pub reconcile_every_secs: u64,
}

impl WorkerConfig {
    /// Whether `nax-hub` runs the consumers, given where events go.
    pub fn runs_in_process(&self, events_to_sqs: bool) -> bool {
        self.in_process.unwrap_or(!events_to_sqs)
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            in_process: None,
            health_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            health_port: 9100,
            audit_bucket: String::new(),
            audit_kms_key_id: String::new(),
            s3_endpoint: String::new(),
            audit_batch_max: 500,
            audit_batch_wait_ms: 2_000,
            hubspot_base_url: "https://api.hubapi.com".into(),
            hubspot_token: None,
            hubspot_requests_per_10s: 100,
            reconcile_stuck_after_secs: 3_600,
            reconcile_every_secs: 3_600,
        }
    }
}

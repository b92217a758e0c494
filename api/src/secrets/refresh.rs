//! [`ProviderSecrets`]: the `aws-sm:` references of the configuration,
//! fetched at start and refreshed every `secrets_ttl_ms` by one task
//! ([`ProviderSecrets::refresh_task`], stopped with the API).

use super::fetch::{read, value, SecretError};
use super::{LiveSecret, Reference, ROTATION_GRACE, SETTINGS};
use crate::config::ApiConfig;
use crate::secret::Secret;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Counter of failed refreshes, by setting; the last value stays in use.
pub const REFRESH_FAILURES: &str = "nax_secret_refresh_failures_total";

/// One referenced secret and the settings naming it.
#[derive(Clone)]
struct Entry {
    reference: Reference,
    /// The settings referring to it, comma-separated (for errors and logs).
    settings: String,
    live: LiveSecret,
}

/// Every provider credential the configuration refers to Secrets Manager
/// for, with its value now; plain values are not kept here
/// ([`live`](Self::live) wraps them). The default has no reference.
#[derive(Clone, Default)]
pub struct ProviderSecrets {
    entries: Vec<Entry>,
    /// Set when there is at least one reference.
    client: Option<aws_sdk_secretsmanager::Client>,
    ttl: Duration,
}

impl ProviderSecrets {
    /// [`resolve_with_grace`](Self::resolve_with_grace) with
    /// [`ROTATION_GRACE`].
    pub async fn resolve(config: &ApiConfig) -> Result<ProviderSecrets, SecretError> {
        Self::resolve_with_grace(config, ROTATION_GRACE).await
    }

    /// Fetches every reference of [`SETTINGS`] once (the same reference in
    /// two settings once). A secret that cannot be read, or lacks the JSON
    /// key named, is an error naming the settings and the secret id.
    /// Webhook verifiers accept a previous value for `grace` after a
    /// change.
    pub async fn resolve_with_grace(
        config: &ApiConfig,
        grace: Duration,
    ) -> Result<ProviderSecrets, SecretError> {
        let mut wanted: Vec<(Reference, String)> = Vec::new();
        for (setting, get) in SETTINGS {
            let reference = match get(config).and_then(|s| Reference::parse(s.expose())) {
                None => continue,
                Some(Ok(reference)) => reference,
                // Config validation refuses these first.
                Some(Err(e)) => {
                    return Err(SecretError {
                        settings: (*setting).to_owned(),
                        secret_id: String::new(),
                        reason: e.to_string(),
                    })
                }
            };
            match wanted.iter_mut().find(|(r, _)| *r == reference) {
                Some((_, settings)) => *settings = format!("{settings}, {setting}"),
                None => wanted.push((reference, (*setting).to_owned())),
            }
        }
        let ttl = Duration::from_millis(config.secrets_ttl_ms);
        if wanted.is_empty() {
            return Ok(ProviderSecrets {
                entries: Vec::new(),
                client: None,
                ttl,
            });
        }
        let endpoint = (!config.secrets_endpoint.is_empty()).then_some(&*config.secrets_endpoint);
        let credentials = config.aws_credentials();
        let sdk =
            crate::aws::sdk_config(&config.secrets_region, endpoint, credentials.as_ref()).await;
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        let reads = read_each(&client, wanted.iter().map(|(r, _)| r)).await;
        let mut entries = Vec::with_capacity(wanted.len());
        for (reference, settings) in wanted {
            let value =
                value(&reads[&reference.secret_id], &reference).map_err(|reason| SecretError {
                    settings: settings.clone(),
                    secret_id: reference.secret_id.clone(),
                    reason,
                })?;
            entries.push(Entry {
                reference,
                settings,
                live: LiveSecret::with_grace(value, grace),
            });
        }
        Ok(ProviderSecrets {
            entries,
            client: Some(client),
            ttl,
        })
    }

    /// The live value of a setting holding `configured`: the fetched
    /// secret when it is a reference resolved here, else the value itself,
    /// fixed.
    pub fn live(&self, configured: &Secret) -> LiveSecret {
        let resolved = match Reference::parse(configured.expose()) {
            Some(Ok(reference)) => self.entries.iter().find(|e| e.reference == reference),
            _ => None,
        };
        match resolved {
            Some(entry) => entry.live.clone(),
            None => LiveSecret::fixed(configured.clone()),
        }
    }

    /// [`live`](Self::live) of an optional setting.
    pub fn setting(&self, configured: Option<&Secret>) -> Option<LiveSecret> {
        configured.map(|s| self.live(s))
    }

    /// The loop fetching every reference again every `secrets_ttl_ms`
    /// (none without references). A changed value is used from then on; a
    /// failed fetch keeps the last value, logs a warning naming the setting
    /// and secret id and counts [`REFRESH_FAILURES`]. Runs until aborted.
    pub fn refresh_task(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let client = self.client.clone()?;
        let (entries, ttl) = (self.entries.clone(), self.ttl);
        Some(async move {
            let mut tick = tokio::time::interval(ttl);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let reads = read_each(&client, entries.iter().map(|e| &e.reference)).await;
                for entry in &entries {
                    refresh(entry, &reads[&entry.reference.secret_id]);
                }
            }
        })
    }
}

/// Each secret the references name, read once (`GetSecretValue`), by
/// secret id: the settings naming keys of one secret take them from one
/// version of it, so a rotation that writes them together reaches them
/// together.
async fn read_each<'a>(
    client: &aws_sdk_secretsmanager::Client,
    references: impl Iterator<Item = &'a Reference>,
) -> HashMap<String, Result<Secret, String>> {
    let mut reads = HashMap::new();
    for reference in references {
        if !reads.contains_key(&reference.secret_id) {
            let answer = read(client, &reference.secret_id).await;
            reads.insert(reference.secret_id.clone(), answer);
        }
    }
    reads
}

/// One entry again, from `read`, the answer for its secret this pass.
fn refresh(entry: &Entry, read: &Result<Secret, String>) {
    let (settings, secret_id) = (&entry.settings, &entry.reference.secret_id);
    match value(read, &entry.reference) {
        Ok(value) => {
            if entry.live.replace(value) {
                tracing::info!(
                    settings,
                    secret_id,
                    "secret rotated; the new value is in use"
                );
            }
        }
        Err(reason) => {
            tracing::warn!(
                settings,
                secret_id,
                reason,
                "secret refresh failed; keeping the last value"
            );
            metrics::counter!(REFRESH_FAILURES, "setting" => settings.clone()).increment(1);
        }
    }
}

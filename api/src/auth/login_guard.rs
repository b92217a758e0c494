//! Applies the login throttle ([`super::throttle`] has the policy) to an
//! attempt: this node's counts and, with Redis, every node's
//! ([`crate::cluster::login_counts`]). An attempt is refused when either
//! says so; events are counted in both. Redis down or slow: this node's
//! counts alone (logged at debug level).

use super::throttle::{retry_after_secs, Limit, Rule, FIRST_DELAY};
use super::Auth;
use crate::error::ApiError;
use std::net::IpAddr;
use std::time::Duration;

impl Auth {
    /// 429 `rate_limited` with `Retry-After` while `account` from `ip` is
    /// refused, on this node or (with Redis) on any node.
    pub(super) async fn throttle_check(
        &self,
        account: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let rules = self.throttle_policy.checked_rules(account, ip);
        let mut wait = self.throttle.wait(&rules);
        if let Some(shared) = &self.login_counts {
            let names: Vec<String> = rules.iter().map(|(c, _)| c.shared_name()).collect();
            match shared.read(&names).await {
                Ok(counts) => {
                    let everywhere = rules
                        .iter()
                        .zip(counts)
                        .filter_map(|((_, limit), c)| limit.shared_wait(c.count, c.ttl_ms))
                        .max();
                    wait = wait.max(everywhere);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "login throttle: redis unavailable; this node's counts only");
                }
            }
        }
        match wait {
            Some(wait) => Err(ApiError::rate_limited(retry_after_secs(wait))),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt of `account` from `ip`.
    pub(super) async fn throttle_failure(&self, account: &str, ip: Option<IpAddr>) {
        let rules = self.throttle_policy.failure_rules(account, ip);
        self.throttle.record(&rules);
        self.record_shared(&rules).await;
    }

    /// Counts a successful login of `account` from `ip` and forgets that
    /// pair's failures.
    pub(super) async fn throttle_success(&self, account: &str, ip: Option<IpAddr>) {
        let rules = self.throttle_policy.success_rules(account, ip);
        let cleared = self.throttle_policy.cleared_on_success(account, ip);
        self.throttle.record(&rules);
        self.throttle.clear(&cleared);
        self.record_shared(&rules).await;
        if let Some(shared) = &self.login_counts {
            if let Err(e) = shared.clear(&cleared.shared_name()).await {
                tracing::debug!(error = %e, "login throttle: failures cleared on this node only");
            }
        }
    }

    /// Counts one event against `rules` in Redis, when configured.
    async fn record_shared(&self, rules: &[Rule]) {
        let Some(shared) = &self.login_counts else {
            return;
        };
        let mut windows: Vec<(String, Duration)> = Vec::new();
        for (counter, limit) in rules {
            let counted = match *limit {
                Limit::Window { window, .. } => {
                    windows.push((counter.shared_name(), window));
                    Ok(())
                }
                Limit::Backoff { allowed, cap } => shared
                    .record_backoff(&counter.shared_name(), allowed, cap, FIRST_DELAY)
                    .await
                    .map(drop),
            };
            if let Err(e) = counted {
                tracing::debug!(error = %e, "login throttle: counted on this node only");
            }
        }
        if windows.is_empty() {
            return;
        }
        if let Err(e) = shared.record_windows(&windows).await {
            tracing::debug!(error = %e, "login throttle: counted on this node only");
        }
    }
}

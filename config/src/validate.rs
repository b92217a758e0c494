//! The ranges documented on the configuration's fields, checked once after
//! every layer is applied ([`Config::validate`]).

use super::{Config, ConfigError, Profile, VenueKind};

impl Config {
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
        self.validate_venues()?;
        at_least(
            "api.backplane_stream_len",
            self.api.backplane_stream_len,
            1,
            " entries",
        )?;
        at_least(
            "api.order_sync_backlog_max",
            self.api.order_sync_backlog_max,
            1,
            " events",
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
        let api = &self.api;
        at_least("api.secrets_ttl_ms", api.secrets_ttl_ms, 100, " ms")?;
        // The value of a secret is never quoted, not even a bad reference.
        if let Err((setting, reason)) = api::secrets::check_references(api) {
            return Err(ConfigError::Invalid {
                key: setting,
                value: "<redacted>".into(),
                reason,
            });
        }
        let adapters = [
            (
                "api.banxa_api_url",
                &api.banxa_api_url,
                vec![
                    (api.banxa_api_key.is_none(), "api.banxa_api_key"),
                    (
                        api.banxa_wallet_address.is_empty(),
                        "api.banxa_wallet_address",
                    ),
                    // Banxa's API secret: without it a generated one would
                    // sign every request, and Banxa would refuse them all.
                    (
                        api.banxa_webhook_secret.is_none(),
                        "api.banxa_webhook_secret",
                    ),
                ],
            ),
            (
                "api.bcb_api_url",
                &api.bcb_api_url,
                vec![
                    (api.bcb_client_id.is_empty(), "api.bcb_client_id"),
                    (api.bcb_client_secret.is_none(), "api.bcb_client_secret"),
                    (api.bcb_webhook_secret.is_none(), "api.bcb_webhook_secret"),
                ],
            ),
            (
                "api.stripe_api_url",
                &api.stripe_api_url,
                vec![
                    (api.stripe_api_key.is_none(), "api.stripe_api_key"),
                    // Real Stripe signs with the endpoint's secret: a
                    // generated one would refuse every event.
                    (
                        api.stripe_webhook_secret.is_none(),
                        "api.stripe_webhook_secret",
                    ),
                ],
            ),
        ];
        // The providers' endpoints carry keys and money: TLS in production.
        for (key, url) in [
            ("api.banxa_api_url", &api.banxa_api_url),
            ("api.stripe_api_url", &api.stripe_api_url),
            ("api.bcb_api_url", &api.bcb_api_url),
            ("api.bcb_auth_url", &api.bcb_auth_url),
            ("api.fireblocks_api_url", &api.fireblocks_api_url),
            ("api.fireblocks_jwks_url", &api.fireblocks_jwks_url),
            ("api.sumsub_api_url", &api.sumsub_api_url),
        ] {
            let plain = !url.is_empty() && !url.starts_with("https://");
            if plain && self.profile == Profile::Production {
                return Err(ConfigError::Invalid {
                    key,
                    value: url.clone(),
                    reason: "must be an https URL in production".into(),
                });
            }
        }
        let fireblocks = &api.fireblocks_api_url;
        if fireblocks.trim_end_matches('/').ends_with("/v1") {
            return Err(ConfigError::Invalid {
                key: "api.fireblocks_api_url",
                value: fireblocks.clone(),
                reason: "the base URL, without /v1 (e.g. https://api.fireblocks.io)".into(),
            });
        }
        let ids = &api.fireblocks_asset_ids;
        let well_formed = |pair: &str| {
            let symbol = |s: &str| {
                (1..=32).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            pair.split_once('=')
                .is_some_and(|(ours, theirs)| symbol(ours.trim()) && symbol(theirs.trim()))
        };
        if !ids.is_empty() && !ids.split(',').all(well_formed) {
            return Err(ConfigError::Invalid {
                key: "api.fireblocks_asset_ids",
                value: ids.clone(),
                reason: "a comma-separated list of OURS=FIREBLOCKS asset ids (BTC=BTC_TEST)".into(),
            });
        }
        let jwks = &api.fireblocks_jwks_url;
        if !jwks.is_empty()
            && (!(jwks.starts_with("https://") || jwks.starts_with("http://")) || jwks.len() > 512)
        {
            return Err(ConfigError::Invalid {
                key: "api.fireblocks_jwks_url",
                value: jwks.clone(),
                reason: "must be an http(s) URL".into(),
            });
        }
        for (url_key, url, needs) in adapters {
            if url.is_empty() {
                continue;
            }
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 512 {
                return Err(ConfigError::Invalid {
                    key: url_key,
                    value: url.clone(),
                    reason: "must be an http(s) URL".into(),
                });
            }
            if let Some((_, key)) = needs.into_iter().find(|(missing, _)| *missing) {
                return Err(ConfigError::Invalid {
                    key,
                    value: String::new(),
                    reason: format!("must be set with {url_key}"),
                });
            }
        }
        at_least("history.max_messages", history.max_messages, 1, "")?;
        at_least("history.max_age_ms", history.max_age_ms, 1, " ms")?;
        self.http.validate()?;
        let stand_ins = self.stand_ins();
        if self.profile == Profile::Production && !stand_ins.is_empty() {
            return Err(ConfigError::Invalid {
                key: "profile",
                value: "production".into(),
                reason: format!(
                    "{} part(s) are stand-ins: {}",
                    stand_ins.len(),
                    stand_ins.join("; ")
                ),
            });
        }
        Ok(())
    }
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

impl Config {
    /// `[[venues]]`: at most [`crate::MAX_VENUES`], each named, reachable
    /// by URL, with one token, sane timeouts; not together with a
    /// `graphql` `[venue]`. Pairs and funds are checked against what the
    /// venues list when they are connected.
    fn validate_venues(&self) -> Result<(), ConfigError> {
        let invalid = |value: String, reason: &str| ConfigError::Invalid {
            key: "venues",
            value,
            reason: reason.into(),
        };
        if self.venues.is_empty() {
            return Ok(());
        }
        if self.venue.kind == VenueKind::Graphql {
            return Err(invalid(
                "[venue] kind = \"graphql\"".into(),
                "use either one [venue] or a list of [[venues]], not both",
            ));
        }
        if self.venues.len() > crate::MAX_VENUES {
            return Err(invalid(
                self.venues.len().to_string(),
                &format!("at most {} venues", crate::MAX_VENUES),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for v in &self.venues {
            let named = |what: &str| format!("{} ({what})", v.name);
            let name_ok = (1..=32).contains(&v.name.len())
                && v.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return Err(invalid(
                    v.name.clone(),
                    "a venue's name is 1 to 32 lowercase letters, digits or '-'",
                ));
            }
            if !names.insert(&v.name) {
                return Err(invalid(v.name.clone(), "two venues have this name"));
            }
            let url_ok = (v.endpoint.starts_with("http://") || v.endpoint.starts_with("https://"))
                && v.endpoint.len() <= 512;
            if !url_ok {
                return Err(invalid(
                    named(&v.endpoint),
                    "endpoint must be an http:// or https:// URL",
                ));
            }
            if self.profile == Profile::Production && !v.endpoint.starts_with("https://") {
                return Err(invalid(
                    named(&v.endpoint),
                    "endpoint must be an https URL in production",
                ));
            }
            let token = v.token.as_ref().is_some_and(|t| !t.expose().is_empty());
            if token == v.token_file.is_some() {
                return Err(invalid(
                    named("token"),
                    "give exactly one of token and token_file",
                ));
            }
            if v.token
                .as_ref()
                .is_some_and(|t| t.expose().starts_with("aws-sm:"))
            {
                return Err(invalid(
                    named("token"),
                    "a venue token is read at start only: give it, or a token_file, not a Secrets Manager reference",
                ));
            }
            if v.request_timeout_ms >= self.api.upstream_timeout_ms {
                return Err(invalid(
                    named("request_timeout_ms"),
                    "must be below api.upstream_timeout_ms, so that a venue's own timeout answers first",
                ));
            }
            if v.request_timeout_ms == 0
                || v.backoff_min_ms == 0
                || v.backoff_max_ms < v.backoff_min_ms
            {
                return Err(invalid(
                    named("timeouts"),
                    "request_timeout_ms and backoff_min_ms at least 1, backoff_max_ms at least backoff_min_ms",
                ));
            }
            if v.pairs.len() > 1024 || v.funds.len() > 1024 {
                return Err(invalid(
                    named("pairs"),
                    "at most 1024 pairs and 1024 funded assets",
                ));
            }
        }
        Ok(())
    }
}

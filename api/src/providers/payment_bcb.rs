//! BCB Group as the payment provider of `bcb` deposits, through its API
//! (docs/API.md, "Routes" and "Webhooks"; selected by `bcb_api_url`).
//!
//! A deposit is a bank transfer to the exchange's BCB account in the
//! deposit's currency (`GET /v3/accounts`: its IBAN, BIC and holder name
//! are the deposit's instructions) quoting a reference made for it
//! (`NAX` and 32 hex digits, within SEPA's 35 characters), which is the
//! deposit's provider reference: BCB's transaction notification quoting it
//! credits the deposit ([`crate::webhooks::bcb`]). Nothing is created at
//! BCB for a deposit.
//!
//! Every call carries `Authorization: Bearer {token}`, a token from BCB's
//! OAuth 2.0 client-credentials endpoint (`POST {bcb_auth_url}/oauth/token`
//! `{client_id, client_secret}`), kept until a minute before it expires
//! and fetched again after a 401.
//!
//! Payouts are not built: BCB's Authorise Payment needs the beneficiary's
//! name and, outside the UK, address, bank and routing details that the
//! withdrawal request does not collect; a payout asked of this adapter is
//! refused at once (the funds go back). Answers are read through
//! [`super::answer`], bounded before parsing.

use super::answer;
use super::payment::{
    BankInstructions, DepositStart, NextStep, PaymentOrder, PaymentProvider, ProviderError,
};
use super::{ProviderContext, SetupError};
use crate::secret::Secret;
use crate::secrets::LiveSecret;
use async_trait::async_trait;
use inbound::JsonBounds;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds of an answer of BCB's, checked before it is parsed.
pub const ANSWER_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 16,
    max_elements: 20_000,
};
/// A token is fetched again this long before BCB says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The BCB adapter for `ctx` (the `bcb` fiat provider only).
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn PaymentProvider>, SetupError> {
    let config = ctx.config;
    let missing = |setting: &'static str| SetupError::Missing {
        setting,
        because: "api.bcb_api_url is set",
    };
    let client_id = config.bcb_client_id.clone();
    if client_id.is_empty() {
        return Err(missing("bcb_client_id"));
    }
    let client_secret = ctx
        .secrets
        .setting(config.bcb_client_secret.as_ref())
        .ok_or(missing("bcb_client_secret"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.upstream_timeout_ms))
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    Ok(Arc::new(BcbPayments {
        http,
        api: config.bcb_api_url.trim_end_matches('/').to_owned(),
        auth: config.bcb_auth_url.trim_end_matches('/').to_owned(),
        client_id,
        client_secret,
        token: tokio::sync::Mutex::new(None),
    }))
}

/// BCB Group's API.
pub struct BcbPayments {
    http: reqwest::Client,
    api: String,
    auth: String,
    client_id: String,
    /// Read at each token fetch: rotated without a restart.
    client_secret: LiveSecret,
    /// The bearer token, when to fetch another, and the version of the
    /// client secret it was fetched with (a rotated secret fetches anew).
    token: tokio::sync::Mutex<Option<(Secret, Instant, u64)>>,
}

/// The instructions of a deposit in `currency` to the account of BCB's
/// `accounts` answer in that currency, quoting `reference`.
pub fn instructions(
    accounts: &Value,
    currency: &str,
    reference: &str,
) -> Result<BankInstructions, ProviderError> {
    let account = accounts
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a.get("ccy").and_then(Value::as_str) == Some(currency))
        .ok_or_else(|| ProviderError::Rejected(format!("no BCB account in {currency}")))?;
    let text = |field: &str| answer::text_at(account, &format!("/{field}"));
    Ok(BankInstructions {
        bank_name: text("host_name").unwrap_or_else(|| "BCB Payments Ltd".to_owned()),
        account_name: text("node_name")
            .ok_or_else(|| ProviderError::Unavailable("BCB account without node_name".into()))?,
        iban: text("iban")
            .ok_or_else(|| ProviderError::Unavailable("BCB account without iban".into()))?,
        bic: text("bic").unwrap_or_default(),
        reference: reference.to_owned(),
    })
}

/// A new deposit reference: `NAX` and 32 uppercase hex digits.
pub fn new_reference() -> String {
    format!("NAX{}", uuid::Uuid::new_v4().simple()).to_ascii_uppercase()
}

impl BcbPayments {
    /// A valid bearer token, fetched when there is none, it is old or the
    /// client secret has changed since.
    async fn bearer(&self, fresh: bool) -> Result<Secret, ProviderError> {
        let mut held = self.token.lock().await;
        let (version, client_secret) = self.client_secret.versioned();
        if let Some((token, until, made_with)) = held.as_ref() {
            if !fresh && Instant::now() < *until && *made_with == version {
                return Ok(token.clone());
            }
        }
        let body = json!({"client_id": self.client_id, "client_secret": client_secret.expose()});
        let response = self
            .http
            .post(format!("{}/oauth/token", self.auth))
            .json(&body)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("bcb token: no answer: {e}")))?;
        let (status, answer) = answer::read(response, &ANSWER_BOUNDS)
            .await
            .map_err(ProviderError::Unavailable)?;
        if !(200..300).contains(&status) {
            if matches!(status, 400 | 401 | 403) {
                tracing::error!(status, "bcb refused our client credentials; check api.bcb_client_id and api.bcb_client_secret");
            }
            return Err(ProviderError::Unavailable(format!(
                "bcb token: status {status}"
            )));
        }
        let token = answer::text_at(&answer, "/access_token").ok_or_else(|| {
            ProviderError::Unavailable("bcb token answer without access_token".into())
        })?;
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        let until = Instant::now() + Duration::from_secs(lifetime).saturating_sub(TOKEN_MARGIN);
        let token = Secret::new(token);
        *held = Some((token.clone(), until, version));
        Ok(token)
    }

    /// A GET of `path`, with a fresh token once after a 401.
    async fn get(&self, path: &str) -> Result<(u16, Value), ProviderError> {
        let mut fresh = false;
        loop {
            let token = self.bearer(fresh).await?;
            let response = self
                .http
                .get(format!("{}{path}", self.api))
                .bearer_auth(token.expose())
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(format!("bcb: no answer: {e}")))?;
            let (status, answer) = answer::read(response, &ANSWER_BOUNDS)
                .await
                .map_err(ProviderError::Unavailable)?;
            if status == 401 && !fresh {
                fresh = true;
                continue;
            }
            return Ok((status, answer));
        }
    }
}

#[async_trait]
impl PaymentProvider for BcbPayments {
    async fn start_deposit(&self, order: &PaymentOrder) -> Result<DepositStart, ProviderError> {
        let (status, accounts) = self.get("/v3/accounts").await?;
        if !(200..300).contains(&status) {
            let message = answer::text_at(&accounts, "/message").unwrap_or_default();
            return Err(ProviderError::Unavailable(format!(
                "bcb accounts: {status} {message}"
            )));
        }
        let reference = new_reference();
        Ok(DepositStart {
            next_step: NextStep::Instructions(instructions(
                &accounts,
                &order.currency,
                &reference,
            )?),
            provider_ref: reference,
        })
    }

    async fn start_payout(
        &self,
        _order: &PaymentOrder,
        _destination: &str,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::Rejected(
            "BCB payouts need beneficiary details the withdrawal does not collect: not built"
                .to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_the_account_in_the_currency_and_the_reference() {
        let accounts = json!([
            {"id": 1, "ccy": "GBP", "host_name": "BCB Payments", "node_name": "Exchange Ltd",
             "iban": "GB33BUKB20201555555555", "bic": "BUKBGB22"},
            {"id": 2, "ccy": "EUR", "node_name": "Exchange Ltd", "iban": "GB07CLRB04032500000002"},
        ]);
        let eur = instructions(&accounts, "EUR", "NAXABC").unwrap();
        assert_eq!(eur.iban, "GB07CLRB04032500000002");
        assert_eq!(eur.reference, "NAXABC");
        assert_eq!(eur.bank_name, "BCB Payments Ltd");
        assert!(matches!(
            instructions(&accounts, "USD", "NAXABC"),
            Err(ProviderError::Rejected(_))
        ));
        let r = new_reference();
        assert_eq!(r.len(), 35);
        assert!(r.starts_with("NAX") && r.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(r, r.to_ascii_uppercase());
    }
}

//! Before the orders flow: every user is registered, logged in, verified
//! and funded over the REST API, as a real client would do it
//! (`POST /auth/register`, `POST /auth/login`, `POST /users/kyc-documents`),
//! then waits until `GET /users/kyc-status` says `VERIFIED`, deposits
//! (`POST /fiat/deposit`, which needs verified KYC) and waits until
//! `GET /wallets/balances` shows the deposit (the sandbox providers
//! confirm after `[api] kyc_verify_delay_ms` and `fiat_confirm_delay_ms`).
//!
//! Requests are made a few users at a time (password hashing is the hub's
//! most expensive request); the waits for the providers come after, for
//! more users at a time, so they overlap instead of adding up. A 429 is
//! waited out (`Retry-After`); any other unexpected answer stops the run
//! with the step and the hub's error code, since a run with half its users
//! is not the run asked for.

use super::rest::{Answer, RestClient};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

/// Users whose requests are made at the same time.
const CONCURRENT_SETUPS: usize = 4;
/// Users waited for (KYC decision, deposit credit) at the same time.
const CONCURRENT_WAITS: usize = 16;
/// Pause between two status polls of one user.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// What every user deposits (USD, within the API's per-request limit).
pub const DEPOSIT_USD: &str = "100000.00";
/// The KYC document sent: base64 of "loadtest passport" (the sandbox
/// provider verifies anything that does not start with `REJECT`).
const KYC_DOCUMENT_BASE64: &str = "bG9hZHRlc3QgcGFzc3BvcnQ=";

/// A user ready to trade: verified and funded.
#[derive(Debug, Clone)]
pub struct Trader {
    pub index: usize,
    /// Bearer access token (valid 15 minutes, longer than any run).
    pub token: String,
}

/// Why a user could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("user {user}: {step}: {what}")]
    Step {
        user: usize,
        step: &'static str,
        what: String,
    },
    #[error("user setup did not finish within --setup-timeout ({0} s)")]
    Timeout(u64),
}

/// Names of one run's users: unique per run (`tag`), so runs against the
/// same hub data never collide.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub tag: String,
}

impl Accounts {
    fn email(&self, user: usize) -> String {
        format!("lt-{}-{user}@loadtest.example", self.tag)
    }

    /// Meets docs/API.md's policy: 12+ characters, upper, lower, digit, symbol.
    fn password(&self) -> String {
        format!("Load-test-{}-9!", self.tag)
    }
}

/// Sets up users `0..users`; fails on the first user that cannot be, or
/// when `timeout` passes.
pub async fn onboard(
    client: &RestClient,
    accounts: &Accounts,
    users: u32,
    timeout: Duration,
) -> Result<Vec<Trader>, SetupError> {
    let deadline = Instant::now() + timeout;
    let setups = async {
        let mut submitted = stream::iter(0..users as usize)
            .map(|user| submit(client, accounts, user, deadline))
            .buffer_unordered(CONCURRENT_SETUPS)
            .try_collect::<Vec<Trader>>()
            .await?;
        submitted.sort_by_key(|t| t.index);
        stream::iter(submitted)
            .map(|trader| wait_until_ready(client, accounts, trader, deadline))
            .buffered(CONCURRENT_WAITS)
            .try_collect::<Vec<Trader>>()
            .await
    };
    tokio::time::timeout_at(deadline, setups)
        .await
        .map_err(|_| SetupError::Timeout(timeout.as_secs()))?
}

/// Registers and logs in user `user` and submits its KYC document.
async fn submit(
    client: &RestClient,
    accounts: &Accounts,
    user: usize,
    deadline: Instant,
) -> Result<Trader, SetupError> {
    let step = |step: &'static str| Step {
        client,
        user,
        step,
        deadline,
    };
    let credentials = json!({"email": accounts.email(user), "password": accounts.password()});
    step("POST /auth/register")
        .expect(201, |c| c.post("/auth/register", None, &credentials))
        .await?;
    let login = step("POST /auth/login")
        .expect(200, |c| c.post("/auth/login", None, &credentials))
        .await?;
    let token = login
        .text("access_token")
        .ok_or_else(|| step("POST /auth/login").fail("no access_token in the answer".into()))?
        .to_owned();
    let auth = Some(token.as_str());
    let document = json!({"document_type": "passport", "content_base64": KYC_DOCUMENT_BASE64});
    step("POST /users/kyc-documents")
        .expect(202, |c| c.post("/users/kyc-documents", auth, &document))
        .await?;
    Ok(Trader { index: user, token })
}

/// Polls until the user's KYC is `VERIFIED`, opens its deposit, then polls
/// until the deposit is credited.
async fn wait_until_ready(
    client: &RestClient,
    accounts: &Accounts,
    trader: Trader,
    deadline: Instant,
) -> Result<Trader, SetupError> {
    let step = |step: &'static str| Step {
        client,
        user: trader.index,
        step,
        deadline,
    };
    let auth = Some(trader.token.as_str());
    let kyc = step("GET /users/kyc-status");
    loop {
        let answer = kyc
            .expect(200, |c| c.get("/users/kyc-status", auth))
            .await?;
        match answer.text("kyc_status") {
            Some("VERIFIED") => break,
            Some("NONE" | "PENDING") => tokio::time::sleep(POLL_EVERY).await,
            other => return Err(kyc.fail(format!("KYC status {other:?}"))),
        }
    }
    let deposit = json!({
        "currency": "USD",
        "amount": DEPOSIT_USD,
        "provider": "stripe",
        "idempotency_key": format!("lt-{}-{}-fund", accounts.tag, trader.index),
    });
    step("POST /fiat/deposit")
        .expect(201, |c| c.post("/fiat/deposit", auth, &deposit))
        .await?;
    let balances = step("GET /wallets/balances");
    loop {
        let answer = balances
            .expect(200, |c| c.get("/wallets/balances", auth))
            .await?;
        if usd_available(&answer) {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    Ok(trader)
}

/// Whether a `GET /wallets/balances` answer shows USD available.
fn usd_available(answer: &Answer) -> bool {
    answer.body.as_array().is_some_and(|assets| {
        assets.iter().any(|a| {
            a.get("asset").and_then(|v| v.as_str()) == Some("USD")
                && a.get("available")
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| s.bytes().any(|b| (b'1'..=b'9').contains(&b)))
        })
    })
}

/// One setup step of one user.
struct Step<'a> {
    client: &'a RestClient,
    user: usize,
    step: &'static str,
    deadline: Instant,
}

impl Step<'_> {
    fn fail(&self, what: String) -> SetupError {
        SetupError::Step {
            user: self.user,
            step: self.step,
            what,
        }
    }

    /// Calls until the answer is not 429 (waiting `Retry-After`, at most
    /// until the deadline) and requires status `want`.
    async fn expect<'c, F, Fut>(&'c self, want: u16, call: F) -> Result<Answer, SetupError>
    where
        F: Fn(&'c RestClient) -> Fut,
        Fut: std::future::Future<Output = Result<Answer, super::rest::NoAnswer>>,
    {
        loop {
            let answer = call(self.client)
                .await
                .map_err(|e| self.fail(e.to_string()))?;
            if answer.status == want {
                return Ok(answer);
            }
            if answer.status != 429 {
                let hint = if answer.status == 404 && answer.error_code().is_none() {
                    " (does the hub serve the REST API of docs/API.md?)"
                } else {
                    ""
                };
                return Err(self.fail(format!("answered {}{hint}", answer.describe())));
            }
            let wait = Duration::from_secs(answer.retry_after.unwrap_or(1).max(1));
            if Instant::now() + wait > self.deadline {
                return Err(self.fail(format!("still rate limited: {}", answer.describe())));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn credentials_meet_the_policy() {
        let accounts = Accounts { tag: "1a2b".into() };
        let p = accounts.password();
        assert!(p.len() >= 12);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(|c| !c.is_ascii_alphanumeric()));
        assert_eq!(accounts.email(7), "lt-1a2b-7@loadtest.example");
    }

    #[test]
    fn balances_show_usd_once_credited() {
        let answer = |body: Value| Answer {
            status: 200,
            body,
            retry_after: None,
            elapsed: Duration::ZERO,
        };
        let zero =
            json!([{"asset": "USD", "available": "0.00000000", "locked": "0", "total": "0"}]);
        assert!(!usd_available(&answer(zero)));
        let funded = json!([{"asset": "BTC", "available": "1"}, {"asset": "USD", "available": "100000.00000000"}]);
        assert!(usd_available(&answer(funded)));
        assert!(!usd_available(&answer(
            json!([{"asset": "BTC", "available": "1"}])
        )));
    }
}

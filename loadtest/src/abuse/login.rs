//! Login abuse: register a few accounts, then loop `POST /auth/login`
//! with the right password (40 %), a wrong one (40 %) and unknown emails
//! (20 %), each request on a fresh connection from the next address of the
//! login block, so the hub's per-address and per-account throttles and
//! its password-hashing pool are all exercised.
//!
//! Expected answers (docs/API.md, `POST /auth/login`): 200 for the right
//! password, 401 for a wrong one or an unknown email, 429 for any of them
//! once a throttle applies; registration 201. Anything else is unexpected,
//! a 5xx also counts as a server error (a full hashing queue would be 503
//! `auth_busy`).

use super::net::{Block, Target};
use super::Tally;
use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Pause of a worker between two attempts: without it a worker answered
/// 429 at once would flood the hub with requests that cost it nothing.
const PAUSE: Duration = Duration::from_millis(25);
/// Longest wait for one answer (hashes queue behind each other).
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the login workers do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workers: u32,
    pub accounts: u32,
    /// Makes the run's emails unique.
    pub tag: String,
    pub seed: u64,
}

impl Plan {
    fn email(&self, account: u32) -> String {
        format!("abuse-{}-{account}@loadtest.example", self.tag)
    }

    /// Meets docs/API.md's policy: 12+ characters, upper, lower, digit, symbol.
    fn password(&self) -> String {
        format!("Abuse-test-{}-7!", self.tag)
    }
}

/// Registers the accounts, then runs the workers until dropped.
pub async fn run(target: Target, tally: Arc<Tally>, plan: Plan) {
    if plan.workers == 0 {
        return;
    }
    for account in 0..plan.accounts {
        let body = json!({"email": plan.email(account), "password": plan.password()});
        let source = target.source(Block::Login, account as usize);
        match post(&target, source, "/auth/register", &body).await {
            Ok(status) => tally.answer("login register", status, &[201]),
            Err(e) => tally.outcome("login register", &e, false),
        }
    }
    let plan = Arc::new(plan);
    join_all((0..plan.workers).map(|w| worker(&target, &tally, &plan, w))).await;
}

async fn worker(target: &Target, tally: &Tally, plan: &Plan, index: u32) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ (u64::from(index) << 32) ^ 0x10_6E);
    let wrong = format!("Wrong-pass-{}-7!", plan.tag);
    let mut address = index as usize;
    loop {
        let account = rng.gen_range(0..plan.accounts);
        let (kind, email, password) = match rng.gen_range(0..10) {
            0..=3 => ("login right", plan.email(account), plan.password()),
            4..=7 => ("login wrong", plan.email(account), wrong.clone()),
            _ => (
                "login unknown",
                format!("nobody-{}-{}@loadtest.example", plan.tag, rng.gen::<u16>()),
                plan.password(),
            ),
        };
        let expected: &[u16] = if kind == "login right" {
            &[200, 429]
        } else {
            &[401, 429]
        };
        let body = json!({"email": email, "password": password});
        let source = target.source(Block::Login, address);
        address += plan.workers as usize;
        let started = std::time::Instant::now();
        match post(target, source, "/auth/login", &body).await {
            Ok(status) => {
                tally.answer(kind, status, expected);
                // A refusal costs the hub nothing: time the answers it worked for.
                if status != 429 {
                    tally.time("login (200/401)", started.elapsed());
                }
            }
            Err(e) => tally.outcome(kind, &e, false),
        }
        tokio::time::sleep(PAUSE).await;
    }
}

async fn post(
    target: &Target,
    source: Option<std::net::IpAddr>,
    path: &str,
    body: &serde_json::Value,
) -> Result<u16, String> {
    let body = body.to_string();
    target
        .request(source, "POST", path, Some(&body), TIMEOUT)
        .await
        .map(|(status, _)| status)
}

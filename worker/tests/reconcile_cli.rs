//! `nax-worker reconcile correct|close`, the operator's entry point for
//! corrections (docs/RECONCILIATION.md, "Corrections"), as the binary
//! against the standalone venue (`nax-venue`'s server, in process) on
//! 127.0.0.1 with the embedded store: a credit and a debit change the venue
//! balance by exactly the amount and are recorded as `correction`
//! transactions and `reconcile.correction` events naming the reason and
//! the operator; a stuck deposit is closed as the provider says; without a
//! reason, with an empty one, or a debit beyond the balance, it refuses
//! and changes nothing.

use api::events::log::EventLog;
use api::money::movement::{Movement, MovementStatus};
use api::store::embedded::EmbeddedStore;
use api::store::{Store, TxKind, TxQuery, Write};
use feeds::Venue as _;
use sandbox_venue::{BearerToken, VenueServerConfig};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const TOKEN: &str = "reconcile-cli-venue-token";
const USER: &str = "u-cli";

fn worker(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nax-worker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NAX_DATA_DIR", dir)
        .env("NAX_VENUE", "graphql")
        .env("NAX_VENUE_ENDPOINT", endpoint)
        .env("NAX_VENUE_TOKEN", TOKEN)
        .env("NAX_LOG", "warn")
        .output()
        .expect("nax-worker runs")
}

fn correct(dir: &Path, endpoint: &str, amount: &str, reason: &str) -> Output {
    worker(
        dir,
        endpoint,
        &[
            "reconcile",
            "correct",
            "--user",
            USER,
            "--asset",
            "USD",
            "--amount",
            amount,
            "--reason",
            reason,
            "--operator",
            "ops@nax",
        ],
    )
}

async fn usd(venue: &feeds::shift::ShiftVenue) -> u64 {
    venue
        .balances(USER)
        .await
        .unwrap()
        .into_iter()
        .find(|(asset, _)| asset == "USD")
        .map(|(_, b)| b.total())
        .unwrap()
}

fn events(dir: &Path, event_type: &str) -> Vec<Value> {
    EventLog::read_all(&dir.join(EventLog::FILE))
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .map(|e| e.data)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_from_the_command_line_are_applied_audited_and_refused_without_a_reason() {
    let server = sandbox_venue::serve(VenueServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        BearerToken::new(TOKEN).unwrap(),
    ))
    .await
    .expect("venue starts");
    let endpoint = format!("http://{}/graphql", server.addr());
    let venue = feeds::shift::ShiftVenue::connect(feeds::shift::ShiftConfig::new(
        endpoint.clone(),
        feeds::shift::ShiftToken::new(TOKEN),
    ))
    .await
    .expect("connects");
    let dir = tempfile::tempdir().unwrap();

    // Refused: no reason (clap), an empty one (the library), a debit
    // beyond the balance (the venue); nothing changes.
    let out = worker(
        dir.path(),
        &endpoint,
        &[
            "reconcile",
            "correct",
            "--user",
            USER,
            "--asset",
            "USD",
            "--amount",
            "5",
            "--operator",
            "ops@nax",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
    let out = correct(dir.path(), &endpoint, "5", "  ");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a reason"),
        "{out:?}"
    );
    let out = correct(dir.path(), &endpoint, "-1", "debit what is not there");
    assert!(!out.status.success());
    assert_eq!(usd(&venue).await, 0);

    // A credit of 12.5, then a debit of 2.25: exact at the venue.
    let out = correct(
        dir.path(),
        &endpoint,
        "12.5",
        "venue credit of a deposit never made",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let credit: Value = serde_json::from_slice(&out.stdout).expect("the transaction as JSON");
    assert_eq!(credit["kind"], "correction", "{credit}");
    assert_eq!(credit["status"], "applied");
    assert_eq!(credit["detail"]["operator"], "ops@nax");
    assert_eq!(
        credit["detail"]["reason"],
        "venue credit of a deposit never made"
    );
    assert_eq!(usd(&venue).await, 1_250_000_000);
    let out = correct(dir.path(), &endpoint, "-2.25", "double credit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(usd(&venue).await, 1_025_000_000);

    // A deposit stuck in `processing`, closed as the provider says.
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let movement = Movement {
        asset: "USD".into(),
        amount: "7.00".into(),
        provider: Some("stripe".into()),
        provider_ref: Some("pi_cli".into()),
        ..Movement::default()
    };
    let stuck = movement.new_transaction(
        api::money::movement::new_transaction_id(),
        USER,
        TxKind::FiatDeposit,
        MovementStatus::Processing,
    );
    store
        .commit(vec![Write::CreateTransaction(stuck.clone())])
        .await
        .unwrap();
    drop(store);
    let out = worker(
        dir.path(),
        &endpoint,
        &[
            "reconcile",
            "close",
            "--user",
            USER,
            "--transaction",
            &stuck.transaction_id,
            "--outcome",
            "completed",
            "--reason",
            "stripe says paid",
            "--operator",
            "ops@nax",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let closed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(closed["status"], "completed", "{closed}");
    assert_eq!(
        usd(&venue).await,
        1_025_000_000,
        "a close makes no venue call"
    );

    // In the store and in the audit trail (the event log here).
    let store = EmbeddedStore::open(dir.path()).expect("store");
    let query = TxQuery {
        kinds: vec![TxKind::Correction],
        limit: 100,
        ..TxQuery::default()
    };
    let corrections = store.transactions(USER, &query).await.unwrap().items;
    let amounts: Vec<_> = corrections
        .iter()
        .map(|t| t.detail.value().unwrap()["amount"].clone())
        .collect();
    assert_eq!(amounts.len(), 2, "{amounts:?}");
    let audited = events(dir.path(), "reconcile.correction");
    assert_eq!(audited.len(), 3, "{audited:?}");
    assert!(audited.iter().all(|e| e["operator"] == "ops@nax"));
    assert_eq!(
        audited
            .iter()
            .filter(|e| e["action"] == "venue_change")
            .count(),
        2
    );
    let close = audited.iter().find(|e| e["action"] == "close").unwrap();
    assert_eq!(close["transaction_id"], stuck.transaction_id.as_str());
    assert_eq!(close["reason"], "stripe says paid");
    server.stop().await.unwrap();
}

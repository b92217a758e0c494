//! `worker::reconcile` on a real API (embedded store, or DynamoDB on the
//! shared moto; NDJSON event log, in-process sandbox venue and sandbox
//! providers): a deposit left in
//! `processing` past the age is found, its provider asked, and reported
//! (not settled); a venue balance made apart from the records on purpose
//! is reported with the exact amount; an operator's correction (and the
//! closing of the stuck deposit) makes the report clean again, and is in
//! the store and the events.

use api::events::log::EventLog;
use api::events::{Event, EventPublisher};
use api::money::movement::{Movement, MovementStatus, Outcome};
use api::providers::payment::PaymentOrder;
use api::providers::RemoteStatus;
use api::store::dynamo::{DynamoConfig, DynamoStore};
use api::store::embedded::EmbeddedStore;
use api::store::{Store, TxKind, Write};
use api::{Api, ApiConfig, ApiParts};
use feeds::{SandboxConfig, SandboxVenue, Venue};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::reconcile::{
    apply_correction, close_transaction, run_once, BalanceDifference, ProviderAnswer,
    ReconcileContext, ReconcileSettings,
};

struct Running {
    api: Api,
    venue: SandboxVenue,
    dir: tempfile::TempDir,
    ctx: ReconcileContext,
}

/// An API with no HTTP server: sandbox webhooks go to a closed port, so
/// nothing settles a deposit behind the test's back.
async fn start() -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    start_on(dir, store).await
}

/// The same on DynamoDB tables of the test's own on the shared moto.
async fn start_on_dynamodb() -> Running {
    let store = DynamoStore::new(&DynamoConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        table_prefix: format!("r{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(api::aws::StaticCredentials::test()),
        ..DynamoConfig::default()
    })
    .await;
    store.ensure_tables().await.expect("tables on moto");
    start_on(tempfile::tempdir().expect("temp dir"), Arc::new(store)).await
}

async fn start_on(dir: tempfile::TempDir, store: Arc<dyn Store>) -> Running {
    let venue = SandboxVenue::start(SandboxConfig {
        events_per_sec: 0,
        ..SandboxConfig::default()
    })
    .expect("sandbox venue");
    let log: Arc<dyn EventPublisher> = Arc::new(EventLog::open(dir.path()).expect("event log"));
    let api = Api::start(ApiParts {
        config: ApiConfig {
            fiat_confirm_delay_ms: 50,
            ..ApiConfig::default()
        },
        data_dir: dir.path().to_path_buf(),
        store,
        publisher: log,
        venue: Arc::new(venue.clone()) as Arc<dyn Venue>,
        self_url: format!("http://127.0.0.1:{}", testkit::free_port()),
    })
    .await
    .expect("api start");
    let ctx = ReconcileContext::from_api(&api);
    Running {
        api,
        venue,
        dir,
        ctx,
    }
}

impl Running {
    /// Polls the event log (the relay drains the outbox into it) until an
    /// event of `event_type` matching `pick` is there (30 s).
    async fn event(&self, event_type: &str, pick: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let path = self.dir.path().join(EventLog::FILE);
            let events = EventLog::read_all(&path).unwrap_or_default();
            if let Some(e) = events
                .into_iter()
                .find(|e| e.event_type == event_type && pick(e))
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {event_type} event in the log within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.api.stop().await;
        self.venue.stop().await;
    }
}

fn settings() -> ReconcileSettings {
    ReconcileSettings {
        stuck_after: Duration::from_secs(3600),
        ..ReconcileSettings::default()
    }
}

fn movement(asset: &str, amount: &str, provider: &str, reference: &str) -> Movement {
    Movement {
        asset: asset.to_owned(),
        amount: amount.to_owned(),
        provider: Some(provider.to_owned()),
        provider_ref: Some(reference.to_owned()),
        ..Movement::default()
    }
}

fn differences_of<'a>(found: &'a [BalanceDifference], user: &str) -> Vec<&'a BalanceDifference> {
    found.iter().filter(|d| d.user_id == user).collect()
}

#[tokio::test]
async fn a_deposit_left_processing_is_reported_not_settled_then_corrected() {
    stuck_deposit_then_correction(start().await).await;
}

#[tokio::test]
async fn a_deposit_left_processing_and_its_correction_on_dynamodb() {
    stuck_deposit_then_correction(start_on_dynamodb().await).await;
}

async fn stuck_deposit_then_correction(run: Running) {
    let store = run.ctx.ledger.store.clone();
    let user = "u-stuck";
    // A fiat deposit the provider took (it reports it paid after 50 ms)...
    let (_, stripe) = run
        .ctx
        .payments
        .iter()
        .find(|(p, _)| p.as_str() == "stripe")
        .expect("stripe sandbox");
    let tx_id = api::money::movement::new_transaction_id();
    let started = stripe
        .start_deposit(&PaymentOrder {
            transaction_id: tx_id.clone(),
            user_id: user.to_owned(),
            currency: "USD".to_owned(),
            amount: "25.00".to_owned(),
        })
        .await
        .expect("start deposit");
    // ...left in `processing` two hours ago (its venue credit never made).
    let m = movement("USD", "25.00", "stripe", &started.provider_ref);
    let mut stuck = m.new_transaction(
        tx_id.clone(),
        user,
        TxKind::FiatDeposit,
        MovementStatus::Processing,
    );
    stuck.created_at -= chrono::TimeDelta::hours(2);
    // A younger one (not stuck yet) and an old crypto withdrawal custody
    // does not know.
    let young = m.new_transaction(
        api::money::movement::new_transaction_id(),
        user,
        TxKind::FiatDeposit,
        MovementStatus::Processing,
    );
    let mut unknown = movement("BTC", "0.1", "fireblocks", "fb-unknown").new_transaction(
        api::money::movement::new_transaction_id(),
        "u-other",
        TxKind::Withdrawal,
        MovementStatus::Pending,
    );
    unknown.created_at -= chrono::TimeDelta::hours(3);
    store
        .commit(vec![
            Write::CreateTransaction(stuck.clone()),
            Write::CreateTransaction(young.clone()),
            Write::CreateTransaction(unknown.clone()),
        ])
        .await
        .expect("commit");
    let deadline = Instant::now() + Duration::from_secs(30);
    while stripe.payment_status(&started.provider_ref).await != Ok(RemoteStatus::Completed) {
        assert!(Instant::now() < deadline, "the sandbox never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let report = run_once(&run.ctx, &settings()).await.expect("run");
    let ids: Vec<&str> = report
        .stuck
        .iter()
        .map(|s| s.transaction_id.as_str())
        .collect();
    assert_eq!(ids, [unknown.transaction_id.as_str(), tx_id.as_str()]);
    assert_eq!(
        report.stuck[0].provider_says,
        ProviderAnswer::Status(RemoteStatus::NotFound)
    );
    assert_eq!(
        report.stuck[1].provider_says,
        ProviderAnswer::Status(RemoteStatus::Completed)
    );
    assert_eq!(report.discrepancies, 1);
    let event = run
        .event("reconcile.discrepancy", |e| {
            e.data["transaction_id"] == tx_id.as_str()
        })
        .await;
    assert_eq!(event.data["provider_status"], "completed");
    assert_eq!(event.data["status"], "processing");
    assert_eq!(event.user_id.as_deref(), Some(user));
    // Not settled: still processing, nothing credited.
    let now = store.transaction(user, &tx_id).await.unwrap().unwrap();
    assert_eq!(now.status, "processing");
    let usd = |b: Vec<(String, feeds::venue::Balance)>| {
        b.into_iter().find(|(a, _)| a == "USD").unwrap().1.total()
    };
    assert_eq!(usd(run.venue.balances(user).await.unwrap()), 0);
    // The records owe both processing deposits: the venue is 50.00 short.
    let diffs = differences_of(&report.differences, user);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(
        (
            diffs[0].venue.as_str(),
            diffs[0].ledger.as_str(),
            diffs[0].difference.as_str()
        ),
        ("0.00000000", "50.00000000", "-50.00000000")
    );

    // The operator closes the stuck one as the provider says and credits
    // what is owed; the young one settles on its own (here: closed too).
    for id in [&tx_id, &young.transaction_id] {
        close_transaction(
            &run.ctx,
            user,
            id,
            Outcome::Completed,
            "stripe says paid",
            "ops@nax",
        )
        .await
        .expect("close");
    }
    let fix = apply_correction(
        &run.ctx,
        user,
        "USD",
        "50",
        "venue credit of two deposits never made",
        "ops@nax",
    )
    .await
    .expect("correction");
    assert_eq!(fix.status, "applied");
    assert_eq!(usd(run.venue.balances(user).await.unwrap()), 5_000_000_000);
    run.event("reconcile.correction", |e| {
        e.data["action"] == "close" && e.data["transaction_id"] == tx_id.as_str()
    })
    .await;
    let report = run_once(&run.ctx, &settings()).await.expect("run");
    assert_eq!(
        report
            .stuck
            .iter()
            .map(|s| s.transaction_id.as_str())
            .collect::<Vec<_>>(),
        [unknown.transaction_id.as_str()]
    );
    assert_eq!(report.discrepancies, 0);
    assert!(differences_of(&report.differences, user).is_empty());
    run.stop().await;
}

#[tokio::test]
async fn a_venue_difference_is_reported_exactly_and_a_correction_removes_it() {
    difference_then_correction(start().await).await;
}

#[tokio::test]
async fn a_venue_difference_and_its_correction_on_dynamodb() {
    difference_then_correction(start_on_dynamodb().await).await;
}

async fn difference_then_correction(run: Running) {
    let store = run.ctx.ledger.store.clone();
    let user = "u-diff";
    // 0.5 BTC deposited through the ledger's normal path.
    let m = movement("BTC", "0.5", "fireblocks", "fb-1");
    let tx = m.new_transaction(
        api::money::movement::new_transaction_id(),
        user,
        TxKind::Deposit,
        MovementStatus::Processing,
    );
    let done = api::money::settle::record_incoming(&run.ctx.ledger, tx, &m, Vec::new())
        .await
        .expect("deposit");
    assert_eq!(done.status, "completed");
    let report = run_once(&run.ctx, &settings()).await.expect("run");
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(report.users_checked, 1);

    // A credit that bypasses the ledger: 0.00012345 BTC.
    run.venue.credit(user, "BTC", 12_345).await.expect("credit");
    let report = run_once(&run.ctx, &settings()).await.expect("run");
    assert_eq!(
        report.differences,
        [BalanceDifference {
            user_id: user.to_owned(),
            asset: "BTC".to_owned(),
            venue: "0.50012345".to_owned(),
            ledger: "0.50000000".to_owned(),
            difference: "0.00012345".to_owned(),
        }]
    );
    let event = run.event("reconcile.difference", |_| true).await;
    assert_eq!(event.data["difference"], "0.00012345");
    assert_eq!(event.user_id.as_deref(), Some(user));

    // Refused corrections change nothing.
    for (amount, reason) in [("-0.000000001", "x"), ("-7", "x"), ("0", "x"), ("1", "")] {
        let refused = apply_correction(&run.ctx, user, "BTC", amount, reason, "ops@nax").await;
        assert!(refused.is_err(), "{amount} {reason:?} was applied");
    }
    let fix = apply_correction(
        &run.ctx,
        user,
        "BTC",
        "-0.00012345",
        "credited outside the ledger",
        "ops@nax",
    )
    .await
    .expect("correction");
    assert_eq!(fix.kind, TxKind::Correction);
    assert_eq!(fix.detail.value().unwrap()["amount"], "-0.00012345");
    let stored = store
        .transaction(user, &fix.transaction_id)
        .await
        .unwrap()
        .expect("correction stored");
    assert_eq!(stored.status, "applied");
    assert_eq!(stored.detail.value().unwrap()["operator"], "ops@nax");
    let event = run
        .event("reconcile.correction", |e| {
            e.data["transaction_id"] == fix.transaction_id.as_str()
        })
        .await;
    assert_eq!(event.data["amount"], "-0.00012345");
    assert_eq!(event.data["reason"], "credited outside the ledger");
    let corrections = store
        .transactions(
            user,
            &api::store::TxQuery {
                kinds: vec![TxKind::Correction],
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(corrections.items.len(), 1, "only the applied one");

    let report = run_once(&run.ctx, &settings()).await.expect("run");
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(report.stuck.is_empty());
    assert!(!report.truncated);
    // A scan that reaches its limit says so.
    let small = ReconcileSettings {
        scan_limit: 1,
        ..settings()
    };
    assert!(run_once(&run.ctx, &small).await.expect("run").truncated);
    run.stop().await;
}

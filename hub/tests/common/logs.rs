//! The log of the hubs that the integration tests run in process, checked
//! like the binary's ([`super::binary::check_log`]; docs/OPERATIONS.md,
//! "Logs"): [`capture`] (called by [`super::test_config`], so by every
//! in-process hub) installs, once per test process, a global subscriber
//! that writes the binary's JSON lines ([`hub::logging::layer`], with the
//! same wire-crate filter, [`hub::logging::allowed`]) at `debug` (or
//! `NAX_TEST_LOG`) into memory, and records the secrets of the test's
//! configuration: every `Secret` it holds (venue and HubSpot tokens, the
//! JWT key, webhook secrets, provider keys, a credentialed Redis URL), the
//! key files the hub writes under `<data_dir>/keys/`, and what the tests'
//! helpers know ([`forbid`]: the test users' emails, passwords and issued
//! access tokens).
//!
//! When the test process exits (nextest runs one test per process, so at
//! the end of the test) every captured line is parsed as JSON and searched
//! for those secrets, as text and in every decoded string value; a line
//! that is not a JSON object with `timestamp`, `level` and `target`, or
//! that holds a secret, makes the process exit with status 1, naming the
//! line's number, level, target and the secret's kind, never the secret.
//! [`check`] does the same at any point of a test. A test of traces
//! installs the binary's own subscriber with OTLP export through
//! [`traced`] instead, which writes into the same capture.

use hub::config::Config;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, Once, OnceLock};

/// What the captured log must never contain, and where the key files are.
#[derive(Default)]
struct Capture {
    /// Every byte the subscriber wrote, one JSON line per event.
    text: Vec<u8>,
    /// (kind, value): the kind names it in a report.
    secrets: Vec<(String, String)>,
    /// Data directories whose `keys/` files are secrets.
    data_dirs: Vec<PathBuf>,
}

fn state() -> &'static Mutex<Capture> {
    static STATE: OnceLock<Mutex<Capture>> = OnceLock::new();
    STATE.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, Capture> {
    state()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One event's bytes, appended to the capture whole when dropped (so lines
/// of concurrent events never interleave).
struct EventWriter(Vec<u8>);

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        lock().text.extend_from_slice(&self.0);
    }
}

static INSTALL: Once = Once::new();

/// The capture's level: `NAX_TEST_LOG`, else `debug`.
fn level() -> String {
    std::env::var("NAX_TEST_LOG").unwrap_or_else(|_| "debug".into())
}

/// Checks the capture when the process exits; called once, by whichever
/// of [`install`] and [`traced`] installed the subscriber.
fn check_at_exit_armed() {
    // SAFETY: `check_at_exit` is a plain function that neither unwinds
    // nor calls `exit`.
    unsafe { libc::atexit(check_at_exit) };
}

fn install() {
    INSTALL.call_once(|| {
        use tracing_subscriber::filter::{EnvFilter, FilterExt as _};
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::Layer as _;
        // The binary's filters: the level and `logging::logged`.
        let layer = hub::logging::layer(
            hub::logging::LogFormat::Json,
            || EventWriter(Vec::new()),
            false,
        )
        .with_filter(EnvFilter::new(level()).and(hub::logging::logged()));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other subscriber: a test of traces uses common::logs::traced");
        check_at_exit_armed();
    });
}

/// For a test of traces, before any hub starts: installs the binary's own
/// subscriber ([`hub::logging::init_to`]: JSON lines at the capture's
/// level, and the spans exported over OTLP to `endpoint` as `nax-hub`'s),
/// writing into the capture, so its log is checked like every other
/// in-process hub's.
pub fn traced(endpoint: &str) -> hub::logging::Telemetry {
    let mut telemetry = None;
    INSTALL.call_once(|| {
        telemetry = Some(
            hub::logging::init_to(
                Some(&level()),
                hub::logging::LogFormat::Json,
                Some(endpoint),
                "nax-hub",
                || EventWriter(Vec::new()),
                false,
            )
            .expect("the test's subscriber"),
        );
        check_at_exit_armed();
    });
    telemetry.expect("common::logs::traced runs once, before any hub starts")
}

/// Installs the capture (once per process) and records `config`'s secrets
/// and data directory.
pub fn capture(config: &Config) {
    install();
    let api = &config.api;
    let named = [
        ("venue token", config.venue.token.as_ref()),
        ("HubSpot token", config.worker.hubspot_token.as_ref()),
        ("JWT key", api.jwt_secret.as_ref()),
        ("Stripe webhook secret", api.stripe_webhook_secret.as_ref()),
        ("Banxa webhook secret", api.banxa_webhook_secret.as_ref()),
        ("BCB webhook secret", api.bcb_webhook_secret.as_ref()),
        ("Sumsub webhook secret", api.sumsub_webhook_secret.as_ref()),
        ("Sumsub app token", api.sumsub_app_token.as_ref()),
        ("Sumsub secret key", api.sumsub_secret_key.as_ref()),
        ("Banxa API key", api.banxa_api_key.as_ref()),
        ("BCB client secret", api.bcb_client_secret.as_ref()),
        ("Stripe API key", api.stripe_api_key.as_ref()),
        ("Fireblocks API key", api.fireblocks_api_key.as_ref()),
        ("Fireblocks API secret", api.fireblocks_api_secret.as_ref()),
        ("Redis URL", api.redis_url.as_ref()),
        ("AWS secret access key", api.aws_secret_access_key.as_ref()),
    ];
    let venues = config
        .venues
        .iter()
        .map(|v| ("venue token", v.token.as_ref()));
    let all: Vec<_> = named.into_iter().chain(venues).collect();
    // Every secret the config prints redacted must be one listed above: a
    // new secret setting shows up here, not as an unchecked value.
    let printed = serde_json::to_string(config).expect("the config serializes");
    assert_eq!(
        all.iter().filter(|(_, s)| s.is_some()).count(),
        printed.matches("\"<redacted>\"").count(),
        "a secret setting of the config is missing from common::logs::capture"
    );
    let mut state = lock();
    for (kind, secret) in all {
        let Some(value) = secret.map(|s| s.expose()) else {
            continue;
        };
        // A reference names where the secret is, and a Redis URL
        // without a password holds none.
        let reference = value.starts_with("aws-sm:");
        let plain_url = kind == "Redis URL" && !value.contains('@');
        if !reference && !plain_url {
            state.secrets.push((kind.to_owned(), value.to_owned()));
        }
    }
    state.data_dirs.push(config.data_dir.clone());
}

/// Adds `value` (what a test's helper knows: a user's email, password or
/// access token) to what the log must not contain.
pub fn forbid(kind: &str, value: &str) {
    lock().secrets.push((kind.to_owned(), value.to_owned()));
}

/// Reads the key files under each recorded data directory's `keys/` (the
/// JWT key, the data key, webhook keys): each line of 16 or more
/// characters, PEM armour aside.
fn key_files(data_dirs: &[PathBuf]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in data_dirs {
        let Ok(entries) = std::fs::read_dir(dir.join("keys")) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let kind = format!("key file {}", entry.file_name().to_string_lossy());
            for line in text.lines().map(str::trim) {
                if line.len() >= 16 && !line.starts_with("-----") {
                    out.push((kind.clone(), line.to_owned()));
                }
            }
        }
    }
    out
}

/// Remembers the key files of the recorded data directories now (a test
/// may remove its directory before the process exits).
pub fn remember_key_files() {
    let mut state = lock();
    let found = key_files(&state.data_dirs);
    state.secrets.extend(found);
}

/// What is wrong with the log `text` given `secrets` ((kind, value)
/// pairs): one entry per line that is not a JSON object with string
/// `timestamp`, `level` and `target`, or that holds a secret (whole, or
/// the last 24 characters of a longer one) in its text or in any string
/// value once decoded. Secrets shorter than 8 characters are not
/// searched (they would match by chance). Reports never quote a secret.
pub fn violations(text: &str, secrets: &[(String, String)]) -> Vec<String> {
    let probes: Vec<(&str, &str, &str)> = secrets
        .iter()
        .filter(|(_, v)| v.len() >= 8)
        .map(|(kind, v)| {
            let tail = &v[v.floor_char_boundary(v.len().saturating_sub(24))..];
            (kind.as_str(), v.as_str(), tail)
        })
        .collect();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                found.push(format!("line {n}: not JSON ({e})"));
                continue;
            }
        };
        if let Some(key) = ["timestamp", "level", "target"]
            .into_iter()
            .find(|k| !value[*k].is_string())
        {
            found.push(format!("line {n}: no {key}"));
        }
        let mut strings = vec![line.to_owned()];
        collect_strings(&value, &mut strings);
        for (kind, whole, tail) in &probes {
            if strings
                .iter()
                .any(|s| s.contains(whole) || s.contains(tail))
            {
                found.push(format!(
                    "line {n} ({} {}): holds the {kind}",
                    value["level"].as_str().unwrap_or("?"),
                    value["target"].as_str().unwrap_or("?"),
                ));
            }
        }
    }
    found
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out);
        }),
        _ => {}
    }
}

/// Checks what was captured so far: the number of lines, or the report.
pub fn check_report() -> Result<usize, String> {
    let state = lock();
    let text = String::from_utf8_lossy(&state.text).into_owned();
    let mut secrets = state.secrets.clone();
    secrets.extend(key_files(&state.data_dirs));
    drop(state);
    let found = violations(&text, &secrets);
    if found.is_empty() {
        Ok(text.lines().count())
    } else {
        Err(format!(
            "the in-process hub's log ({} lines, {} secrets searched) fails its check \
             (hub/tests/common/logs.rs):\n  {}",
            text.lines().count(),
            secrets.len(),
            found.join("\n  ")
        ))
    }
}

/// The captured log so far, as text.
pub fn captured() -> String {
    String::from_utf8_lossy(&lock().text).into_owned()
}

/// [`check_report`], panicking with the report; returns the line count.
pub fn check() -> usize {
    check_report().unwrap_or_else(|report| panic!("{report}"))
}

extern "C" fn check_at_exit() {
    let outcome = std::panic::catch_unwind(check_report);
    let report = match outcome {
        Ok(Ok(_)) => return,
        Ok(Err(report)) => report,
        Err(_) => "the log check itself panicked".to_owned(),
    };
    let _ = writeln!(std::io::stderr(), "{report}");
    // SAFETY: ends the process at once with status 1, as a failed test.
    unsafe { libc::_exit(1) };
}

//! What an abuse run measured ([`AbuseResult`], written as `abuse.json`),
//! the checks it is judged by, and its summary for a terminal.

use super::options::AbuseOptions;
use super::KINDS;
use crate::report::row;
use crate::stats::Percentiles;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The hub's memory over the run, KiB (from /proc/PID/status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rss {
    /// VmRSS before any worker started.
    pub start_kib: u64,
    /// Highest VmRSS sampled.
    pub max_kib: u64,
    /// VmRSS after the workers stopped.
    pub end_kib: u64,
    /// VmHWM (the kernel's peak of VmRSS since the process started) at the
    /// end: catches peaks between samples.
    pub hwm_kib: u64,
    /// `--rss-budget-mb` in KiB.
    pub budget_kib: Option<u64>,
}

/// One sampler tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the start of the run.
    pub t: f64,
    /// `/health` connect-to-last-byte, µs; `None` when it failed.
    pub health_us: Option<u64>,
    pub rss_kib: Option<u64>,
}

/// One pass/fail criterion of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Everything an abuse run measured; written as `abuse.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbuseResult {
    pub url: String,
    /// Start of the run, ms since the Unix epoch.
    pub started_unix_ms: u64,
    pub elapsed_s: f64,
    pub options: serde_json::Value,
    /// Whether workers used per-kind 127.0.0.x source addresses.
    pub bound_local_addresses: bool,
    /// kind → outcome → count.
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
    /// `kind: outcome` → count of the outcomes not expected.
    pub unexpected: BTreeMap<String, u64>,
    /// HTTP answers with a 5xx status (logins, registrations, idle
    /// requests, handshakes, `/health`).
    pub server_errors: u64,
    /// `/health` samples, µs (answered ones).
    pub health_us: Percentiles,
    /// `/health` samples without a 200 answer.
    pub health_failures: u64,
    pub health_budget_ms: u64,
    /// Other timings, µs: `login`, `flip subscribe`, `idle hold <mode>`.
    pub timings_us: BTreeMap<String, Percentiles>,
    pub rss: Option<Rss>,
    pub timeline: Vec<Sample>,
    pub checks: Vec<Check>,
}

impl AbuseResult {
    /// Every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// Outcomes counted for kinds starting with `kind`.
    pub fn exercised(&self, kind: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|(k, _)| k.split(' ').next() == Some(kind))
            .flat_map(|(_, o)| o.values())
            .sum()
    }

    /// Count of `outcome` of `kind`.
    pub fn count(&self, kind: &str, outcome: &str) -> u64 {
        self.outcomes
            .get(kind)
            .and_then(|o| o.get(outcome))
            .copied()
            .unwrap_or(0)
    }
}

/// The pass/fail criteria of a run.
pub(super) fn checks(r: &AbuseResult, opts: &AbuseOptions) -> Vec<Check> {
    let mut checks = vec![
        Check {
            name: "no 5xx".into(),
            ok: r.server_errors == 0,
            detail: format!("{} answers with a 5xx status", r.server_errors),
        },
        Check {
            name: "/health within budget".into(),
            ok: r.health_failures == 0
                && r.health_us.count > 0
                && r.health_us.max <= opts.health_budget_ms * 1000,
            detail: format!(
                "{} answered, {} failed; max {:.1} ms (budget {} ms)",
                r.health_us.count,
                r.health_failures,
                r.health_us.max as f64 / 1000.0,
                opts.health_budget_ms
            ),
        },
    ];
    if let Some(rss) = r.rss.as_ref() {
        if let Some(budget) = rss.budget_kib {
            let peak = rss.max_kib.max(rss.hwm_kib);
            checks.push(Check {
                name: "RSS within budget".into(),
                ok: peak <= budget,
                detail: format!(
                    "peak {} (VmRSS max / VmHWM) vs budget {}",
                    mib(peak),
                    mib(budget)
                ),
            });
        }
    }
    let wanted = [
        ("login", opts.login_workers),
        ("idle", opts.idle_sockets),
        ("frame", opts.malformed_workers),
        ("flip", opts.flippers),
    ];
    let idle: Vec<&str> = wanted
        .iter()
        .filter(|(kind, n)| *n > 0 && r.exercised(kind) == 0)
        .map(|(kind, _)| *kind)
        .collect();
    checks.push(Check {
        name: "every kind exercised".into(),
        ok: idle.is_empty(),
        detail: if idle.is_empty() {
            KINDS
                .iter()
                .map(|k| format!("{k} {}", r.exercised(k)))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("no outcome for: {}", idle.join(", "))
        },
    });
    let unexpected: u64 = r.unexpected.values().sum();
    checks.push(Check {
        name: "no unexpected outcome".into(),
        ok: unexpected == 0,
        detail: format!("{unexpected} unexpected"),
    });
    checks
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

/// The summary of a run, for a terminal.
pub fn summary(r: &AbuseResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NA-X Stream abuse soak against {} ({:.1} s, {} source addresses)",
        r.url,
        r.elapsed_s,
        if r.bound_local_addresses {
            "per-kind 127.0.0.x"
        } else {
            "default"
        }
    );
    let _ = writeln!(out, "  {:<26} {:<36} {:>9}", "kind", "outcome", "count");
    for (kind, outcomes) in &r.outcomes {
        for (outcome, n) in outcomes {
            let flag = if r.unexpected.contains_key(&format!("{kind}: {outcome}")) {
                "  UNEXPECTED"
            } else {
                ""
            };
            let _ = writeln!(out, "  {kind:<26} {outcome:<36} {n:>9}{flag}");
        }
    }
    row(&mut out, "5xx answers", r.server_errors.to_string());
    let h = &r.health_us;
    row(
        &mut out,
        "/health",
        format!(
            "{} samples, {} failed; p50 {}, p99 {}, max {} (budget {} ms)",
            h.count,
            r.health_failures,
            ms(h.p50),
            ms(h.p99),
            ms(h.max),
            r.health_budget_ms
        ),
    );
    for (name, p) in &r.timings_us {
        let text = if name.starts_with("idle hold") {
            format!(
                "{} closes; p50 {:.1} s, max {:.1} s",
                p.count,
                p.p50 as f64 / 1e6,
                p.max as f64 / 1e6
            )
        } else {
            format!(
                "{}; p50 {}, p99 {}, max {}",
                p.count,
                ms(p.p50),
                ms(p.p99),
                ms(p.max)
            )
        };
        row(&mut out, name, text);
    }
    if let Some(rss) = &r.rss {
        let budget = rss.budget_kib.map_or_else(
            || "no budget given".into(),
            |b| format!("budget {}", mib(b)),
        );
        row(
            &mut out,
            "hub RSS (VmRSS)",
            format!(
                "start {}, max {}, end {}; VmHWM {} ({budget})",
                mib(rss.start_kib),
                mib(rss.max_kib),
                mib(rss.end_kib),
                mib(rss.hwm_kib)
            ),
        );
    }
    for c in &r.checks {
        let verdict = if c.ok { "ok" } else { "FAILED" };
        row(&mut out, &c.name, format!("{verdict}: {}", c.detail));
    }
    out
}

/// Writes `abuse.json` into `dir` (created if missing); returns its path.
pub fn write(dir: &Path, r: &AbuseResult) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("abuse.json");
    let json = serde_json::to_string_pretty(r).expect("the result serializes");
    std::fs::write(&path, json)?;
    Ok(path)
}

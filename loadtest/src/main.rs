//! `loadtest`: parses the options, raises the open-file limit, runs the
//! scenario (or `loadtest abuse`), prints the summary and writes the
//! reports. Exits 1 when the run could not be made, 2 when a seq chain or
//! a checksum failed (orders: a request failed or was answered
//! unexpectedly; abuse: a check failed), 3 when no channel message arrived
//! at all (orders: no order was accepted).

use anyhow::Context as _;
use clap::Parser as _;
use loadtest::abuse::{self, AbuseOptions};
use loadtest::cli::Command;
use loadtest::stats::Counter;
use loadtest::{fdlimit, report, Options};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(&Options::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    if let Some(Command::Abuse(abuse)) = &opts.command {
        return run_abuse(abuse);
    }
    let wanted = u64::from(opts.connections) + 256;
    let limit = fdlimit::raise_fd_limit(wanted).context("reading the open-file limit")?;
    if limit.soft < wanted {
        eprintln!(
            "warning: open-file limit {} < {wanted} needed for {} connections; expect connect \
             errors, or split the load over several loadtest processes",
            limit.soft, opts.connections
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let result = runtime.block_on(loadtest::run(opts))?;
    print!("{}", report::summary_table(&result));
    let (json, html) = report::write(&opts.run.out, &result)
        .with_context(|| format!("writing reports to {}", opts.run.out.display()))?;
    println!("wrote {} and {}", json.display(), html.display());
    if let Some(orders) = &result.orders {
        let errors: u64 = result.errors.values().sum();
        return Ok(if orders.placed == 0 {
            eprintln!("error: no order was accepted: nothing was measured");
            ExitCode::from(3)
        } else if errors > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    Ok(if !result.integrity_ok {
        ExitCode::from(2)
    } else if result.counter(Counter::ChannelMessages) == 0 {
        eprintln!("error: no channel message was received: nothing was measured");
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `loadtest abuse`: exit 2 when a check failed (see `loadtest abuse --help`).
fn run_abuse(opts: &AbuseOptions) -> anyhow::Result<ExitCode> {
    let wanted = u64::from(opts.idle_sockets + opts.login_workers) + 256;
    fdlimit::raise_fd_limit(wanted).context("raising the open-file limit")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let result = runtime.block_on(abuse::run(opts))?;
    print!("{}", abuse::summary(&result));
    let json = abuse::write(&opts.run.out, &result)
        .with_context(|| format!("writing abuse.json to {}", opts.run.out.display()))?;
    println!("wrote {}", json.display());
    Ok(if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

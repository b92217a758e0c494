//! `nax-hub healthcheck [--url URL] [--timeout-ms MS]`: the container
//! image's `HEALTHCHECK` (the runtime image has no shell and no curl;
//! docs/CONTAINER.md). Exits 0 when `URL` answers 2xx, else prints why on
//! standard error and exits 1. Without `--url` it asks this hub's own
//! `GET /health` on the configured port (`NAX_PORT`, `NAX_BIND`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// The subcommand's name, the first argument.
pub const SUBCOMMAND: &str = "healthcheck";

#[derive(Debug, Parser)]
#[command(name = "nax-hub healthcheck", about = "Exit 0 if the URL answers 2xx")]
struct Args {
    /// URL to GET (default: this hub's /health, from its configuration).
    #[arg(long)]
    url: Option<String>,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

/// Runs the check with `args` (the subcommand's name first).
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    let url = match args.url {
        Some(url) => url,
        None => match own_health_url() {
            Ok(url) => url,
            Err(e) => {
                eprintln!("healthcheck: reading the configuration: {e:#}");
                return ExitCode::FAILURE;
            }
        },
    };
    match check(&url, Duration::from_millis(args.timeout_ms)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("healthcheck: {url}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `http://<bind or 127.0.0.1>:<port>/health` of the configuration the
/// hub itself would load (file and `NAX_*` variables).
fn own_health_url() -> anyhow::Result<String> {
    let env = std::env::vars().filter(|(name, _)| name.starts_with("NAX_"));
    let config = crate::config::Config::load_from(["nax-hub"], env)?;
    let host = if config.bind.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        config.bind
    };
    Ok(format!(
        "http://{}/health",
        std::net::SocketAddr::new(host, config.port)
    ))
}

fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.get(url).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    })
}

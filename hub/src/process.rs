//! The `nax-hub` process: the `healthcheck` subcommand or the hub itself,
//! on a multi-threaded runtime until SIGINT or SIGTERM.
//!
//! It lives in the library, not in `main.rs`: a binary crate compiles again
//! every generic instance it reaches (the whole start-up and serve path), which
//! was 20 s of one core at the very end of a fresh `cargo build --release`
//! (docs/BENCHMARKS.md, "Build times").

use crate::config::Config;

/// `nax-hub [healthcheck ...]`: what the binary's `main` runs.
pub fn main() -> anyhow::Result<std::process::ExitCode> {
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == crate::healthcheck::SUBCOMMAND)
    {
        return Ok(crate::healthcheck::run(std::env::args_os().skip(1)));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::load()?;
    let telemetry = crate::logging::init(
        std::env::var(crate::config::LOG_ENV).ok().as_deref(),
        config.log_format,
        config.otlp_endpoint.as_deref(),
        "nax-hub",
    )?;
    let signals = crate::shutdown::Signals::install()?;
    tracing::info!(config = %config.redacted(), "starting nax-hub");
    raise_fd_limit(config.limits.max_connections);
    let hub = crate::app::start(&config).await?;
    tracing::info!(addr = %hub.addr, "serving: ws://{}/ws", hub.addr);
    signals.received().await;
    tracing::info!("shutting down");
    hub.stop().await;
    // The exporter's blocking client must not run on a runtime thread.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    Ok(())
}

/// Raises the open-file limit towards what `max_connections` needs (the
/// soft limit up to the hard one); warns when it stays too low.
fn raise_fd_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < max_connections as u64 + 256 => tracing::warn!(
            limit,
            max_connections,
            "open-file limit is below max_connections; connections past it will fail"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

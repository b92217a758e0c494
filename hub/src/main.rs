//! `nax-hub`: reads the configuration, starts the hub, waits for SIGINT or
//! SIGTERM, shuts down gracefully. `nax-hub healthcheck` is the container's
//! health probe ([`hub::healthcheck`]).

use hub::config::Config;

/// mimalloc instead of glibc's malloc: the order flow spent ~14 % of its
/// samples in `malloc`/`free` (docs/BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == hub::healthcheck::SUBCOMMAND)
    {
        return Ok(hub::healthcheck::run(std::env::args_os().skip(1)));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::load()?;
    let telemetry = hub::logging::init(
        std::env::var(hub::config::LOG_ENV).ok().as_deref(),
        config.log_format,
        config.otlp_endpoint.as_deref(),
        "nax-hub",
    )?;
    tracing::info!(config = %config.redacted(), "starting nax-hub");
    raise_fd_limit(config.limits.max_connections);
    let hub = hub::app::start(&config).await?;
    tracing::info!(addr = %hub.addr, "serving: ws://{}/ws", hub.addr);
    hub::shutdown::signal().await?;
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

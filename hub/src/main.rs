//! `nax-hub`: reads the configuration, starts the hub, waits for SIGINT or
//! SIGTERM, shuts down gracefully.

use hub::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    hub::logging::init(std::env::var(hub::config::LOG_ENV).ok().as_deref());
    tracing::info!(config = %config.redacted(), "starting nax-hub");
    raise_fd_limit(config.limits.max_connections);
    let hub = hub::app::start(&config).await?;
    tracing::info!(addr = %hub.addr, "serving: ws://{}/ws", hub.addr);
    hub::shutdown::signal().await?;
    tracing::info!("shutting down");
    hub.stop().await;
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

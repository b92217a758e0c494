//! `nax-hub`: reads the configuration, starts the hub, waits for SIGINT or
//! SIGTERM, shuts down gracefully.

use hub::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(hub::config::LOG_ENV)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    tracing::info!(config = %config.redacted(), "starting nax-hub");
    let hub = hub::app::start(&config).await?;
    tracing::info!(addr = %hub.addr, "serving: ws://{}/ws", hub.addr);
    hub::shutdown::signal().await?;
    tracing::info!("shutting down");
    hub.stop().await;
    Ok(())
}

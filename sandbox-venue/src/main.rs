//! The `nax-venue` binary: reads flags, serves the sandbox venue over the
//! GraphQL contract, prints `listening on http://ADDR/graphql` once bound,
//! and stops gracefully on SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use feeds::SandboxConfig;
use sandbox_venue::{BearerToken, VenueServerConfig};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// The sandbox venue served over the upstream GraphQL contract.
#[derive(Parser)]
#[command(name = "nax-venue", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 9090)]
    port: u16,
    /// Bearer token every client must present.
    #[arg(long, env = "NAX_VENUE_TOKEN", hide_env_values = true)]
    token: String,
    /// Simulated market actions per second across all pairs (0: none).
    #[arg(long)]
    events_per_sec: Option<u32>,
    /// Seed of the simulated market.
    #[arg(long)]
    seed: Option<u64>,
    /// Which market to serve: `usd` (BTC-USD, ETH-USD, SOL-USD, ETH-BTC)
    /// or `aud` (BTC-AUD, ETH-AUD, SOL-AUD, USDC-AUD), for a second venue
    /// beside the first (docs/ARCHITECTURE.md, "Several venues").
    #[arg(long, value_enum, default_value_t = Market::Usd)]
    market: Market,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Market {
    Usd,
    Aud,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let defaults = SandboxConfig::default();
    let mut config = VenueServerConfig::new(
        SocketAddr::new(cli.bind, cli.port),
        BearerToken::new(cli.token).context("--token / NAX_VENUE_TOKEN")?,
    );
    config.sandbox = SandboxConfig {
        events_per_sec: cli.events_per_sec.unwrap_or(defaults.events_per_sec),
        seed: cli.seed.unwrap_or(defaults.seed),
        ..defaults
    };
    if let Market::Aud = cli.market {
        config.sandbox.pairs = feeds::sandbox_pairs::aud_pairs();
        config.sandbox.assets = feeds::sandbox_pairs::aud_assets();
    }
    let server = sandbox_venue::serve(config).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{}/graphql", server.addr())?;
    stdout.flush()?;
    shutdown_signal().await?;
    tracing::info!("stopping");
    server.stop().await
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

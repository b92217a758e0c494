//! Shared by the loadtest integration tests: a real sandbox hub on
//! 127.0.0.1 and the harness's options pointed at it.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use clap::Parser as _;
use hub::app::RunningHub;
use hub::config::Config;
use loadtest::Options;
use std::path::Path;
use std::time::Duration;

/// A sandbox hub with the REST API on 127.0.0.1, any free port, data in
/// `data_dir`, fast sandbox KYC and payment confirmations, every book warm.
pub async fn start_hub(data_dir: &Path) -> RunningHub {
    start_hub_with(data_dir, |_| {}).await
}

/// [`start_hub`] with `adjust` applied to the configuration first.
pub async fn start_hub_with(data_dir: &Path, adjust: impl FnOnce(&mut Config)) -> RunningHub {
    let mut config =
        Config::load_from(["nax-hub"], Vec::<(String, String)>::new()).expect("default config");
    config.bind = "127.0.0.1".parse().unwrap();
    config.port = 0;
    config.data_dir = data_dir.to_path_buf();
    config.shutdown_drain_ms = 2_000;
    config.api.kyc_verify_delay_ms = 50;
    config.api.fiat_confirm_delay_ms = 50;
    adjust(&mut config);
    let hub = hub::app::start(&config).await.expect("hub starts");
    for _ in 0..500 {
        if hub.context.markets.cold_pairs().is_empty() {
            return hub;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("hub did not become ready");
}

/// The harness's options against `hub` (no progress bar) plus `args`.
pub fn options(hub: &RunningHub, args: &[&str]) -> Options {
    let url = format!("ws://{}/ws", hub.addr);
    let argv = ["loadtest", "--url", &url, "--no-progress"];
    Options::try_parse_from(argv.iter().chain(args)).expect("valid options")
}

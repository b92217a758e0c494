//! Tests of option parsing and validation.

use super::*;

fn parse(args: &[&str]) -> Result<Options, clap::Error> {
    Options::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
}

#[test]
fn defaults_are_valid() {
    let o = parse(&[]).unwrap();
    o.validate().unwrap();
    assert_eq!(o.connections, 100);
    assert_eq!(o.scenario, Scenario::Steady);
    assert_eq!(
        o.channels,
        vec![ChannelSet {
            weight: 1,
            channels: vec!["book.BTC-USD".into(), "trades.BTC-USD".into()]
        }]
    );
}

#[test]
fn weighted_sets_parse() {
    let o = parse(&[
        "--channels",
        "3*book.BTC-USD, trades.BTC-USD,book.BTC-USD",
        "--channels",
        "ticker.ETH-USD@100ms",
    ])
    .unwrap();
    assert_eq!(o.channels[0].weight, 3);
    assert_eq!(o.channels[0].channels.len(), 2, "duplicates dropped");
    assert_eq!(o.channels[1].weight, 1);
}

#[test]
fn the_chart_mix_is_book_trades_ticker_and_1m_candles_of_its_pair() {
    let o = parse(&[
        "--channels",
        "3*chart:BTC-USD",
        "--channels",
        "chart:ETH-USD,trades.ETH-USD,heartbeat,chart:SOL-USD",
    ])
    .unwrap();
    assert_eq!(
        o.channels[0],
        ChannelSet {
            weight: 3,
            channels: vec![
                "book.BTC-USD".into(),
                "trades.BTC-USD".into(),
                "ticker.BTC-USD".into(),
                "candles1m.BTC-USD".into(),
            ]
        }
    );
    assert_eq!(
        o.channels[1].channels,
        [
            "book.ETH-USD",
            "trades.ETH-USD",
            "ticker.ETH-USD",
            "candles1m.ETH-USD",
            "heartbeat",
            "book.SOL-USD",
            "trades.SOL-USD",
            "ticker.SOL-USD",
            "candles1m.SOL-USD",
        ],
        "mixes expand in place, duplicates dropped"
    );
    for bad in [
        "chart:",
        "chart:BTC USD",
        "chart:BTC-USD@100ms",
        "chart:book.BTC-USD",
        "nochart:BTC-USD",
        ":BTC-USD",
    ] {
        assert!(bad.parse::<ChannelSet>().is_err(), "{bad}");
    }
}

#[test]
fn bad_sets_are_refused() {
    assert!("0*book.BTC-USD".parse::<ChannelSet>().is_err());
    assert!("x*book.BTC-USD".parse::<ChannelSet>().is_err());
    assert!(" , ".parse::<ChannelSet>().is_err());
    assert!("book.BTC USD".parse::<ChannelSet>().is_err());
}

#[test]
fn bounds_are_enforced() {
    assert!(parse(&["--connections", "20001"]).is_err());
    assert!(parse(&["--connections", "0"]).is_err());
    assert!(parse(&["--duration", "601"]).is_err());
    assert!(parse(&["--ramp", "0"]).unwrap().validate().is_err());
    assert!(parse(&["--verify-fraction", "1.5"])
        .unwrap()
        .validate()
        .is_err());
    assert!(parse(&["--slow-percent", "101"])
        .unwrap()
        .validate()
        .is_err());
    let storm = ["--scenario", "connect-storm", "--duration", "5"];
    let storm = parse(&[&storm[..], &["--storm-window", "6"]].concat()).unwrap();
    assert!(storm.validate().is_err());
    let resume = parse(&["--scenario", "resume-storm", "--duration", "2"]).unwrap();
    assert!(resume.validate().is_err(), "resume-every 5 > duration 2");
    // scenario options are checked for their scenario only
    parse(&["--duration", "2"]).unwrap().validate().unwrap();
}

#[test]
fn abuse_is_a_subcommand_with_its_own_options() {
    let o = parse(&["abuse", "--pid", "42", "--rss-budget-mb", "200"]).unwrap();
    let Some(Command::Abuse(a)) = o.command else {
        panic!("abuse parsed as {:?}", o.command);
    };
    assert_eq!(
        (a.duration, a.pid, a.rss_budget_mb),
        (600, Some(42), Some(200))
    );
    assert_eq!(a.health_budget_ms, 100);
    assert!(parse(&["abuse", "--duration", "601"]).is_err());
    assert!(
        parse(&["abuse", "--rss-budget-mb", "200"]).is_err(),
        "needs --pid"
    );
    assert!(parse(&["--connections", "5", "abuse"]).is_err());
    assert!(parse(&["--connections", "5"]).unwrap().command.is_none());
}

#[test]
fn connect_storm_spreads_clients_over_its_window() {
    let o = parse(&[
        "--scenario",
        "connect-storm",
        "-n",
        "1000",
        "--storm-window",
        "2",
    ])
    .unwrap();
    assert_eq!(o.connect_rate(), 500.0);
}

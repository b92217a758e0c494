//! Which sets of venues and pairs a `MultiVenue` accepts, and why it
//! refuses the rest.

use super::*;

#[tokio::test]
async fn pairs_are_the_union_in_configuration_order_and_each_has_one_owner() {
    let (multi, _, _) = both();
    let pairs: Vec<String> = multi.markets().into_iter().map(|s| s.symbol).collect();
    assert_eq!(
        pairs,
        ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC", "BTC-AUD", "ETH-AUD", "SOL-AUD", "USDC-AUD"]
    );
    assert_eq!(multi.owner_of("ETH-BTC"), Some("us"));
    assert_eq!(multi.owner_of("USDC-AUD"), Some("au"));
    assert_eq!(multi.owner_of("DOGE-AUD"), None);
    let assets: Vec<String> = multi.assets().into_iter().map(|a| a.symbol).collect();
    assert_eq!(assets, ["USD", "BTC", "ETH", "SOL", "AUD", "USDC"]);
}

#[tokio::test]
async fn a_venue_may_own_only_some_of_its_pairs() {
    let (us, au) = (sandbox(false), sandbox(true));
    let multi = MultiVenue::new(vec![
        part("us", &us, &["BTC-USD"], &[]),
        part("au", &au, &["BTC-AUD", "ETH-AUD"], &[]),
    ])
    .unwrap();
    let pairs: Vec<String> = multi.markets().into_iter().map(|s| s.symbol).collect();
    assert_eq!(pairs, ["BTC-USD", "BTC-AUD", "ETH-AUD"]);
    let refused = multi.place_order(buy("u", "SOL-AUD", 1, 100)).await;
    assert_eq!(refused, Err(VenueError::UnknownPair("SOL-AUD".into())));
}

#[tokio::test]
async fn venues_that_do_not_fit_together_are_refused_with_the_reason() {
    let (us, au) = (sandbox(false), sandbox(true));
    let other_us = sandbox(false);
    let e = error_of(vec![
        part("a", &us, &[], &[]),
        part("b", &other_us, &[], &[]),
    ]);
    assert!(e.contains("BTC-USD is owned by both a and b"), "{e}");
    let e = error_of(vec![part("us", &us, &["BTC-AUD"], &[])]);
    assert!(e.contains("venue us does not list BTC-AUD"), "{e}");
    let e = error_of(vec![part("us", &us, &[], &[]), part("us", &au, &[], &[])]);
    assert!(e.contains("two venues are named us"), "{e}");
    let e = error_of(vec![part("u:s", &us, &[], &[])]);
    assert!(e.contains("without ':'"), "{e}");
    let e = error_of(vec![part("us", &us, &[], &["AUD"])]);
    assert!(e.contains("venue us funds AUD but does not list it"), "{e}");
    let e = error_of(vec![
        part("us", &us, &[], &["BTC"]),
        part("au", &au, &[], &["BTC"]),
    ]);
    assert!(e.contains("BTC is funded at both us and au"), "{e}");
    assert!(error_of(Vec::new()).contains("no venue"));
}

#[tokio::test]
async fn an_asset_at_two_scales_is_refused() {
    let us = sandbox(false);
    let mut config = SandboxConfig {
        events_per_sec: 0,
        pairs: aud_pairs(),
        assets: aud_assets(),
        ..SandboxConfig::default()
    };
    for a in &mut config.assets {
        if a.symbol == "BTC" {
            a.scale = 9;
        }
    }
    // BTC-AUD's qty (6 decimals) still fits 9 decimals of BTC.
    let au = SandboxVenue::start(config).unwrap();
    let e = error_of(vec![part("us", &us, &[], &[]), part("au", &au, &[], &[])]);
    assert!(
        e.contains("BTC has 8 decimals at one venue and 9 at au"),
        "{e}"
    );
}

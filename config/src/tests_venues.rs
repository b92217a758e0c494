//! Tests of `[[venues]]`: several venues, each owning its pairs.

use super::*;

const TWO: &str = "[[venues]]\n\
    name = \"us\"\nendpoint = \"http://127.0.0.1:9090/graphql\"\n\
    token = \"us-token-0123456789\"\npairs = [\"BTC-USD\", \"ETH-USD\"]\n\
    [[venues]]\n\
    name = \"au\"\nendpoint = \"http://127.0.0.1:9091/graphql\"\n\
    token = \"au-token-0123456789\"\nfunds = [\"BTC\"]\nstale_after_ms = 2500\n";

/// The `[[venues]]` refusal's value and reason.
fn venues_refusal(text: &str) -> (String, String) {
    let file = toml_file(text);
    match load(&["--config", path(&file)], &[])
        .unwrap_err()
        .downcast::<ConfigError>()
        .unwrap()
    {
        ConfigError::Invalid { key, value, reason } => {
            assert_eq!(key, "venues");
            (value, reason)
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn two_venues_load_with_their_own_settings_and_print_without_tokens() {
    let file = toml_file(TWO);
    let config = load(&["--config", path(&file)], &[]).unwrap();
    let [us, au] = &config.venues[..] else {
        panic!("two venues: {:?}", config.venues)
    };
    assert_eq!((us.name.as_str(), au.name.as_str()), ("us", "au"));
    assert_eq!(us.pairs, ["BTC-USD", "ETH-USD"]);
    assert!(au.pairs.is_empty(), "every pair the venue lists");
    assert_eq!(au.funds, ["BTC"]);
    assert_eq!((us.stale_after_ms, au.stale_after_ms), (10_000, 2_500));
    let line = config.redacted();
    assert!(line.contains("venues.0.name=\"us\""), "{line}");
    assert!(
        line.contains("venues.1.endpoint=\"http://127.0.0.1:9091/graphql\""),
        "{line}"
    );
    assert!(
        !line.contains("us-token") && !line.contains("au-token"),
        "{line}"
    );
    // The venues are real: production does not count the venue a stand-in.
    assert!(
        config.stand_ins().iter().all(|s| !s.contains("venue")),
        "{:?}",
        config.stand_ins()
    );
    let single = au.as_venue().unwrap();
    assert_eq!(single.kind, VenueKind::Graphql);
    assert_eq!(single.token.unwrap().expose(), "au-token-0123456789");
    assert_eq!(single.stale_after_ms, 2_500);
}

#[test]
fn a_token_file_is_read_trimmed_and_an_empty_one_refused() {
    let token = toml_file("file-token-0123456789\n");
    let entry = VenueEntry {
        name: "us".into(),
        token_file: Some(token.path().to_owned()),
        ..VenueEntry::default()
    };
    let venue = entry.as_venue().unwrap();
    assert_eq!(venue.token.unwrap().expose(), "file-token-0123456789");
    // An empty `token` beside the file is no token: the file's is used.
    let beside = VenueEntry {
        token: Some(api::secret::Secret::new("")),
        ..entry.clone()
    };
    let venue = beside.as_venue().unwrap();
    assert_eq!(venue.token.unwrap().expose(), "file-token-0123456789");
    let empty = toml_file("\n");
    let entry = VenueEntry {
        token_file: Some(empty.path().to_owned()),
        ..entry
    };
    let e = entry.as_venue().unwrap_err().to_string();
    assert!(e.contains("must hold one token"), "{e}");
}

#[test]
fn venues_that_cannot_work_are_refused_naming_the_venue() {
    let venue = |name: &str, extra: &str| {
        format!(
            "[[venues]]\nname = \"{name}\"\nendpoint = \"http://127.0.0.1:1/graphql\"\n{extra}\n"
        )
    };
    let token = "token = \"t-0123456789\"";
    let cases = [
        (
            format!(
                "[venue]\nkind = \"graphql\"\ntoken = \"x\"\n{}",
                venue("us", token)
            ),
            "not both",
        ),
        (venue("US", token), "lowercase"),
        (venue("", token), "lowercase"),
        (venue(&"a".repeat(33), token), "1 to 32"),
        (
            format!("{}{}", venue("us", token), venue("us", token)),
            "two venues",
        ),
        (venue("us", ""), "exactly one of token and token_file"),
        (
            venue("us", &format!("{token}\ntoken_file = \"/run/t\"")),
            "exactly one of token and token_file",
        ),
        (
            venue("us", &format!("{token}\nbackoff_min_ms = 0")),
            "backoff_min_ms at least 1",
        ),
        (
            venue("us", &format!("{token}\nrequest_timeout_ms = 2000")),
            "below api.upstream_timeout_ms",
        ),
        (
            venue("us", "token = \"aws-sm:nax/venue#token\""),
            "not a Secrets Manager reference",
        ),
        (
            (0..=MAX_VENUES)
                .map(|i| venue(&format!("v{i}"), token))
                .collect(),
            "at most 16 venues",
        ),
    ];
    for (text, want) in cases {
        let (value, reason) = venues_refusal(&text);
        assert!(reason.contains(want), "{text}: {value}: {reason}");
    }
    let (value, reason) =
        venues_refusal("[[venues]]\nname = \"us\"\nendpoint = \"ftp://x\"\ntoken = \"t\"\n");
    assert_eq!(value, "us (ftp://x)");
    assert!(reason.contains("http://"), "{reason}");
    let (_, reason) = venues_refusal(&format!("profile = \"production\"\n{}", venue("us", token)));
    assert!(reason.contains("https URL in production"), "{reason}");
}

#[test]
fn the_config_text_may_come_from_the_environment_but_not_with_a_file() {
    let config = load(&[], &[("NAX_CONFIG_TOML", TWO)]).unwrap();
    assert_eq!(config.venues.len(), 2);
    assert_eq!(config.venues[1].funds, ["BTC"]);
    // Later layers still win over it.
    let config = load(&[], &[("NAX_CONFIG_TOML", TWO), ("NAX_PORT", "9001")]).unwrap();
    assert_eq!(config.port, 9001);
    let file = toml_file(TWO);
    let both = load(&["--config", path(&file)], &[("NAX_CONFIG_TOML", TWO)]).unwrap_err();
    assert!(both.to_string().contains("not both"), "{both}");
    let bad = load(&[], &[("NAX_CONFIG_TOML", "[[venues]]\nnme = 1\n")]).unwrap_err();
    assert!(
        format!("{bad:#}").contains("parsing NAX_CONFIG_TOML"),
        "{bad:#}"
    );
}

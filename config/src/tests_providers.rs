//! Tests of the real providers' settings: each adapter's URL and what it
//! needs with it, and what production accepts.

use super::*;

#[test]
fn banxa_has_an_adapter_of_its_own_and_needs_its_key_and_wallet() {
    let banxa = [
        ("NAX_BANXA_API_URL", "https://partner.banxa-sandbox.com"),
        ("NAX_BANXA_API_KEY", "banxa-merchant-key"),
        ("NAX_BANXA_WEBHOOK_SECRET", "banxa-api-secret"),
        ("NAX_BANXA_WALLET_ADDRESS", "0xexchange"),
    ];
    let config = load(&[], &banxa).unwrap();
    assert_eq!(
        config.api.banxa_api_url,
        "https://partner.banxa-sandbox.com"
    );
    assert_eq!(config.api.banxa_coin, "USDT");
    // The key is a secret: redacted when the configuration is printed.
    let printed = format!("{:?}", config.api.banxa_api_key);
    assert!(!printed.contains("banxa-merchant-key"), "{printed}");
    // Production still names the other providers' sandbox, not Banxa's.
    let mut vars = REAL_PARTS.to_vec();
    vars.extend(banxa);
    vars.push(("NAX_PROFILE", "production"));
    let reason = refusal(load(&[], &vars));
    assert!(
        reason.contains("the payment provider is the sandbox for stripe, bcb ("),
        "{reason}"
    );
    // Half a Banxa configuration is an error naming what is missing.
    for (drop, key) in [
        ("NAX_BANXA_API_KEY", "api.banxa_api_key"),
        ("NAX_BANXA_WALLET_ADDRESS", "api.banxa_wallet_address"),
        ("NAX_BANXA_WEBHOOK_SECRET", "api.banxa_webhook_secret"),
    ] {
        let vars: Vec<_> = banxa.iter().copied().filter(|(k, _)| *k != drop).collect();
        match load(&[], &vars)
            .unwrap_err()
            .downcast::<ConfigError>()
            .unwrap()
        {
            ConfigError::Invalid { key: got, .. } => assert_eq!(got, key),
            other => panic!("{other:?}"),
        }
    }
    let bad = [("NAX_BANXA_API_URL", "ftp://banxa")];
    assert!(load(&[], &bad).is_err());
}

#[test]
fn stripe_has_an_adapter_of_its_own_and_needs_its_key_and_endpoint_secret() {
    let stripe = [
        ("NAX_STRIPE_API_URL", "https://api.stripe.com"),
        ("NAX_STRIPE_API_KEY", "sk_test_stripe-secret-key"),
        ("NAX_STRIPE_WEBHOOK_SECRET", "whsec_endpoint"),
    ];
    let config = load(&[], &stripe).unwrap();
    assert_eq!(config.api.stripe_api_url, "https://api.stripe.com");
    let printed = format!("{:?}", config.api.stripe_api_key);
    assert!(!printed.contains("stripe-secret-key"), "{printed}");
    // Production names the sandbox for the providers left, and how to
    // leave it for Banxa; no longer Stripe.
    let mut vars = REAL_PARTS.to_vec();
    vars.extend(stripe);
    vars.push(("NAX_PROFILE", "production"));
    let reason = refusal(load(&[], &vars));
    assert!(
        reason.contains(
            "the payment provider is the sandbox for banxa, bcb (api.payment_provider; \
             api.banxa_api_url for banxa; api.bcb_api_url for bcb)"
        ),
        "{reason}"
    );
    for (drop, key) in [
        ("NAX_STRIPE_API_KEY", "api.stripe_api_key"),
        ("NAX_STRIPE_WEBHOOK_SECRET", "api.stripe_webhook_secret"),
    ] {
        let vars: Vec<_> = stripe.iter().copied().filter(|(k, _)| *k != drop).collect();
        match load(&[], &vars)
            .unwrap_err()
            .downcast::<ConfigError>()
            .unwrap()
        {
            ConfigError::Invalid { key: got, .. } => assert_eq!(got, key),
            other => panic!("{other:?}"),
        }
    }
    assert!(load(&[], &[("NAX_STRIPE_API_URL", "stripe.com")]).is_err());
}

#[test]
fn fireblocks_jwks_alone_is_a_real_webhook_key() {
    let mut vars = REAL_PARTS.to_vec();
    vars.extend([
        ("NAX_STRIPE_WEBHOOK_SECRET", "whsec_a"),
        ("NAX_BANXA_WEBHOOK_SECRET", "b"),
        ("NAX_BCB_WEBHOOK_SECRET", "c"),
        (
            "NAX_FIREBLOCKS_JWKS_URL",
            "https://keys.fireblocks.io/.well-known/jwks.json",
        ),
    ]);
    let config = load(&[], &vars).unwrap();
    assert_eq!(
        config.api.fireblocks_jwks_url,
        "https://keys.fireblocks.io/.well-known/jwks.json"
    );
    assert_eq!(config.stand_ins().len(), 3, "{:?}", config.stand_ins());
    let bad = [("NAX_FIREBLOCKS_JWKS_URL", "keys.fireblocks.io")];
    assert!(load(&[], &bad).is_err());
}

#[test]
fn provider_urls_are_https_in_production_and_fireblocks_settings_are_checked() {
    let key_of = |vars: &[(&str, &str)]| match load(&[], vars)
        .unwrap_err()
        .downcast::<ConfigError>()
        .unwrap()
    {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("{other:?}"),
    };
    let plain = [
        ("NAX_PROFILE", "production"),
        (
            "NAX_FIREBLOCKS_JWKS_URL",
            "http://keys.fireblocks.io/.well-known/jwks.json",
        ),
    ];
    assert_eq!(key_of(&plain), "api.fireblocks_jwks_url");
    // In development plain http is allowed (the tests' own servers).
    assert!(load(&[], &plain[1..]).is_ok());
    let v1 = [("NAX_FIREBLOCKS_API_URL", "https://api.fireblocks.io/v1")];
    assert_eq!(key_of(&v1), "api.fireblocks_api_url");
    for bad in ["BTC", "BTC=", "BTC=BTC TEST", "BTC=BTC_TEST,,ETH=ETH"] {
        let ids = [("NAX_FIREBLOCKS_ASSET_IDS", bad)];
        assert_eq!(key_of(&ids), "api.fireblocks_asset_ids", "{bad}");
    }
    assert!(load(
        &[],
        &[("NAX_FIREBLOCKS_ASSET_IDS", "BTC=BTC_TEST, ETH=ETH_TEST5")]
    )
    .is_ok());
}

#[test]
fn provider_secrets_may_be_secrets_manager_references_checked_at_load() {
    let vars = [
        ("NAX_STRIPE_API_KEY", "aws-sm:nax/prod/stripe#api_key"),
        (
            "NAX_SUMSUB_SECRET_KEY",
            "aws-sm:arn:aws:secretsmanager:eu-west-1:1:secret:s-AbC",
        ),
        ("NAX_SECRETS_TTL_MS", "60000"),
        ("NAX_SECRETS_ENDPOINT", "http://127.0.0.1:5000"),
        ("NAX_AWS_REGION", "eu-west-1"),
    ];
    let config = load(&[], &vars).unwrap();
    assert_eq!(config.api.secrets_ttl_ms, 60_000);
    assert_eq!(config.api.secrets_endpoint, "http://127.0.0.1:5000");
    assert_eq!(config.api.secrets_region, "eu-west-1");
    assert_eq!(api::ApiConfig::default().secrets_ttl_ms, 300_000);
    // A malformed reference, or one where none is read, names its setting
    // and never quotes the value.
    for (var, value, key) in [
        ("NAX_BCB_CLIENT_SECRET", "aws-sm:", "api.bcb_client_secret"),
        (
            "NAX_STRIPE_WEBHOOK_SECRET",
            "aws-sm:has space#k",
            "api.stripe_webhook_secret",
        ),
        (
            "NAX_FIREBLOCKS_API_KEY",
            "aws-sm:id#",
            "api.fireblocks_api_key",
        ),
        (
            "NAX_JWT_SECRET",
            "aws-sm:nax/jwt-key-value",
            "api.jwt_secret",
        ),
        ("NAX_SECRETS_TTL_MS", "99", "api.secrets_ttl_ms"),
    ] {
        let error = load(&[], &[(var, value)]).unwrap_err();
        let text = error.to_string();
        match error.downcast::<ConfigError>().unwrap() {
            ConfigError::Invalid { key: got, .. } => assert_eq!(got, key, "{text}"),
            other => panic!("{other:?}"),
        }
        // (The bare prefix is in every reason: nothing of a value.)
        if value.starts_with("aws-sm:") && value != "aws-sm:" {
            assert!(!text.contains(value), "{text}");
        }
    }
}

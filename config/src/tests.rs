//! Tests of configuration loading: layering, environment checks,
//! validation and redaction.

use super::redact::write_flattened;
use super::*;
use clap::CommandFactory as _;
use std::io::Write as _;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    let argv = std::iter::once("nax-hub").chain(args.iter().copied());
    Config::load_from(argv, env(vars))
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn path(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().unwrap()
}

fn invalid_key(result: anyhow::Result<Config>) -> &'static str {
    match result.unwrap_err().downcast::<ConfigError>().unwrap() {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn defaults_when_nothing_is_given() {
    let config = load(&[], &[]).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(config.port, 8080);
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.venue.kind, VenueKind::Sandbox);
    assert_eq!(config.venue.seed, 0x5eed);
    assert_eq!(config.limits.max_frame_bytes, 16_384);
    assert_eq!(config.limits.outbound_queue_bytes, 1 << 20);
    assert_eq!(config.limits.pong_timeout_ms, 60_000);
    assert_eq!(config.history.max_messages, 1_000);
}

#[test]
fn file_overrides_defaults_and_keeps_the_rest() {
    let file = toml_file(
        "port = 9000\n\
         [venue]\nkind = \"sandbox\"\nseed = 0x1234\n\
         [limits]\nmax_connections = 5\n\
         [history]\nmax_age_ms = 10\n",
    );
    let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
    assert_eq!(config.port, 9000);
    assert_eq!(config.venue.seed, 0x1234);
    assert_eq!(config.venue.events_per_sec, 400);
    assert_eq!(config.limits.max_connections, 5);
    assert_eq!(config.limits.max_subscriptions, 200);
    assert_eq!(config.history.max_age_ms, 10);
}

#[test]
fn env_overrides_file_and_flag_overrides_env() {
    let file = toml_file("port = 9000\ndata_dir = \"/file\"\n[venue]\nseed = 1\n");
    let path = file.path().to_str().unwrap();
    let vars = [
        ("NAX_CONFIG", path),
        ("NAX_PORT", "9001"),
        ("NAX_SEED", "0x10"),
        ("NAX_DATA_DIR", "/env"),
    ];
    let config = load(&[], &vars).unwrap();
    assert_eq!(config.port, 9001);
    assert_eq!(config.venue.seed, 16);
    assert_eq!(config.data_dir, PathBuf::from("/env"));

    let config = load(&["--port", "9002", "--data-dir=/cli"], &vars).unwrap();
    assert_eq!(config.port, 9002);
    assert_eq!(config.data_dir, PathBuf::from("/cli"));
    assert_eq!(config.venue.seed, 16, "env still applies to other keys");
}

#[test]
fn flag_beats_an_invalid_env_value() {
    let config = load(&["--port", "1"], &[("NAX_PORT", "not-a-port")]).unwrap();
    assert_eq!(config.port, 1);
}

#[test]
fn env_values_cannot_be_swallowed_by_a_trailing_double_dash() {
    let config = load(&["--"], &[("NAX_PORT", "9003")]).unwrap();
    assert_eq!(config.port, 9003);
}

#[test]
fn secrets_from_the_environment_print_redacted() {
    let secret = "s3cret-s3cret-s3cret-s3cret-s3cret";
    let config = load(
        &[],
        &[
            ("NAX_JWT_SECRET", secret),
            ("NAX_VENUE_TOKEN", "tok-123"),
            ("NAX_HUBSPOT_TOKEN", "pat-na1-hubspot"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.worker.hubspot_token.as_ref().map(|s| s.expose()),
        Some("pat-na1-hubspot")
    );
    assert!(!config.redacted().contains("pat-na1-hubspot"));
    assert_eq!(
        config.api.jwt_secret.as_ref().map(|s| s.expose()),
        Some(secret)
    );
    let printed = config.redacted();
    assert!(
        !printed.contains(secret) && !printed.contains("tok-123"),
        "{printed}"
    );
    assert!(printed.contains("api.jwt_secret=\"***\""), "{printed}");
}

#[test]
fn production_backends_come_from_the_environment_and_the_redis_password_is_redacted() {
    let config = load(
        &[],
        &[
            ("NAX_STORE", "dynamodb"),
            ("NAX_DYNAMODB_TABLE_PREFIX", "prod-"),
            ("NAX_AWS_REGION", "eu-west-1"),
            ("NAX_EVENTS_TO_SQS", "true"),
            ("NAX_SQS_QUEUE_PREFIX", "prod-"),
            ("NAX_REDIS_URL", "rediss://:hunter2-pw@cache:6379"),
            ("NAX_KMS_KEY_ID", "alias/nax-prod"),
            ("NAX_KMS_ENDPOINT", "http://127.0.0.1:5000"),
        ],
    )
    .unwrap();
    assert_eq!(config.api.kms_key_id, "alias/nax-prod");
    assert_eq!(config.api.kms_endpoint, "http://127.0.0.1:5000");
    assert_eq!(config.api.kms_region, "eu-west-1");
    assert_eq!(config.api.store, api::config::StoreKind::Dynamodb);
    assert_eq!(config.api.dynamodb_table_prefix, "prod-");
    assert_eq!(config.api.dynamodb_region, "eu-west-1");
    assert_eq!(config.api.sqs_region, "eu-west-1");
    assert!(config.api.events_to_sqs);
    assert_eq!(config.api.sqs_queue_prefix, "prod-");
    assert_eq!(
        config.api.redis_url.as_ref().map(|s| s.expose()),
        Some("rediss://:hunter2-pw@cache:6379")
    );
    assert!(
        !config.redacted().contains("hunter2"),
        "{}",
        config.redacted()
    );
    assert!(load(&[], &[("NAX_STORE", "postgres")]).is_err());
}

#[test]
fn redacted_renders_extreme_values() {
    let config = load(&[], &[("NAX_SEED", "18446744073709551615")]).unwrap();
    assert!(config
        .redacted()
        .contains("venue.seed=18446744073709551615"));
}

#[test]
fn port_zero_means_any_free_port() {
    assert_eq!(load(&["--port", "0"], &[]).unwrap().port, 0);
}

#[test]
fn oversized_file_is_refused_before_it_is_read_whole() {
    let file = toml_file(&format!("# {}\nport = 9000\n", "x".repeat(MAX_FILE_BYTES)));
    let err = format!("{:#}", load(&["--config", path(&file)], &[]).unwrap_err());
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
    let file = toml_file(&format!("# {}\nport = 9000\n", "x".repeat(1000)));
    assert_eq!(load(&["--config", path(&file)], &[]).unwrap().port, 9000);
}

#[test]
fn deeply_nested_file_is_a_clear_error_not_a_crash() {
    let n = 100_000;
    for text in [
        format!("a = {}", "[".repeat(n)),
        format!("a = {}1{}", "[".repeat(n), "]".repeat(n)),
        format!("a = {}", "{b = ".repeat(n)),
        format!("a = {}1{}", "{b = ".repeat(n), "}".repeat(n)),
        format!("{} = 1", vec!["a"; n].join(".")),
        format!("[{}]", vec!["a"; n].join(".")),
        format!("[[{}]]", vec!["a"; n].join(".")),
    ] {
        let file = toml_file(&text);
        let err = format!("{:#}", load(&["--config", path(&file)], &[]).unwrap_err());
        assert!(err.starts_with("parsing config file"), "{err}");
        assert_eq!(err.lines().last(), Some("recursion limit exceeded"));
    }
}

#[test]
fn unknown_toml_key_is_an_error() {
    let file = toml_file("[limits]\nmax_conections = 5\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("max_conections"), "{text}");
}

#[test]
fn unknown_nax_env_var_is_an_error_but_reserved_ones_are_not() {
    let err = load(&[], &[("NAX_PROT", "1")]).unwrap_err();
    match err.downcast::<ConfigError>().unwrap() {
        ConfigError::UnknownEnv { name, known } => {
            assert_eq!(name, "NAX_PROT");
            assert!(known.contains("NAX_PORT"), "{known}");
        }
        other => panic!("expected UnknownEnv, got {other:?}"),
    }
    let vars = [("NAX_LOG", "debug"), ("NAX_TEST_X", "1"), ("PATH", "/bin")];
    assert!(load(&[], &vars).is_ok());
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(
        invalid_key(load(&["--max-frame-bytes", "512"], &[])),
        "limits.max_frame_bytes"
    );
    assert_eq!(
        invalid_key(load(&[], &[("NAX_OUTBOUND_QUEUE_BYTES", "1000")])),
        "limits.outbound_queue_bytes"
    );
    assert_eq!(
        invalid_key(load(&["--frames-per-sec", "0"], &[])),
        "limits.frames_per_sec"
    );
    assert_eq!(
        invalid_key(load(&["--pong-timeout-ms", "20000"], &[])),
        "limits.pong_timeout_ms"
    );
    let file = toml_file("[history]\nmax_messages = 0\n");
    let path = file.path().to_str().unwrap();
    assert_eq!(
        invalid_key(load(&["--config", path], &[])),
        "history.max_messages"
    );
    let file = toml_file("[api]\norder_sync_backlog_max = 0\n");
    assert_eq!(
        invalid_key(load(&["--config", file.path().to_str().unwrap()], &[])),
        "api.order_sync_backlog_max"
    );
}

#[test]
fn allowed_origins_come_from_a_list_and_are_checked() {
    let config = load(
        &[],
        &[(
            "NAX_ALLOWED_ORIGINS",
            "https://trade.example.com,http://localhost:3000",
        )],
    )
    .unwrap();
    assert_eq!(
        config.allowed_origins,
        ["https://trade.example.com", "http://localhost:3000"]
    );
    assert_eq!(
        load(&["--allowed-origins", "*"], &[])
            .unwrap()
            .allowed_origins,
        ["*"]
    );
    for bad in [
        "trade.example.com",
        "https://x.example/path",
        "ftp://x",
        "https://",
    ] {
        assert_eq!(
            invalid_key(load(&["--allowed-origins", bad], &[])),
            "allowed_origins",
            "{bad}"
        );
    }
}

#[test]
fn unparsable_env_value_names_the_variable() {
    let err = load(&[], &[("NAX_PORT", "eighty")]).unwrap_err();
    match err.downcast::<ConfigError>().unwrap() {
        ConfigError::Env { name, reason, .. } => {
            assert_eq!(name, "NAX_PORT");
            assert!(reason.contains("invalid value 'eighty'"), "{reason}");
        }
        other => panic!("expected Env, got {other:?}"),
    }
}

#[test]
fn unparsable_flag_is_a_clap_error() {
    let err = load(&["--port", "eighty"], &[]).unwrap_err();
    assert!(err.downcast_ref::<clap::Error>().is_some());
}

#[test]
fn help_renders_with_flags_and_variables() {
    let help = Cli::command().render_help().to_string();
    assert!(help.contains("NA-X Stream hub"), "{help}");
    assert!(help.contains("--outbound-queue-bytes"), "{help}");
    assert!(help.contains("NAX_OUTBOUND_QUEUE_BYTES"), "{help}");
    Cli::command().debug_assert();
}

#[test]
fn help_flag_is_reported_as_display_help() {
    let err = load(&["--help"], &[]).unwrap_err();
    let err = err.downcast::<clap::Error>().unwrap();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(err.to_string().contains("NAX_PORT"), "{err}");
}

#[test]
fn redacted_is_one_line_with_every_key() {
    let line = Config::default().redacted();
    assert!(!line.contains('\n'));
    assert!(line.contains("port=8080"), "{line}");
    assert!(line.contains("venue.kind=\"sandbox\""), "{line}");
    assert!(
        line.contains("limits.outbound_queue_bytes=1048576"),
        "{line}"
    );
}

#[test]
fn secret_looking_keys_are_masked() {
    let value = serde_json::json!({"port": 1, "venue": {"api_key": "k", "Token": "t"}});
    let mut line = String::new();
    write_flattened(&mut line, "", &value);
    assert!(line.starts_with("port=1 "), "{line}");
    assert!(line.contains("venue.Token=\"***\""), "{line}");
    assert!(line.contains("venue.api_key=\"***\""), "{line}");
    assert!(!line.contains("\"k\"") && !line.contains("\"t\""), "{line}");
    // Settings about Secrets Manager print; the references it reads don't.
    let api = serde_json::json!({"api": {"secrets_ttl_ms": 300000, "stripe_api_key": "aws-sm:x"}});
    let mut line = String::new();
    write_flattened(&mut line, "", &api);
    assert!(line.contains("api.secrets_ttl_ms=300000"), "{line}");
    assert!(line.contains("api.stripe_api_key=\"***\""), "{line}");
}

/// Every non-sandbox setting there is today (the providers have no real
/// implementation yet, so they stay sandboxes).
const REAL_PARTS: &[(&str, &str)] = &[
    ("NAX_VENUE", "graphql"),
    ("NAX_VENUE_TOKEN", "venue-token-0123456789"),
    ("NAX_JWT_SECRET", "jwt-secret-0123456789-0123456789-0123"),
    ("NAX_KMS_KEY_ID", "alias/nax"),
    ("NAX_STORE", "dynamodb"),
    ("NAX_EVENTS_TO_SQS", "true"),
];

fn refusal(result: anyhow::Result<Config>) -> String {
    match result.unwrap_err().downcast::<ConfigError>().unwrap() {
        ConfigError::Invalid { key, value, reason } => {
            assert_eq!((key, value.as_str()), ("profile", "production"));
            reason
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn development_runs_on_stand_ins() {
    let config = load(&[], &[]).unwrap();
    assert_eq!(config.profile, Profile::Development);
    assert_eq!(config.stand_ins().len(), 12, "{:?}", config.stand_ins());
}

#[test]
fn production_names_every_stand_in_of_the_defaults() {
    let reason = refusal(load(&["--profile", "production"], &[]));
    for part in [
        "venue is the in-process sandbox",
        "payment provider is the sandbox",
        "custody provider is the sandbox",
        "KYC provider is the sandbox",
        "access-token key would be generated",
        "data key would be a generated file",
        "api.stripe_webhook_secret",
        "api.banxa_webhook_secret",
        "api.bcb_webhook_secret",
        "api.fireblocks_public_key_file",
        "store is the embedded file",
        "events go to the embedded log",
    ] {
        assert!(reason.contains(part), "{part:?} missing from: {reason}");
    }
    assert!(reason.starts_with("12 part(s)"), "{reason}");
}

#[test]
fn production_with_every_real_setting_still_names_the_sandbox_providers() {
    // The webhook secrets from the file, the rest from the environment.
    let file = toml_file(
        "profile = \"production\"\n[api]\nstripe_webhook_secret = \"whsec_a\"\n\
         banxa_webhook_secret = \"b\"\nbcb_webhook_secret = \"c\"\n\
         fireblocks_public_key_file = \"/run/fireblocks.pem\"\n",
    );
    let reason = refusal(load(&["--config", path(&file)], REAL_PARTS));
    assert!(reason.starts_with("3 part(s)"), "{reason}");
    // The same from the environment alone (as the Terraform task passes
    // them), the secrets redacted when printed.
    let mut vars = REAL_PARTS.to_vec();
    vars.extend([
        ("NAX_PROFILE", "production"),
        ("NAX_STRIPE_WEBHOOK_SECRET", "whsec_env_secret_value"),
        ("NAX_BANXA_WEBHOOK_SECRET", "banxa_env_secret_value"),
        ("NAX_BCB_WEBHOOK_SECRET", "bcb_env_secret_value"),
        ("NAX_FIREBLOCKS_PUBLIC_KEY_FILE", "/run/fireblocks.pem"),
    ]);
    let mut development = vars.clone();
    development.retain(|(k, _)| *k != "NAX_PROFILE");
    let config = load(&[], &development).unwrap();
    assert_eq!(config.stand_ins().len(), 3, "{:?}", config.stand_ins());
    let printed = config.redacted();
    assert!(!printed.contains("env_secret_value"), "{printed}");
    let reason = refusal(load(&[], &vars));
    assert!(reason.starts_with("3 part(s)"), "{reason}");
    for provider in ["payment", "custody", "KYC"] {
        assert!(reason.contains(&format!("the {provider} provider is the sandbox")));
    }
    // The same settings in development are accepted as they are.
    let mut vars = REAL_PARTS.to_vec();
    vars.push(("NAX_PROFILE", "development"));
    let config = load(&["--config", path(&file)], &vars).unwrap();
    assert_eq!(config.profile, Profile::Development);
    assert_eq!(config.stand_ins().len(), 3);
}

#[test]
fn an_unknown_profile_is_refused() {
    let err = load(&[], &[("NAX_PROFILE", "prod")]).unwrap_err();
    assert!(err.to_string().contains("NAX_PROFILE"), "{err}");
}

#[path = "tests_providers.rs"]
mod providers;

#[path = "tests_venues.rs"]
mod venues;

//! The one configuration type of the `nax-hub` binary, and how it is loaded.
//!
//! Values are layered, later layers winning: built-in defaults, then an
//! optional TOML file (`--config FILE`, or its text in `NAX_CONFIG_TOML`),
//! then `NAX_*` environment variables,
//! then command-line flags (docs/ARCHITECTURE.md, "Configuration"). Mistakes fail loudly
//! at start-up instead of being ignored: an unknown key in the file, an
//! unknown `NAX_*` variable and an out-of-range value are all errors that
//! name the offending key.
//!
//! Every flag is declared once, in [`Cli`], together with its environment
//! variable; that declaration is the list of known variables. Environment
//! values are parsed by the same clap parsers as flags, but from an explicit
//! list of variables handed to [`Config::load_from`], so tests never touch
//! the process environment.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

mod cli;
mod env;
mod error;
mod history;
mod http;
mod limits;
mod profile;
mod redact;
mod validate;
mod venue;
mod worker;

pub mod logging;

pub use cli::Cli;
pub use error::ConfigError;
pub use history::HistoryConfig;
pub use http::HttpConfig;
pub use limits::Limits;
pub use profile::Profile;
pub use venue::{
    connect_all, multi_venue, ConnectedVenue, VenueConfig, VenueEntry, VenueKind, MAX_VENUES,
};
pub use worker::WorkerConfig;

/// Prefix of every environment variable the hub reads.
pub const ENV_PREFIX: &str = "NAX_";

/// `NAX_*` variables that are not configuration but are still allowed:
/// the log filter (read by the logging set-up) and anything starting with
/// [`TEST_ENV_PREFIX`].
pub const LOG_ENV: &str = "NAX_LOG";

/// The text of a config file given in the environment instead of a file
/// (`--config`), e.g. a whole TOML with `[[venues]]` kept in Secrets
/// Manager and injected by ECS as this variable.
pub const CONFIG_TOML_ENV: &str = "NAX_CONFIG_TOML";

/// Prefix of `NAX_*` variables reserved for tests; never an error.
pub const TEST_ENV_PREFIX: &str = "NAX_TEST_";

/// Largest config file read (see docs/SECURITY.md, "Input bounds"); a
/// real one is a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Everything the hub needs to start. Built by [`Config::load`]; validated,
/// so every field is within the documented range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `development` (default) or `production`: the latter refuses to
    /// start while any part is a stand-in ([`Config::stand_ins`]).
    pub profile: Profile,
    /// Address the WebSocket listener binds to.
    pub bind: IpAddr,
    /// Port of the WebSocket listener; 0 means "any free port" (tests).
    pub port: u16,
    /// Directory for persisted data (history snapshots).
    #[serde(serialize_with = "redact::serialize_path_lossy")]
    pub data_dir: PathBuf,
    /// Where market data comes from.
    pub venue: VenueConfig,
    /// Several venues at once, each owning its pairs (TOML `[[venues]]`,
    /// docs/ARCHITECTURE.md "Several venues"); when given, `[venue]` must
    /// stay the default.
    pub venues: Vec<VenueEntry>,
    /// Per-connection and per-process limits (docs/PROTOCOL.md, "Heartbeats and
    /// limits").
    pub limits: Limits,
    /// How much recent trade history is kept per channel.
    pub history: HistoryConfig,
    /// The HTTP server's connection limits and trusted proxies (TOML
    /// section `[http]`).
    pub http: HttpConfig,
    /// The REST API (TOML section `[api]`; secrets print as `<redacted>`).
    pub api: api::ApiConfig,
    /// The queue consumers (TOML section `[worker]`; the token prints as
    /// `<redacted>`).
    pub worker: WorkerConfig,
    /// On shutdown, how long connections get to flush before being dropped.
    pub shutdown_drain_ms: u64,
    /// Sent to clients in the `shutdown` message: when to reconnect.
    pub reconnect_after_ms: u64,
    /// Browser origins (`scheme://host[:port]`) allowed to open `/ws`
    /// besides the hub's own; `["*"]` allows any. Requests without an
    /// `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// `json` or `text` log lines; unset: JSON unless standard output is a
    /// terminal (docs/OPERATIONS.md, "Logs").
    pub log_format: Option<logging::LogFormat>,
    /// Base URL of an OTLP/HTTP receiver (e.g. `http://127.0.0.1:4318`)
    /// to send traces to; unset: no traces (docs/OPERATIONS.md, "Traces").
    pub otlp_endpoint: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            data_dir: PathBuf::from("./data"),
            venue: VenueConfig::default(),
            venues: Vec::new(),
            limits: Limits::default(),
            history: HistoryConfig::default(),
            http: HttpConfig::default(),
            api: api::ApiConfig::default(),
            worker: WorkerConfig::default(),
            shutdown_drain_ms: 5_000,
            reconnect_after_ms: 1_000,
            allowed_origins: Vec::new(),
            log_format: None,
            otlp_endpoint: None,
        }
    }
}

impl Config {
    /// Loads the configuration from the process's command line and `NAX_*`
    /// environment variables (and the file they name).
    ///
    /// Like `clap::Parser::parse`, this prints usage errors, `--help` and
    /// `--version` and exits the process; other errors are returned.
    pub fn load() -> anyhow::Result<Config> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("environment variable {name} is not valid UTF-8"))?;
            env.push((name.to_owned(), value));
        }
        match Self::load_from(std::env::args_os(), env) {
            Err(e) => match e.downcast::<clap::Error>() {
                Ok(clap_error) => clap_error.exit(),
                Err(e) => Err(e),
            },
            ok => ok,
        }
    }

    /// Loads the configuration from explicit arguments (the first is the
    /// program name) and environment variables, without reading the process
    /// environment. Variables not starting with `NAX_` are ignored.
    ///
    /// Errors: clap errors (including `--help`, as [`clap::Error`]), an
    /// unreadable or invalid file, an unknown variable or an invalid value
    /// ([`ConfigError`]).
    pub fn load_from<A, T>(
        args: A,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config>
    where
        A: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let cli = env::parse_cli(&args, &env)?;

        let inline = env.iter().find(|(name, _)| name == CONFIG_TOML_ENV);
        let mut config = match (&cli.config, inline) {
            (Some(_), Some(_)) => anyhow::bail!(
                "give the config as a file (--config, NAX_CONFIG) or as text ({CONFIG_TOML_ENV}), not both"
            ),
            (Some(path), None) => Self::from_file(path)?,
            (None, Some((_, text))) => {
                Self::from_toml(text).with_context(|| format!("parsing {CONFIG_TOML_ENV}"))?
            }
            (None, None) => Config::default(),
        };
        config.apply(cli);
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file; missing keys keep their defaults, unknown keys are
    /// errors. A file over [`MAX_FILE_BYTES`] is refused without being
    /// read whole.
    fn from_file(path: &Path) -> anyhow::Result<Config> {
        use std::io::Read as _;
        let reading = || format!("reading config file {}", path.display());
        let file = std::fs::File::open(path).with_context(reading)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .with_context(reading)?;
        Self::from_toml(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Parses the text of a config file (no other layer, not validated:
    /// see [`Config::validate`]). Text over [`MAX_FILE_BYTES`] is refused
    /// before the TOML parser reads it; the parser bounds nesting itself
    /// (`recursion limit exceeded` past 80 levels of arrays, inline tables
    /// or dotted keys, whatever the stack).
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        if text.len() > MAX_FILE_BYTES {
            anyhow::bail!("larger than {MAX_FILE_BYTES} bytes");
        }
        Ok(toml::from_str(text)?)
    }
}

#[cfg(test)]
mod tests;

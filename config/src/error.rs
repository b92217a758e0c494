//! Why a configuration that loaded cannot be used: a value out of range,
//! an unparsable or unknown `NAX_*` variable.

/// A configuration that loaded but cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A value is outside its allowed range; `key` is its TOML path
    /// (e.g. `limits.max_frame_bytes`).
    #[error("invalid configuration: {key} = {value}: {reason}")]
    Invalid {
        /// Dotted TOML path of the offending key.
        key: &'static str,
        /// The rejected value, as given.
        value: String,
        /// What the value must be.
        reason: String,
    },
    /// A `NAX_*` environment variable whose value does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// A `NAX_*` environment variable the hub does not know (likely a typo).
    #[error("unknown environment variable {name}; known: {known}")]
    UnknownEnv {
        /// The unknown variable.
        name: String,
        /// Comma-separated list of the known variables.
        known: String,
    },
}

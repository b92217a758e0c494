//! Merging `NAX_*` environment variables into the command line: each
//! variable becomes its flag unless the flag is given, an unknown `NAX_*`
//! variable is an error, and an unparsable value names its variable.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};

use super::{Cli, ConfigError, CONFIG_TOML_ENV, LOG_ENV, TEST_ENV_PREFIX};

/// Parses the command line, filling flags that are absent from their
/// environment variables in `env`, and rejects unknown `NAX_*` variables.
pub(super) fn parse_cli(args: &[OsString], env: &[(String, String)]) -> anyhow::Result<Cli> {
    let full = Cli::command();
    // (argument id, long flag, variable) for every flag with a variable.
    let bindings: Vec<(String, String, String)> = full
        .get_arguments()
        .filter_map(|arg| {
            let var = arg.get_env()?.to_str()?;
            let long = arg.get_long()?;
            Some((arg.get_id().to_string(), long.to_owned(), var.to_owned()))
        })
        .collect();
    // Parse flags with a command that does not read the process environment.
    let no_env = || Cli::command().mut_args(|arg| arg.env(None));
    let matches = match no_env().try_get_matches_from(args) {
        Ok(matches) => matches,
        // Render help with the full command, which lists each flag's
        // variable (but never its current value).
        Err(e) if is_display(&e) => {
            let help = full.mut_args(|arg| arg.hide_env_values(true));
            return Err(help.try_get_matches_from(args).err().unwrap_or(e).into());
        }
        Err(e) => return Err(e.into()),
    };
    check_env_names(env, &bindings)?;

    // Each variable whose flag is absent becomes that flag, placed before
    // the user's arguments (so a trailing `--` cannot swallow it).
    let program = args.first().cloned().unwrap_or_else(|| "nax-hub".into());
    let mut merged = vec![program.clone()];
    for (name, value) in env {
        let Some((id, long, _)) = bindings.iter().find(|(_, _, var)| var == name) else {
            continue;
        };
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = OsString::from(format!("--{long}={value}"));
        // Parse alone first so that an error names the variable.
        if let Err(e) = no_env().try_get_matches_from([program.clone(), flag.clone()]) {
            return Err(ConfigError::Env {
                name: name.clone(),
                value: value.clone(),
                reason: clap_reason(&e),
            }
            .into());
        }
        merged.push(flag);
    }
    merged.extend(args.iter().skip(1).cloned());
    let matches = no_env().try_get_matches_from(&merged)?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// Fails on the first `NAX_*` variable that is neither bound to a flag nor
/// reserved ([`LOG_ENV`], [`CONFIG_TOML_ENV`], [`TEST_ENV_PREFIX`]).
fn check_env_names(
    env: &[(String, String)],
    bindings: &[(String, String, String)],
) -> Result<(), ConfigError> {
    let is_known = |name: &str| {
        name == LOG_ENV
            || name == CONFIG_TOML_ENV
            || name.starts_with(TEST_ENV_PREFIX)
            || bindings.iter().any(|(_, _, var)| var == name)
    };
    match env.iter().find(|(name, _)| !is_known(name)) {
        None => Ok(()),
        Some((name, _)) => {
            let mut known: Vec<&str> = bindings.iter().map(|(_, _, var)| var.as_str()).collect();
            known.extend([LOG_ENV, CONFIG_TOML_ENV]);
            Err(ConfigError::UnknownEnv {
                name: name.clone(),
                known: known.join(", "),
            })
        }
    }
}

/// The first line of a clap error without its `error: ` prefix.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Whether a clap "error" is really a request for help or version text.
fn is_display(e: &clap::Error) -> bool {
    use clap::error::ErrorKind;
    matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
}

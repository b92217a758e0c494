//! The hub's config file: `hub::config::Config::from_toml`.
//!
//! Invariants: a config that parses also validates or refuses without
//! panicking and prints redacted; written back as TOML it parses again to
//! the same text (secrets print as `<redacted>`, so the comparison is of
//! the written text, after one round).
#![no_main]

use hub::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    let _ = config.validate();
    let _ = config.redacted();
    let Ok(written) = toml::to_string(&config) else {
        return;
    };
    let again = Config::from_toml(&written)
        .unwrap_or_else(|e| panic!("written config does not parse: {e:#}\n{written}"));
    let rewritten = toml::to_string(&again).expect("a parsed config writes");
    assert_eq!(written, rewritten);
});

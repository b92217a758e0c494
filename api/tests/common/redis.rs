//! Redis for tests: the shared server and servers of a test's own
//! ([`testkit`]), and key prefixes that keep test runs apart.

#[allow(unused_imports)] // not every test uses every one
pub use testkit::{free_port, OwnServer, SHARED_REDIS};

/// A key prefix no other test run uses.
pub fn fresh_prefix(what: &str) -> String {
    format!("nax:test:{what}:{}:", uuid::Uuid::new_v4().simple())
}

//! `nax-worker`: not built yet.
fn main() {}

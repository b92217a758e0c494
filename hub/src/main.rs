//! `nax-hub`: reads the configuration, starts the hub, waits for SIGINT or
//! SIGTERM, shuts down gracefully. `nax-hub healthcheck` is the container's
//! health probe ([`hub::healthcheck`]).

/// mimalloc instead of glibc's malloc: the order flow spent ~14 % of its
/// samples in `malloc`/`free` (docs/BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    hub::process::main()
}

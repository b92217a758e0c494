# syntax=docker/dockerfile:1.7
#
# NA-X Stream: one image with the three binaries, nax-hub (the default
# command), nax-worker and nax-venue (docs/CONTAINER.md).
#
#   docker build -t nax-stream .
#   docker run --read-only -p 8080:8080 -v nax-data:/data nax-stream
#   docker run --read-only -v nax-worker:/data nax-stream nax-worker all
#   docker run --read-only -e NAX_VENUE_TOKEN=dev -p 9090:9090 nax-stream \
#     nax-venue --bind 0.0.0.0 --port 9090
#
# The dependency layer is cached with cargo-chef (from crates.io), not the
# "build a dummy main first" trick: the workspace has eleven crates with
# libraries, binaries, benches and tests, and the trick would need a stub
# for every target of every one, kept in step with each Cargo.toml by
# hand; cargo-chef derives the skeleton from the manifests (its recipe
# changes only when a manifest or Cargo.lock does), so editing Rust code
# rebuilds our crates and nothing below them.
#
# Base images are pinned by tag and digest. The digests were read from
# public Dockerfiles that pin the same tags, not from the registries
# (this machine reaches none): the first `docker build` with network
# access confirms them; to move to a newer image, change tag and digest
# together.

# --- chef: the toolchain with cargo-chef -----------------------------------
# Debian 12 (bookworm), like the runtime image, so the binaries link
# against the glibc they run with. The Rust version is the one the
# workspace is developed and tested with (rust-version in Cargo.toml is
# the minimum).
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# --- planner: the recipe (manifests and Cargo.lock only) ------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- builder: dependencies from the recipe, then the workspace ------------
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The packages of the three binaries, the same in cook and build, so the
# dependencies cook compiles (features resolved for these packages, the
# production profile of Cargo.toml) are the ones build reuses.
RUN cargo chef cook --profile production --locked --recipe-path recipe.json \
      -p hub -p worker -p sandbox-venue
COPY . .
RUN cargo build --profile production --locked -p hub -p worker -p sandbox-venue \
      --bin nax-hub --bin nax-worker --bin nax-venue \
 && install -d -m 0755 /out/bin \
 && install -m 0755 target/production/nax-hub target/production/nax-worker \
      target/production/nax-venue /out/bin/ \
 && install -d -m 0700 /out/data

# --- runtime: distroless, non-root, read-only root file system ------------
# cc-debian12: glibc, libgcc, ca-certificates and tzdata, no shell and no
# package manager. `nonroot` runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="nax-stream" \
      org.opencontainers.image.description="NA-X Stream: order-book cache, WebSocket fan-out and REST API (nax-hub), queue consumers (nax-worker), sandbox venue (nax-venue)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/bin/ /usr/local/bin/
# The data directory (NAX_DATA_DIR): the only place the services write.
# Made 0700 and owned by the service's user here, so a volume mounted on
# it starts with that owner and mode (Docker copies them into an empty
# named volume; ECS into the task's bind volume). A tmpfs needs them as
# mount options: --tmpfs /data:uid=65532,gid=65532,mode=0700 (the
# default tmpfs mode 1777 has the sticky bit, which the services refuse
# for a data directory).
COPY --from=builder --chown=65532:65532 /out/data /data

# Listen on every interface of the container (the hub's default is
# 127.0.0.1), on 8080, with state under /data. NAX_* variables set at run
# time win; nax-worker reads the same configuration (it ignores the
# listener), nax-venue only NAX_VENUE_TOKEN (its address is --bind/--port).
ENV NAX_BIND=0.0.0.0 \
    NAX_PORT=8080 \
    NAX_DATA_DIR=/data

# Writes go to the volume: with `--read-only` the rest of the file system
# stays read-only. Without a volume given, Docker makes an anonymous one.
VOLUME ["/data"]
USER 65532:65532
# nax-hub: 8080 (HTTP, WebSocket, /health, /ready, /metrics);
# nax-worker: 9100 (/health, /ready, /metrics, on 127.0.0.1 by default);
# nax-venue: 9090 (GraphQL).
EXPOSE 8080 9090 9100
# nax-hub drains its connections on SIGTERM (NAX_SHUTDOWN_DRAIN_MS).
STOPSIGNAL SIGTERM

# No shell and no curl here: the probe is the hub binary itself. Liveness
# only, like the ECS task's check (infra/terraform/ecs.tf): /ready also
# reports an upstream outage, which a restart cannot fix. For the worker
# and the venue, override it with --url (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["nax-hub", "healthcheck"]

CMD ["nax-hub"]

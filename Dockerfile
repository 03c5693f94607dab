# syntax=docker/dockerfile:1
#
# lms-realtime container image.
#
#   docker build -t lms-realtime .
#   docker run -e JWT_SECRET=... -e REDIS_URL=redis://redis:6379 -p 3000:3000 lms-realtime
#   (TLS to Redis: REDIS_URL=rediss://... and, for a private CA, -v ca.pem:/ca.pem:ro
#    -e REDIS_TLS_CA_FILE=/ca.pem)
#
# Stage 1 builds the dependencies alone from Cargo.toml + Cargo.lock with stub sources,
# so that editing src/ rebuilds only our crate (the dependency layer stays cached until
# the manifest or the lock file changes). No tool beyond cargo is downloaded for this.
# Stage 2 is debian:bookworm-slim with the binary, a non-root user and nothing else.
# All configuration comes from the environment (PROTOCOL.md section 7).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /build

# --- dependency layer --------------------------------------------------------------
COPY deploy/docker/strip-manifest.awk /usr/local/share/lms/strip-manifest.awk
COPY Cargo.toml Cargo.lock ./
# The load generator is the workspace's other member: cargo needs its manifest to load the
# workspace (and Cargo.lock to stay --locked), never its sources; a stub stands in for them.
COPY benches/loadgen/Cargo.toml ./benches/loadgen/Cargo.toml
# The patched socketioxide (docs/vendor.md), a path dependency through [patch.crates-io].
COPY vendor ./vendor
# Stub lib and bins. Targets other than the lib and the lms-realtime binary (benches,
# tests, examples) are dropped from this copy of the manifest: their files are not in the
# build context. Dev-dependencies are not built.
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && echo 'fn main() {}' > benches/loadgen/loadgen.rs \
 && awk -f /usr/local/share/lms/strip-manifest.awk Cargo.toml > Cargo.toml.deps \
 && mv Cargo.toml.deps Cargo.toml \
 && cargo build --release --locked -p lms-realtime --bin lms-realtime \
 && rm -rf src target/release/lms-realtime* target/release/deps/lms_realtime-* target/release/deps/liblms_realtime-* \
           target/release/.fingerprint/lms-realtime-*

# --- our crate ---------------------------------------------------------------------
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# COPY keeps the context's mtimes, which may be older than the stubs': touch so that
# cargo sees the real sources as changed.
RUN touch src/main.rs src/lib.rs \
 && awk -f /usr/local/share/lms/strip-manifest.awk Cargo.toml > Cargo.toml.bin \
 && mv Cargo.toml.bin Cargo.toml \
 && cargo build --release --locked -p lms-realtime --bin lms-realtime \
 && install -D -m 0755 target/release/lms-realtime /out/lms-realtime

# --- runtime -----------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: the system roots, for key sets over https (JWT_JWKS_URL, JWT_ISSUERS),
# for rediss:// to a Redis whose certificate a public CA signed (a private CA is mounted
# and named by REDIS_TLS_CA_FILE; docs/operations.md "TLS to Redis"), and for an https
# OTLP trace collector. TLS is rustls, built in: no OpenSSL. Nothing else: the health
# check uses bash's /dev/tcp instead of curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lms \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lms

COPY --from=build /out/lms-realtime /usr/local/bin/lms-realtime
COPY deploy/docker/healthcheck.sh /usr/local/bin/lms-healthcheck

ENV PORT=3000 \
    HOST=0.0.0.0 \
    RUST_LOG=info \
    LOG_FORMAT=json

# Numeric user so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
EXPOSE 3000

# /healthz: the process is alive (readiness, /readyz, is for load balancers and k8s).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/lms-healthcheck"]

# SIGTERM starts the graceful drain (DRAIN_TIMEOUT_SECS, default 20 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/lms-realtime"]

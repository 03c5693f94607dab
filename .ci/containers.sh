#!/usr/bin/env bash
# The container image and the compose stack, run for real (CI step). The rest of CI
# only validates Dockerfile and docker-compose.yml offline; this builds the Dockerfile's
# runtime stage, unchanged, around the binary the tests built (LMS_CI_IMAGE_BUILD=full:
# the whole unchanged Dockerfile, release build included), runs one node from the image
# (health check, user, drain) and
# then the compose stack without Grafana: Redis, three nodes in cluster mode, nginx,
# Prometheus, driven through nginx by the official socket.io-client, with one node
# stopped mid-test.
#
# No image registry is reachable on the CI machines, so the images the Dockerfile and
# docker-compose.yml pull are stood in for by local builds from Debian packages and the
# host's Rust toolchain (.ci/containers/*.Containerfile), under the names the files use.
# They are built only when absent: a warm run reuses them. Installs podman and friends
# (apt) and podman-compose (PyPI, in a venv) when missing. Every wait is bounded; the
# first failure stops the step, names it and shows the containers' logs; nothing is left
# running (the stack is taken down in a trap). docs/operations.md, "The image and the
# compose stack in CI", says what this covers and what it does not.
#
#   bash .ci/containers.sh          # as root (podman, apt); ~4 min cold, ~1 min warm
#   LMS_CI_IMAGE_BUILD=full bash .ci/containers.sh   # + the release build: ~18 min cold
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS

export PATH="$PATH:/usr/sbin:/sbin"
export CONTAINERS_CONF="$ROOT/.ci/containers/containers.conf"
CACHE=${LMS_CI_CACHE:-/var/cache/lms-realtime-ci}
VENV="$CACHE/podman-compose-venv"
PODMAN_COMPOSE_VERSION=1.6.0
PROJECT=lms-ci
SINGLE=lms-ci-single
COMPOSE_FILES=(-f docker-compose.yml -f docker-compose.low-nofile.yml)
SERVICES=(redis node1 node2 node3 lb prometheus) # all but grafana: no image for it here
NODES=(node1 node2 node3)
GATEWAY_IMAGE=lms-realtime:local # docker-compose.yml's name for the Dockerfile's image
# prebuilt (default): the Dockerfile's runtime stage around the binary the tests built, the
# build stage's inputs checked without compiling (deploy/docker/check-build-stage.sh); full:
# the unchanged Dockerfile, release build in the container (~14 min cold on 2 cores).
IMAGE_BUILD=${LMS_CI_IMAGE_BUILD:-prebuilt}
case "$IMAGE_BUILD" in prebuilt | full) ;; *) echo "LMS_CI_IMAGE_BUILD: prebuilt or full, not $IMAGE_BUILD" >&2; exit 2 ;; esac
DRAIN_SECS=10                    # for the single-node drain check
WORK=$(mktemp -d /tmp/lms-ci-containers-XXXXXX)

STEP="setup"
step() { STEP=$1; echo "== containers: $1 ($((SECONDS - T0)) s)"; }

# Container logs, with the run's JWT secret masked (compose's own output echoes env).
mask() { if [ -n "${JWT_SECRET:-}" ]; then sed "s/${JWT_SECRET}/***/g"; else cat; fi; }
project_containers() {
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' 2>/dev/null || true
}
dump_logs() {
  local c
  for c in $SINGLE $(project_containers); do
    podman container exists "$c" 2>/dev/null || continue
    echo "---- $c: $(podman inspect --format '{{.State.Status}} exit={{.State.ExitCode}}' "$c" 2>/dev/null); last 40 log lines"
    timeout 20 podman logs --tail 40 "$c" 2>&1 | mask | uniq | cut -c1-400 | sed 's/^/     | /' || true
  done
  if [ -s "$WORK/compose.log" ]; then
    echo "---- podman-compose output (last 30 lines)"
    tail -30 "$WORK/compose.log" | mask | sed 's/^/     | /'
  fi
}
fail() {
  trap - ERR
  echo "FAIL containers [$STEP]: $*" >&2
  dump_logs >&2
  exit 1
}
on_error() {
  local rc=$?
  trap - ERR
  echo "FAIL containers [$STEP] (exit $rc, after $((SECONDS - T0)) s)" >&2
  dump_logs >&2
  exit "$rc"
}
trap on_error ERR

compose() { # compose TIMEOUT_SECS ARGS...: podman-compose for this project, bounded
  local t=$1; shift
  timeout --kill-after=10 "$t" "$VENV/bin/podman-compose" -p "$PROJECT" "${COMPOSE_FILES[@]}" "$@"
}

# Everything this step may have started, also what an interrupted earlier run left.
cleanup() {
  timeout 60 podman rm -f -t 5 "$SINGLE" >/dev/null 2>&1 || true
  if [ -x "$VENV/bin/podman-compose" ]; then
    compose 120 down -v -t 30 >>"$WORK/compose-down.log" 2>&1 || true
  fi
  local c
  for c in $(project_containers); do timeout 60 podman rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  timeout 30 podman pod rm -f "pod_$PROJECT" >/dev/null 2>&1 || true
  timeout 30 podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
  local v
  for v in $(podman volume ls -q --filter "label=io.podman.compose.project=$PROJECT" 2>/dev/null); do
    timeout 30 podman volume rm -f "$v" >/dev/null 2>&1 || true
  done
}
on_exit() {
  local rc=$?
  trap - ERR
  command -v podman >/dev/null 2>&1 && cleanup
  rm -rf "$WORK"
  exit "$rc"
}
trap on_exit EXIT

# Polls COMMAND... every second until it succeeds or SECS pass.
wait_for() { # wait_for SECS WHAT COMMAND...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >"$WORK/wait.log" 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      sed 's/^/     | /' "$WORK/wait.log" | mask | tail -20 >&2
      fail "timed out after ${secs} s waiting for $what"
    fi
    sleep 1
  done
}

free_port() { # free_port LOW: the first port from LOW on that nothing listens on. Callers
  # pick ports below the kernel's ephemeral range (32768 on): a port there may be a live
  # client connection's local port, which a listener cannot bind though nothing listens.
  local p
  for ((p = $1; p < $1 + 100; p++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  fail "no free port in $1..$(($1 + 99))"
}

# GET PATH on a container's own port 3000, from inside it (bash's /dev/tcp: the image
# has no curl, and the compose nodes publish no port). Prints status line and body.
in_container_get() { # in_container_get CONTAINER PATH
  timeout 15 podman exec "$1" bash -c '
    exec 3<>/dev/tcp/127.0.0.1/3000 || exit 1
    printf "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" "$1" >&3
    timeout 5 cat <&3' _ "$2"
}

# ------------------------------------------------------------------ tools

step "tools"
need=()
for t in podman:podman buildah:buildah runc:runc conmon:conmon debootstrap:debootstrap \
  newuidmap:uidmap fuse-overlayfs:fuse-overlayfs slirp4netns:slirp4netns iptables:iptables \
  curl:curl jq:jq; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${need[*]}; run as root or install them"
  echo "installing ${need[*]}"
  timeout 600 apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! "$VENV/bin/podman-compose" --version 2>/dev/null | grep -q "podman-compose version $PODMAN_COMPOSE_VERSION"; then
  echo "installing podman-compose $PODMAN_COMPOSE_VERSION (PyPI, venv in $VENV)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION"
fi
# A bridge left by CNI (podman's default backend before containers.conf says netavark)
# breaks the containers' egress.
if ip link show cni-podman0 >/dev/null 2>&1; then ip link delete cni-podman0; fi
cleanup # leftovers of an interrupted run

# ------------------------------------------------------------------ base images

step "base images (stand-ins for the registry's)"
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
debian_release=$(sed -n 's/^ARG DEBIAN_RELEASE=//p' Dockerfile)
[ -n "$rust_version" ] && [ -n "$debian_release" ] || fail "Dockerfile: ARG RUST_VERSION / DEBIAN_RELEASE not found"
DEBIAN_IMAGE="docker.io/library/debian:${debian_release}-slim"
RUST_IMAGE="docker.io/library/rust:${rust_version}-${debian_release}"

if ! podman image exists "$DEBIAN_IMAGE"; then
  # The host's own Debian mirror, as apt on the host uses it.
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "building $DEBIAN_IMAGE with debootstrap from $mirror"
  rootfs="$WORK/rootfs"
  timeout 900 debootstrap --variant=minbase "$debian_release" "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -30 "$WORK/debootstrap.log"; fail "debootstrap"; }
  # apt inside the image uses the host's sources (same mirror, -updates, -security) and
  # settings; maintainer scripts must not start daemons during image builds.
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    rm -f "$rootfs/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/"
  fi
  printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' >"$rootfs/etc/apt/apt.conf.d/99check-valid"
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | timeout 300 podman import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# A stand-in is rebuilt when its recipe changes: the Containerfiles and files beside
# them, and EXTRA (the host toolchain's version for the Rust one), hashed into a label.
standin() { # standin IMAGE CONTAINERFILE EXTRA [podman build args...] CONTEXT
  local image=$1 file=$2 extra=$3; shift 3
  local recipe
  recipe=$( (cat "$ROOT/.ci/containers/$file" "$ROOT"/.ci/containers/*.sh; echo "$extra") | sha256sum | cut -c1-16)
  if [ "$(podman image inspect --format '{{index .Labels "lms.ci.recipe"}}' "$image" 2>/dev/null)" = "$recipe" ]; then
    return 0
  fi
  echo "building stand-in $image from .ci/containers/$file"
  timeout 1200 podman build --pull=never -q --label "lms.ci.recipe=$recipe" -f "$ROOT/.ci/containers/$file" -t "$image" "$@" \
    >"$WORK/standin.log" 2>&1 || { tail -40 "$WORK/standin.log"; fail "building $image"; }
}

if [ "$IMAGE_BUILD" = full ]; then
  host_rust=$(rustc --version | awk '{print $2}')
  case "$host_rust" in
    "$rust_version" | "$rust_version".*) ;;
    *) echo "warning: the host's Rust is $host_rust, the Dockerfile asks for $rust_version; $RUST_IMAGE stands in with $host_rust" >&2 ;;
  esac
  mkdir -p "$WORK/rust-ctx"
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/rust-ctx/"
  standin "$RUST_IMAGE" rust.Containerfile "$(rustc -vV)" -v "$(rustc --print sysroot):/host-toolchain:ro" "$WORK/rust-ctx"
fi

# The compose file's images, by the names it uses (docker.io/ when unqualified).
while read -r image; do
  case "$image" in
    redis:*) file=redis.Containerfile ;;
    nginx:*) file=nginx.Containerfile ;;
    prom/prometheus:*) file=prometheus.Containerfile ;;
    *) continue ;; # the gateway (built below) and grafana (not run)
  esac
  case "$image" in */*) full="docker.io/$image" ;; *) full="docker.io/library/$image" ;; esac
  standin "$full" "$file" "" "$ROOT/.ci/containers"
done < <(sed -n 's/^ *image: *//p' docker-compose.yml)

# ------------------------------------------------------------------ the gateway image

# --format docker: the OCI format has no HEALTHCHECK. Layers are cached between runs.
if [ "$IMAGE_BUILD" = full ]; then
  step "podman build of the unchanged Dockerfile"
  timeout 1800 podman build --pull=never --format docker -t "$GATEWAY_IMAGE" -f Dockerfile . >"$WORK/build.log" 2>&1 ||
    { tail -60 "$WORK/build.log"; fail "podman build"; }
else
  step "podman build of the Dockerfile's runtime stage around the host-built binary"
  # The binary alone, as the e2e suites run it (a no-op after .ci/test): built with the
  # test targets, feature unification would link OpenSSL, which the image does not have.
  cargo build --bin lms-realtime >"$WORK/cargo.log" 2>&1 || { tail -30 "$WORK/cargo.log"; fail "cargo build"; }
  bin=$ROOT/target/debug/lms-realtime
  if ldd "$bin" | grep -q 'libssl\|libcrypto'; then fail "the gateway binary links OpenSSL (the image has rustls only)"; fi
  # The build stage's inputs still resolve: the stripped manifest against Cargo.lock.
  bash "$ROOT/deploy/docker/check-build-stage.sh" >"$WORK/build-stage.log" 2>&1 ||
    { tail -30 "$WORK/build-stage.log"; fail "the Dockerfile's build stage inputs"; }
  ctx="$WORK/image-ctx"
  mkdir -p "$ctx/deploy/docker"
  objcopy --strip-debug "$bin" "$ctx/lms-realtime"
  cp deploy/docker/healthcheck.sh "$ctx/deploy/docker/"
  # The Dockerfile with its build stage replaced by the binary; the runtime stage verbatim.
  awk '
    /^FROM / && !seen_build { seen_build = 1; print "FROM scratch AS build"; print "COPY lms-realtime /out/lms-realtime"; skip = 1; next }
    /^FROM / && / AS runtime/ { skip = 0 }
    !skip { print }
  ' Dockerfile >"$ctx/Dockerfile"
  grep -q '^FROM .* AS runtime' "$ctx/Dockerfile" || fail "the Dockerfile has no 'AS runtime' stage"
  timeout 900 podman build --pull=never --format docker -t "$GATEWAY_IMAGE" -f "$ctx/Dockerfile" "$ctx" >"$WORK/build.log" 2>&1 ||
    { tail -60 "$WORK/build.log"; fail "podman build"; }
fi
healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$GATEWAY_IMAGE")
case "$healthcheck" in *lms-healthcheck*) ;; *) fail "the image has no HEALTHCHECK (got $healthcheck)" ;; esac

# ------------------------------------------------------------------ one node

step "one node from the image: /healthz, HEALTHCHECK, non-root, drain on SIGTERM"
JWT_SECRET="ci-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_SECRET
single_port=$(free_port 28300)
# No REDIS_URL: the single-node (in-memory) mode. The secret comes from the environment.
# (podman's stderr here is its complaint that without systemd it has no health-check timers.)
podman run -d --name "$SINGLE" --env JWT_SECRET -e NODE_ID=single -e DRAIN_TIMEOUT_SECS=$DRAIN_SECS \
  -p "127.0.0.1:$single_port:3000" "$GATEWAY_IMAGE" >/dev/null 2>"$WORK/podman-run.err" ||
  { cat "$WORK/podman-run.err"; fail "podman run"; }
wait_for 30 "/healthz on the published port" curl -fsS --max-time 2 "http://127.0.0.1:$single_port/healthz"
wait_for 20 "the image's HEALTHCHECK (podman healthcheck run)" timeout 15 podman healthcheck run "$SINGLE"
uid=$(timeout 15 podman exec "$SINGLE" id -u)
[ "$uid" != 0 ] || fail "the gateway runs as root inside the container"
echo "   healthy; uid inside is $uid"
t_stop=$SECONDS
timeout $((DRAIN_SECS + 30)) podman stop --time $((DRAIN_SECS + 20)) "$SINGLE" >/dev/null 2>"$WORK/podman-stop.err" ||
  { cat "$WORK/podman-stop.err"; fail "podman stop"; }
stop_secs=$((SECONDS - t_stop))
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$SINGLE")
podman logs "$SINGLE" >"$WORK/single.log" 2>&1
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM (expected 0)"
grep -q 'SIGTERM received' "$WORK/single.log" || fail "no 'SIGTERM received' log line"
grep -q 'draining: refusing new sockets' "$WORK/single.log" || fail "no drain log line"
grep -q '"stopped"' "$WORK/single.log" || fail "no 'stopped' log line"
[ "$stop_secs" -le "$DRAIN_SECS" ] || fail "stop took ${stop_secs} s, more than DRAIN_TIMEOUT_SECS=$DRAIN_SECS"
echo "   SIGTERM: drained and exited 0 in ${stop_secs} s"
timeout 60 podman rm -f "$SINGLE" >/dev/null 2>&1

# ------------------------------------------------------------------ the compose stack

step "compose stack up: ${SERVICES[*]}"
LB_HOST_PORT=$(free_port 28080)
PROM_HOST_PORT=$(free_port 29090)
# Loopback-only, high host ports: CI machines run other services on the standard ones.
export LB_PORT="127.0.0.1:$LB_HOST_PORT" PROMETHEUS_PORT="127.0.0.1:$PROM_HOST_PORT"
LB_URL="http://127.0.0.1:$LB_HOST_PORT"
PROM_URL="http://127.0.0.1:$PROM_HOST_PORT"
# podman 4.3 ignores `condition: service_healthy`, and `up` can hang if a container
# fails to start: bounded, and readiness is checked below.
compose 300 up -d --no-build "${SERVICES[@]}" >"$WORK/compose.log" 2>&1 ||
  fail "podman-compose up (exit $?)"
ctr() { echo "${PROJECT}_$1_1"; } # podman-compose's container names

step "compose stack ready: Redis, nodes in cluster mode, nginx"
wait_for 60 "redis health check" timeout 15 podman healthcheck run "$(ctr redis)"
for n in "${NODES[@]}"; do
  wait_for 60 "$n: the image's HEALTHCHECK" timeout 15 podman healthcheck run "$(ctr "$n")"
  wait_for 30 "$n: /readyz ready (Redis reachable)" bash -c \
    "$(declare -f in_container_get); in_container_get $(ctr "$n") /readyz | grep -q '\"status\":\"ready\"'"
  podman logs "$(ctr "$n")" >"$WORK/$n.log" 2>&1 || true
  grep -q 'gateway listening.*"cluster":true' "$WORK/$n.log" ||
    fail "$n did not start in cluster mode (no 'gateway listening' line with cluster=true)"
  [ "$(timeout 15 podman exec "$(ctr "$n")" id -u)" != 0 ] || fail "$n runs as root"
done
wait_for 60 "nginx health check (/lb-health)" timeout 15 podman healthcheck run "$(ctr lb)"
wait_for 30 "/readyz through nginx" curl -fsS --max-time 3 "$LB_URL/readyz"
echo "   3 nodes ready in cluster mode behind nginx on $LB_URL"

step "Prometheus: every node scraped, rules loaded"
wait_for 60 "Prometheus ready" curl -fsS --max-time 3 "$PROM_URL/-/ready"
# Targets from the API, whatever port the nodes are scraped on: each gateway node is a
# target and every active target is up (the first scrape comes within scrape_interval).
targets_up() {
  curl -fsS --max-time 5 "$PROM_URL/api/v1/targets?state=active" >"$WORK/targets.json" || return 1
  jq -r '.data.activeTargets[] | "\(.labels.instance) \(.health) \(.lastError)"' "$WORK/targets.json"
  local n
  for n in "${NODES[@]}"; do
    jq -e --arg n "$n" '[.data.activeTargets[] | select(.labels.instance | startswith($n + ":"))] | length == 1' \
      "$WORK/targets.json" >/dev/null || return 1
  done
  jq -e '(.data.activeTargets | length > 0) and all(.data.activeTargets[]; .health == "up")' "$WORK/targets.json" >/dev/null
}
wait_for 90 "every Prometheus target up" targets_up
curl -fsS --max-time 5 "$PROM_URL/api/v1/rules" >"$WORK/rules.json"
rules=$(jq '[.data.groups[].rules[]] | length' "$WORK/rules.json")
[ "$rules" -gt 0 ] || fail "Prometheus loaded no rules"
echo "   $(jq '.data.activeTargets | length' "$WORK/targets.json") targets up; $rules rules loaded"

step "socket.io-client through nginx: stickiness, delivery over websocket and polling, a node stopped"
if [ ! -d tests/e2e-lb/node_modules/socket.io-client ]; then
  (cd tests/e2e-lb && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# The test stops one node holding four of its clients with this command (SIGTERM: the
# drain) and writes the node's name to LMS_STOPPED_FILE.
LMS_LB_URL="$LB_URL" LMS_STOPPED_FILE="$WORK/stopped" \
  LMS_STOP_NODE_CMD="timeout 60 podman stop --time 40 ${PROJECT}_\${NODE}_1" \
  timeout 300 node tests/e2e-lb/compose-stack.mjs

step "the stopped node drained and exited 0"
victim=$(cat "$WORK/stopped")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$(ctr "$victim")")
[ "$exit_code" = 0 ] || fail "$victim exited $exit_code after SIGTERM (expected 0)"
# Logs go to a file first: with pipefail, `podman logs | grep -q` fails whenever grep
# stops reading early (podman then dies of SIGPIPE), whatever grep found.
podman logs "$(ctr "$victim")" >"$WORK/$victim.log" 2>&1 || true
grep -q 'draining: refusing new sockets' "$WORK/$victim.log" || fail "$victim logged no drain"

step "down"
trap - ERR
cleanup
echo "containers: passed in $((SECONDS - T0)) s"

#!/usr/bin/env bash
# Operations checks, offline (no container engine, no cluster): installs what is
# missing, then validates docker-compose, nginx, Prometheus config, alert rules (with
# unit tests), the Grafana dashboard and the Kubernetes overlays. Idempotent.
#
#   bash .ci/ops-checks.sh          # static checks (~30 s once the tools are installed)
#   bash .ci/ops-checks.sh --e2e    # also the load-balancer and metrics-name tests in
#                                   # tests/e2e-lb (needs the built gateway: LMS_BIN, or
#                                   # target/release/lms-realtime, or target/debug/...)
#   bash .ci/ops-checks.sh --e2e-only
#
# Ends with one line "ops-checks: N passed, N failed"; exits non-zero on any failure.

set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUN_STATIC=1
RUN_E2E=0
for arg in "$@"; do
  case "$arg" in
    --e2e) RUN_E2E=1 ;;
    --e2e-only) RUN_E2E=1; RUN_STATIC=0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d /tmp/lms-ops-checks-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- tools

export PATH="$PATH:/usr/sbin:/sbin"
apt_updated=0
apt_install() { # apt_install COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (for $1)"
  if [ $apt_updated = 0 ]; then apt-get update -qq >/dev/null && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

install_tools() {
  apt_install nginx nginx-light || return 1
  apt_install redis-server redis-server || return 1
  if [ $RUN_STATIC = 1 ]; then
    apt_install promtool prometheus || return 1
    apt_install docker-compose docker-compose || return 1
    if ! python3 -m kubernetes_validate --version >/dev/null 2>&1; then
      echo "installing kubernetes-validate (pip)"
      python3 -m pip install -q --disable-pip-version-check 'kubernetes-validate==1.37.*' || return 1
    fi
    command -v kubectl >/dev/null 2>&1 || { echo "kubectl (with built-in kustomize) is required and not installable from Debian" >&2; return 1; }
    (cd deploy/validate && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  fi
  if [ $RUN_E2E = 1 ]; then
    (cd tests/e2e-lb && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  fi
}

# ---------------------------------------------------------------- runner

passed=0
failed=0
failures=()
check() { # check NAME COMMAND... : output shown only on failure
  local name=$1; shift
  local log="$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9' '_').log"
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name"; sed 's/^/     | /' "$log" | tail -60
  fi
}

# ---------------------------------------------------------------- checks

compose_config() { docker-compose -f docker-compose.yml config -q; }

# The compose nginx config as nginx itself parses it: the node host names only exist
# inside compose's network, so a copy maps them to loopback; everything else is as shipped.
nginx_compose_config() {
  mkdir -p "$WORK/nginx" && cp deploy/nginx/*.conf "$WORK/nginx/" &&
    sed -i -E 's/\bnode[0-9]+:/127.0.0.1:/' "$WORK/nginx/lms-upstream-servers.conf" &&
    nginx -t -q -e "$WORK/nginx/error.log" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf"
}

promtool_config() { promtool check config deploy/prometheus/prometheus.yml; }
promtool_rules() { promtool check rules deploy/prometheus/rules/*.rules.yml; }
promtool_tests() { promtool test rules deploy/prometheus/tests/*.test.yml; }
prometheusrule_in_sync() { node deploy/validate/gen-prometheusrule.mjs --check; }
dashboard_in_sync() { node deploy/grafana/build-dashboard.mjs --check; }
dashboard_sanity() { node deploy/validate/check-dashboard.mjs; }

validate_overlay() { # validate_overlay NAME KUSTOMIZE_DIR
  local out="$WORK/k8s-$1.yaml"
  kubectl kustomize "$2" >"$out" || return 1
  # As a module: a pip-installed console script may not be on PATH (pyenv shims).
  python3 -m kubernetes_validate --strict --quiet --no-warn "$out" || return 1
  node deploy/validate/validate-manifests.mjs "$1" <"$out"
}

# The optional connections-based HPA component, on top of prod.
validate_hpa_component() {
  local d="$WORK/kc-hpa"; mkdir -p "$d"
  local rel; rel=$(realpath --relative-to="$d" "$ROOT/k8s")
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s/overlays/prod\ncomponents:\n  - %s/components/hpa-connections\n' "$rel" "$rel" >"$d/kustomization.yaml"
  validate_overlay prod+hpa-connections "$d" &&
    grep -q 'name: lms_socket_connections' "$WORK/k8s-prod+hpa-connections.yaml"
}

# The Dockerfile cannot be built here (no container engine). What can be checked:
# its dependency-layer trick yields a manifest cargo accepts with stub sources, and
# .dockerignore lets through everything the Dockerfile copies and src/ includes.
dockerfile_static() {
  local d="$WORK/docker-deps"; mkdir -p "$d/src" "$d/benches/loadgen"
  cp Cargo.toml Cargo.lock "$d/"
  cp benches/loadgen/Cargo.toml "$d/benches/loadgen/"
  ln -sfn "$ROOT/vendor" "$d/vendor"
  echo 'fn main() {}' >"$d/src/main.rs"; : >"$d/src/lib.rs"
  echo 'fn main() {}' >"$d/benches/loadgen/loadgen.rs"
  # The manifest filter the Dockerfile uses; every target left must be a stub file.
  grep -q 'strip-manifest.awk Cargo.toml' Dockerfile || { echo "Dockerfile no longer uses strip-manifest.awk"; return 1; }
  grep -q '^COPY benches/loadgen/Cargo.toml' Dockerfile || { echo "Dockerfile no longer copies the load generator's manifest (a workspace member)"; return 1; }
  awk -f deploy/docker/strip-manifest.awk Cargo.toml >"$d/Cargo.toml"
  # --locked: the stub workspace must resolve to the very Cargo.lock the image builds with
  # (dropping a member, say, would change it and fail the image build).
  cargo tree --offline --locked --depth 0 -p lms-realtime --manifest-path "$d/Cargo.toml" >/dev/null || return 1
  cargo metadata --offline --format-version 1 --no-deps --manifest-path "$d/Cargo.toml" >"$d/meta.json" || return 1
  node -e '
    const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const dir = process.argv[2];
    const gateway = m.packages.find((p) => p.name === "lms-realtime" && !p.source);
    const targets = gateway.targets;
    const bad = targets.filter((t) => !t.src_path.startsWith(dir + "/src/"));
    if (bad.length) { console.error("targets outside src/ left in the stub manifest:", bad.map((t) => t.name)); process.exit(1); }
    if (!targets.some((t) => t.kind.includes("bin") && t.name === "lms-realtime")) { console.error("stub manifest lost the lms-realtime binary"); process.exit(1); }
  ' "$d/meta.json" "$(realpath "$d")" || return 1
  # .dockerignore is an allow-list ("*" then "!path" lines): each copied path must be
  # allowed by one of them.
  local p pat ok
  for p in Cargo.toml Cargo.lock benches/loadgen/Cargo.toml src deploy/docker/healthcheck.sh deploy/docker/strip-manifest.awk; do
    ok=0
    while read -r pat; do
      [[ $pat == '!'* ]] || continue
      pat=${pat#!}; pat=${pat%/}
      if [[ $p == "$pat" || $p == "$pat"/* ]]; then ok=1; fi
    done <.dockerignore
    [ $ok = 1 ] || { echo ".dockerignore excludes $p"; return 1; }
  done
  # Files pulled in at compile time must be inside the build context (src/ only).
  node -e '
    const fs = require("fs"), path = require("path");
    const src = path.resolve("src"), bad = [];
    const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
      const f = path.join(d, e.name);
      if (e.isDirectory()) return walk(f);
      if (!f.endsWith(".rs")) return;
      const text = fs.readFileSync(f, "utf8");
      for (const m of text.matchAll(/include_(?:str|bytes)!\(\s*"([^"]+)"/g)) {
        const target = path.resolve(path.dirname(f), m[1]);
        if (!target.startsWith(src + path.sep)) bad.push(`${path.relative(".", f)}: ${m[1]}`);
      }
      for (const m of text.matchAll(/env!\(\s*"CARGO_MANIFEST_DIR"\s*\)\s*,\s*"\/?([^"]+)"/g)) {
        if (!m[1].startsWith("src/")) bad.push(`${path.relative(".", f)}: CARGO_MANIFEST_DIR/${m[1]}`);
      }
    });
    walk(src);
    if (bad.length) { console.error("compile-time includes outside src/ (add them to .dockerignore and a COPY in the Dockerfile):\n  " + bad.join("\n  ")); process.exit(1); }
  ' || return 1
  grep -q '^USER 10001' Dockerfile && grep -q '^HEALTHCHECK' Dockerfile && grep -q '^EXPOSE 3000' Dockerfile &&
    bash -n deploy/docker/healthcheck.sh
}

if ! install_tools; then
  echo "FAIL installing the tools"; echo "ops-checks: 0 passed, 1 failed"; exit 1
fi

if [ $RUN_STATIC = 1 ]; then
  check "docker-compose config" compose_config
  check "nginx -t (compose config)" nginx_compose_config
  check "promtool check config" promtool_config
  check "promtool check rules" promtool_rules
  check "promtool test rules (alert unit tests)" promtool_tests
  check "PrometheusRule generated from the rules file" prometheusrule_in_sync
  check "dashboard JSON generated from build-dashboard.mjs" dashboard_in_sync
  check "dashboard sanity (ids, grid, datasource, PromQL)" dashboard_sanity
  check "k8s overlay dev" validate_overlay dev k8s/overlays/dev
  check "k8s overlay prod" validate_overlay prod k8s/overlays/prod
  check "k8s component hpa-connections on prod" validate_hpa_component
  check "Dockerfile static checks" dockerfile_static
fi

if [ $RUN_E2E = 1 ]; then
  # node --test prints its own summary; its failures are counted as one check here.
  e2e() { (cd tests/e2e-lb && node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs); }
  t0=$SECONDS
  if e2e; then passed=$((passed + 1)); echo "ok   e2e load balancer + metrics names ($((SECONDS - t0)) s)"
  else failed=$((failed + 1)); failures+=("e2e"); echo "FAIL e2e load balancer + metrics names"; fi
fi

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "ops-checks: $passed passed, $failed failed"
[ $failed = 0 ]

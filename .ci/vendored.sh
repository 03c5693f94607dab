#!/usr/bin/env bash
# The vendored crates' own tests. They are patched in through `[patch.crates-io]` but are
# not workspace members, so `cargo test` at the root does not run them: they run here on a
# copy made into a workspace of its own, with the workspace's Cargo.lock, so the same
# dependency versions are used. engineioxide: its unit tests and its tests/ suite;
# socketioxide-core and socketioxide-redis: their unit tests (socketioxide-redis's tests/
# suite needs socketioxide's test harness, and its drivers' tests a Redis of their own).
#
#   bash .ci/vendored.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Copies vendor/$1 to target/vendored-tests/$1 as a workspace of its own; extra manifest
# lines (patches, dev-dependencies the published manifest left out) from stdin.
copy() {
  local dir=target/vendored-tests/$1
  rm -rf "$dir/src" "$dir/tests"
  mkdir -p "$dir"
  cp -r "vendor/$1/." "$dir/"
  printf '\n[workspace]\n' >>"$dir/Cargo.toml"
  cat >>"$dir/Cargo.toml"
  cp Cargo.lock "$dir/Cargo.lock"
}

copy engineioxide </dev/null
(cd target/vendored-tests/engineioxide && cargo test --quiet --features __test_harness)

copy socketioxide-core </dev/null
(cd target/vendored-tests/socketioxide-core && cargo test --quiet --lib)

# It depends on the other two: the vendored copies, as at the root.
copy socketioxide-redis <<'EOF'

[patch.crates-io]
socketioxide = { path = "../../../vendor/socketioxide" }
socketioxide-core = { path = "../../../vendor/socketioxide-core" }
engineioxide = { path = "../../../vendor/engineioxide" }

[dev-dependencies.socketioxide-parser-common]
version = "0.17"
EOF
(cd target/vendored-tests/socketioxide-redis && cargo test --quiet --lib --features fred)

#!/usr/bin/env bash
# The vendored engineioxide's own tests (its unit tests and its tests/ suite). The crate is
# patched in through `[patch.crates-io]` but is not a workspace member, so `cargo test` at
# the root does not run them: they run here on a copy made into a workspace of its own,
# with the workspace's Cargo.lock, so the same dependency versions are used.
#
#   bash .ci/vendored.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/vendored-tests/engineioxide
rm -rf "$dir/src" "$dir/tests"
mkdir -p "$dir"
cp -r vendor/engineioxide/. "$dir/"
printf '\n[workspace]\n' >>"$dir/Cargo.toml"
cp Cargo.lock "$dir/Cargo.lock"
(cd "$dir" && cargo test --quiet --features __test_harness)

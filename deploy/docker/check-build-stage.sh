#!/usr/bin/env bash
# Checks, without compiling, what the Dockerfile's build stage needs: its copy of the
# workspace (stripped manifest, Cargo.lock, the load generator's manifest, vendor/, stub
# sources, as the Dockerfile lays them out) loads and resolves with `--locked`. CI builds
# its image around the binary the tests built (.ci/containers.sh, prebuilt mode), so this
# is what catches a manifest, lock file or vendored crate the Dockerfile would trip on.
#
#   bash deploy/docker/check-build-stage.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mktemp -d /tmp/lms-build-stage-XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src" "$dir/benches/loadgen"
cp Cargo.lock "$dir/"
cp benches/loadgen/Cargo.toml "$dir/benches/loadgen/"
cp -r vendor "$dir/"
echo 'fn main() {}' >"$dir/src/main.rs"
: >"$dir/src/lib.rs"
echo 'fn main() {}' >"$dir/benches/loadgen/loadgen.rs"
awk -f deploy/docker/strip-manifest.awk Cargo.toml >"$dir/Cargo.toml"
# Offline: the host's cargo cache has every crate once the tests were built; online
# otherwise (a first run on a machine that built nothing yet).
offline=--offline
cargo metadata --locked --offline --format-version 1 --manifest-path "$dir/Cargo.toml" >/dev/null 2>&1 || offline=
cargo metadata --locked $offline --format-version 1 --manifest-path "$dir/Cargo.toml" >/dev/null
cargo tree --locked $offline --manifest-path "$dir/Cargo.toml" -p lms-realtime -e normal >/dev/null
echo "the Dockerfile's build stage inputs resolve (--locked)"

#!/usr/bin/env bash
# The service API's OpenAPI document as a running gateway serves it, checked by PyPI's
# openapi-spec-validator against the OpenAPI 3.1 schema, and each request example checked
# against its own request schema (tests/openapi/validate.py). That the gateway accepts
# the examples is the Rust test `gateway openapi::`.
#
#   LMS_BIN=target/debug/lms-realtime bash tests/openapi/run.sh
#
# Installs openapi-spec-validator 0.7.x into target/python-venv with pip on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
LMS_BIN=${LMS_BIN:-target/debug/lms-realtime}
[ -x "$LMS_BIN" ] || cargo build --bin lms-realtime
venv=target/python-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "openapi-spec-validator==0.7.*"
fi
port=${OPENAPI_TEST_PORT:-4392}
source tests/support/gateway.sh
start_gateway "$port"
curl -fsS "http://127.0.0.1:$port/api/v1/openapi.json" |
  "$venv/bin/python" tests/openapi/validate.py /dev/stdin

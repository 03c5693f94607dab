#!/usr/bin/env bash
# python-socketio from PyPI against the built gateway (one node): the recovery opt-out and
# the extra offset argument (docs/cluster.md, "Connection state recovery").
#
#   LMS_BIN=target/debug/lms-realtime bash tests/python/run.sh
#
# Installs python-socketio[client] 5.x into target/python-venv with pip on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
LMS_BIN=${LMS_BIN:-target/debug/lms-realtime}
venv=target/python-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import socketio" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "python-socketio[client]==5.*"
fi
port=${PY_TEST_PORT:-4391}
source tests/support/gateway.sh
start_gateway "$port"
LMS_URL="http://127.0.0.1:$port" "$venv/bin/python" tests/python/test_python_client.py || { cat "$GATEWAY_LOG" >&2; exit 1; }

#!/bin/bash
# Container health check for lms-realtime: GET /healthz on the local port and succeed
# only on HTTP 200. Uses bash's /dev/tcp so the runtime image needs no curl.
# Usage: lms-healthcheck [path]   (PORT from the environment, default 3000)
set -u
port="${PORT:-3000}"
path="${1:-/healthz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
read -r -t 3 status_line <&3 || exit 1
exec 3<&- 3>&-
case "$status_line" in
  "HTTP/1."[01]" 200"*) exit 0 ;;
  *) echo "unhealthy: ${status_line%$'\r'}" >&2; exit 1 ;;
esac

#!/bin/sh
# Entrypoint of the redis:7 stand-in, as the official image's docker-entrypoint.sh
# behaves: a `redis-server` command without a config file runs with protected mode off
# (other containers reach it over the compose network; it is not published).
set -e
if [ "$1" = "redis-server" ]; then
  case "${2:-}" in
    *.conf) ;;
    *) shift; set -- redis-server "$@" --protected-mode no ;;
  esac
fi
exec "$@"

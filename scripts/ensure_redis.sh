#!/usr/bin/env bash
# The Redis tests start throwaway redis-server processes of their own on free ports (never 6379).
# This makes sure the binary is there: installed from Debian's packages when missing and possible.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
echo "redis-server not found: installing it (Debian package redis-server)" >&2
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "error: redis-server is needed by the Redis integration tests and could not be installed." >&2
  echo "       Install it (apt-get install redis-server, brew install redis) and run make test again." >&2
  exit 1
fi

#!/usr/bin/env bash
# The integration tests start throwaway redis-server and haproxy processes of their own, on free
# ports (never 6379 or 80), and the page tests drive Debian's chromium (through playwright-core;
# never a downloaded browser build). This makes sure the three binaries exist: installed from
# Debian's packages when missing and possible, with a clear message when not.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} (Debian packages) for the integration tests" >&2
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
if command -v apt-get >/dev/null 2>&1 && { [ ${#as_root[@]} -eq 0 ] || command -v sudo >/dev/null 2>&1; }; then
  "${as_root[@]}" apt-get update -qq || true
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || true
fi
still=()
command -v redis-server >/dev/null 2>&1 || still+=(redis-server)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || still+=(haproxy)
[ -x /usr/bin/chromium ] || still+=(chromium)
if [ ${#still[@]} -gt 0 ]; then
  echo "error: ${still[*]} needed by the integration and page tests could not be installed." >&2
  echo "       Install them (apt-get install ${still[*]}) and run make test again." >&2
  exit 1
fi

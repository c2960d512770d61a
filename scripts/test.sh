#!/bin/sh
# Install what the tests need and run them: the distribution's packages (a real browser for the
# HTML reports, Go's pprof), the package with its `test` extra, then pytest. Usage: sh scripts/test.sh [PYTEST ARGS]
# PYTHON selects the interpreter (default: python3).
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"    # HTML reports in a real browser
command -v go >/dev/null 2>&1 || missing="$missing golang-go"   # `go tool pprof` reads our pprof
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"   # scrapes `aether monitor`
command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

"$PY" -m pip install -q '.[test]'
# -P: the source tree's aether_native/ has no compiled core; import the installed package.
exec "$PY" -P -m pytest -p no:cacheprovider "$@"

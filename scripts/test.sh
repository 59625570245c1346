#!/usr/bin/env bash
# Install what the tests need and run them all: README's second command, and what .ci/run calls.
# The browser test drives Debian's chromium (never a downloaded browser); it is installed here when
# missing. With CI=true the browser test must run, so a missing chromium is an error there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian chromium for the browser test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "could not install chromium" >&2
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "could not install chromium" >&2
  fi
fi

python3 -m pip install -q -r requirements-test.txt
exec python3 -m pytest "$@"

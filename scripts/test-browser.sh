#!/usr/bin/env bash
# Runs the browser tests (tests/browser): the real daemon driven from Debian's
# Chromium through playwright-core. Installs what they need: chromium and
# libnss3-tools from Debian when missing (as root), playwright-core with
# `npm ci`. Browsers are never downloaded.
#
# The daemon binary is $WSCONNECTOR_BIN, else ${CARGO_TARGET_DIR:-target}/debug/wsconnector,
# (re)built with `cargo build` (a no-op when up to date). It is copied to a
# temp dir first, so another build sharing the target dir cannot swap it
# mid-run.
#
# When Chromium cannot be installed (not root, apt fails) or Node.js is
# missing or too old, this prints `SKIPPED: browser tests: <reason>`, appends
# `browser tests: <reason>` to $WSC_SKIP_LOG when set, and exits 0. Any other
# problem is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
skip() {
  echo
  echo "!!! SKIPPED: browser tests: $1"
  echo
  if [ -n "${WSC_SKIP_LOG:-}" ]; then
    echo "browser tests: $1" >> "$WSC_SKIP_LOG"
  fi
  exit 0
}

# shellcheck source=scripts/lib/browser-env.sh
. scripts/lib/browser-env.sh

# --- Debian packages: Chromium (the browser) and certutil (NSS trust store).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
install_from_debian "${need[@]}"
/usr/bin/chromium --version 2>/dev/null  # its wrapper script warns on stderr

# --- Node.js, the daemon binary, playwright-core.
require_node
private_daemon_binary
playwright_deps

# --- The tests, one file at a time (each starts its own daemon and browser).
node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec \
  guard.test.mjs protocol.test.mjs wss.test.mjs connector.test.mjs demo.test.mjs faults.test.mjs \
  inspector.test.mjs adversarial.test.mjs v1.test.mjs

echo "=== browser tests passed in $(( $(date +%s) - start )) s"

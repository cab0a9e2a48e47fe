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

# --- Debian packages: Chromium (the browser) and certutil (NSS trust store).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    skip "${need[*]} not installed and not root to install them (apt-get install -y ${need[*]})"
  fi
  echo "installing ${need[*]} from Debian"
  if ! apt-get update -qq; then
    skip "apt-get update failed: cannot install ${need[*]}"
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; then
    skip "apt-get install ${need[*]} failed"
  fi
fi
/usr/bin/chromium --version 2>/dev/null  # its wrapper script warns on stderr

# --- Node.js (playwright-core 1.65 needs Node 20 or newer).
command -v node >/dev/null && command -v npm >/dev/null ||
  skip "node and npm not found (install Node.js 20 or newer)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || skip "Node.js $(node --version) is too old: playwright-core needs 20 or newer"

# --- The daemon binary.
if [ -n "${WSCONNECTOR_BIN:-}" ]; then
  bin=$WSCONNECTOR_BIN
else
  target=${CARGO_TARGET_DIR:-target}
  case $target in /*) ;; *) target=$PWD/$target ;; esac
  cargo build --locked --quiet --bin wsconnector
  bin=$target/debug/wsconnector
fi
[ -x "$bin" ] || { echo "daemon binary $bin not found or not executable" >&2; exit 1; }
bindir=$(mktemp -d "${TMPDIR:-/tmp}/wsc-browser-bin.XXXXXX")
trap 'rm -rf "$bindir"' EXIT
cp "$bin" "$bindir/wsconnector"
export WSCONNECTOR_BIN=$bindir/wsconnector
"$WSCONNECTOR_BIN" --version

# --- playwright-core, exactly as locked; it never downloads a browser.
cd tests/browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error

# --- The tests, one file at a time (each starts its own daemon and browser).
node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec \
  guard.test.mjs protocol.test.mjs wss.test.mjs connector.test.mjs demo.test.mjs faults.test.mjs \
  inspector.test.mjs adversarial.test.mjs v1.test.mjs

echo "=== browser tests passed in $(( $(date +%s) - start )) s"

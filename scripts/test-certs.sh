#!/usr/bin/env bash
# Certificate trust and browser policies in real browsers (tests/browser/
# certs.test.mjs and policy.test.mjs): `cert trust`/`untrust` seen by
# headless Chromium and Debian's firefox-esr, and `browser-policy` installed
# as a Chromium managed policy. Installs what they need from Debian when
# missing (as root): chromium, firefox-esr, libnss3-tools (certutil),
# ca-certificates (update-ca-certificates, used by tests/cert_trust.rs too);
# playwright-core with `npm ci`. Browsers are never downloaded.
#
# The daemon binary is $WSCONNECTOR_BIN, else ${CARGO_TARGET_DIR:-target}/debug/wsconnector
# (built with `cargo build`), copied to a temp dir first.
#
# Never touches the system certificate store: trust goes into NSS databases
# under a temporary HOME. The policy test writes one file in
# /etc/chromium/policies/managed (allowing only its own test origin) and
# removes it; without root it is SKIPPED loudly.
#
# When a browser cannot be installed or Node.js is missing, this prints
# `SKIPPED: certificate browser tests: <reason>`, appends it to
# $WSC_SKIP_LOG when set, and exits 0. Any other problem is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
skip() {
  echo
  echo "!!! SKIPPED: certificate browser tests: $1"
  echo
  if [ -n "${WSC_SKIP_LOG:-}" ]; then
    echo "certificate browser tests: $1" >> "$WSC_SKIP_LOG"
  fi
  exit 0
}

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v update-ca-certificates >/dev/null || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    skip "${need[*]} not installed and not root to install them (apt-get install -y ${need[*]})"
  fi
  echo "installing ${need[*]} from Debian"
  apt-get update -qq || skip "apt-get update failed: cannot install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" || skip "apt-get install ${need[*]} failed"
fi
/usr/bin/chromium --version 2>/dev/null
/usr/bin/firefox-esr --version 2>/dev/null

command -v node >/dev/null && command -v npm >/dev/null ||
  skip "node and npm not found (install Node.js 20 or newer)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || skip "Node.js $(node --version) is too old: playwright-core needs 20 or newer"

if [ -n "${WSCONNECTOR_BIN:-}" ]; then
  bin=$WSCONNECTOR_BIN
else
  target=${CARGO_TARGET_DIR:-target}
  case $target in /*) ;; *) target=$PWD/$target ;; esac
  cargo build --locked --quiet --bin wsconnector
  bin=$target/debug/wsconnector
fi
[ -x "$bin" ] || { echo "daemon binary $bin not found or not executable" >&2; exit 1; }
bindir=$(mktemp -d "${TMPDIR:-/tmp}/wsc-certs-bin.XXXXXX")
trap 'rm -rf "$bindir"' EXIT
cp "$bin" "$bindir/wsconnector"
export WSCONNECTOR_BIN=$bindir/wsconnector
"$WSCONNECTOR_BIN" --version

cd tests/browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error

node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=spec \
  certs.test.mjs policy.test.mjs

echo "=== certificate browser tests passed in $(( $(date +%s) - start )) s"

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

# shellcheck source=scripts/lib/browser-env.sh
. scripts/lib/browser-env.sh

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v update-ca-certificates >/dev/null || need+=(ca-certificates)
install_from_debian "${need[@]}"
/usr/bin/chromium --version 2>/dev/null
/usr/bin/firefox-esr --version 2>/dev/null

require_node
private_daemon_binary
playwright_deps

node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=spec \
  certs.test.mjs policy.test.mjs

echo "=== certificate browser tests passed in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Installs what the tests need and runs every test, printing each stage's
# wall time. CI runs exactly this (.ci/run). Stages that cannot run here say
# SKIPPED loudly; they never pass silently.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
# Tests append one line per skipped check here; printed at the end.
export WSC_SKIP_LOG="${WSC_SKIP_LOG:-$PWD/target/skipped.txt}"
mkdir -p target
: > "$WSC_SKIP_LOG"

# A one-off run (CI) gains nothing from incremental compilation, which would
# add gigabytes of caches to target/.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}; fi

# Free space where the build writes. A full disk shows up as a linker crash
# ("Bus error") far from its cause, so say it plainly, after every stage.
disk_free() {
  local free_kib
  free_kib=$(df -Pk target | awk 'NR==2 {print $4}')
  echo "disk: $(( free_kib / 1024 )) MiB free for target/ ($(du -sh target 2>/dev/null | cut -f1) used)"
  if [ "$free_kib" -lt $(( 3 * 1024 * 1024 )) ]; then
    echo "WARNING: less than 3 GiB free for target/: builds and links may fail for lack of space"
  fi
}

stage_start=0
stage() {
  stage_start=$(date +%s)
  echo
  echo "=== stage: $1"
}
stage_end() {
  echo "=== stage done: $1 ($(( $(date +%s) - stage_start )) s)"
  disk_free
}
run_start=$(date +%s)
# A stage whose output is also kept in LOG for the closing count.
logged_stage() {
  local name=$1 log=$2
  shift 2
  stage "$name"
  "$@" 2>&1 | tee "$log"
  stage_end "$name"
}

stage "prerequisites"
# Debian packages the tests use: setpriv (util-linux) and useradd (passwd)
# for the second-OS-user tests, procps for ps. Installed only when missing.
need=()
command -v setpriv >/dev/null || need+=(util-linux)
command -v useradd >/dev/null || need+=(passwd)
command -v ps >/dev/null || need+=(procps)
# Service mode (tests/service_linux.rs): a private system-like bus stands in
# for logind's; systemd-analyze verifies the units in installer/linux/.
command -v dbus-daemon >/dev/null || need+=(dbus-daemon)
command -v systemd-analyze >/dev/null || need+=(systemd)
# certutil (NSS databases) and update-ca-certificates for the certificate
# trust and doctor tests (tests/cert_trust.rs, tests/cert_doctor.rs).
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v update-ca-certificates >/dev/null || need+=(ca-certificates)
# The Windows build is cross-checked with mingw's linker tools (ring's build
# script needs the C compiler).
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "SKIPPED: installing ${need[*]}: not root (tests that need them will report SKIPPED)"
  fi
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup target list --installed 2>/dev/null | grep -q '^x86_64-pc-windows-gnu' || rustup target add x86_64-pc-windows-gnu || true
stage_end "prerequisites"

stage "format (cargo fmt --check)"
cargo fmt --all -- --check
stage_end "format"

stage "lint (cargo clippy -D warnings)"
cargo clippy --all-targets --locked -- -D warnings
stage_end "lint"

stage "lint for Windows (cargo clippy --target x86_64-pc-windows-gnu)"
if rustup target list --installed 2>/dev/null | grep -q '^x86_64-pc-windows-gnu' && command -v x86_64-w64-mingw32-gcc >/dev/null; then
  cargo clippy --target x86_64-pc-windows-gnu --all-targets --locked -- -D warnings
else
  echo "SKIPPED: Windows cross-lint: the x86_64-pc-windows-gnu target or mingw-w64 is not installed"
  echo "Windows cross-lint: target or mingw-w64 not installed" >> "$WSC_SKIP_LOG"
fi
stage_end "lint for Windows"

stage "build tests"
cargo test --locked --no-run
stage_end "build tests"

logged_stage "tests (cargo test)" target/cargo-test.log cargo test --locked --all-targets

# 200 clients for 20 s on the debug build the tests just built: zero lost or
# duplicate notifications across publishes and resumes, flat memory.
logged_stage "soak (200 clients, 20 s, scripts/soak.sh)" target/soak.log ./scripts/soak.sh 20 200 --rate 10

logged_stage "connector.js unit tests (node --test, no network)" target/js-client-test.log node --test js-client/test/

logged_stage "browser tests (Chromium, scripts/test-browser.sh)" target/browser-test.log ./scripts/test-browser.sh

logged_stage "certificates and browser policies in Chromium and firefox-esr (scripts/test-certs.sh)" target/certs-test.log ./scripts/test-certs.sh

logged_stage "Linux desktop actions (Xvfb + openbox + D-Bus, scripts/test-desktop.sh)" target/desktop-test.log ./scripts/test-desktop.sh

logged_stage "Windows smoke tests under Wine (scripts/test-windows.sh)" target/wine-stage.log ./scripts/test-windows.sh

logged_stage "installers (MSI with wixl + msiinfo, osslsigncode, cargo deb + dpkg, scripts/test-installers.sh)" target/installers.log ./scripts/test-installers.sh

logged_stage "fat-client examples (scripts/test-examples.sh)" target/examples-test.log ./scripts/test-examples.sh

logged_stage "fuzzing (cargo-fuzz on nightly, scripts/fuzz.sh)" target/fuzz.log ./scripts/fuzz.sh 10

# One closing line over every runner: cargo's "test result:" lines and node's
# "pass N" / "fail N" summary.
sum_cargo() { cat target/cargo-test.log target/desktop-test.log | grep -E '^test result:' | sed -E "s/.* ([0-9]+) $1.*/\1/" | awk '{s+=$1} END {print s+0}'; }
sum_node() { cat target/js-client-test.log target/browser-test.log target/certs-test.log target/desktop-test.log | grep -E "^[^ ]+ $1 [0-9]+$" | awk '{s+=$3} END {print s+0}'; }
sum_line() { grep -E "^$1: " "$2" | sed -E "s/.* ([0-9]+) $3.*/\\1/" | awk '{s+=$1} END {print s+0}'; }
passed=$(( $(sum_cargo passed) + $(sum_node pass) + $(sum_line examples target/examples-test.log passed) + $(sum_line wine target/wine-stage.log passed) + $(sum_line installers target/installers.log passed) ))
failed=$(( $(sum_cargo failed) + $(sum_node fail) + $(sum_line examples target/examples-test.log failed) + $(sum_line wine target/wine-stage.log failed) + $(sum_line installers target/installers.log failed) ))
skipped=$(grep -c . "$WSC_SKIP_LOG" || true)

echo
if [ -s "$WSC_SKIP_LOG" ]; then
  echo "!!! SKIPPED checks in this run:"
  sed 's/^/!!! SKIPPED: /' "$WSC_SKIP_LOG"
fi
echo "=== all stages passed in $(( $(date +%s) - run_start )) s"
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"

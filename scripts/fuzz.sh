#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for SECONDS each (default 30), on a
# copy of its committed seed corpus so new inputs never dirty the tree.
# Fuzzing needs a nightly toolchain and cargo-fuzz; both are installed when
# missing. When that is impossible (no rustup, dist server unreachable, no
# C++ toolchain for libFuzzer) this prints a loud SKIPPED line, appends it to
# $WSC_SKIP_LOG and exits 0: the seed corpora still run on stable in
# `cargo test` (tests/fuzz_corpus.rs). A crash fails the script (exit 1) and
# leaves the input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS]            every target
#   FUZZ_TARGETS="guard config" scripts/fuzz.sh 600
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

skip() {
  echo "SKIPPED: fuzzing: $1"
  if [ -n "${WSC_SKIP_LOG:-}" ]; then
    echo "fuzzing: $1" >> "$WSC_SKIP_LOG"
  fi
  exit 0
}

command -v rustup >/dev/null || skip "rustup is not installed (cargo-fuzz needs a nightly toolchain)"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing the nightly toolchain (minimal profile)"
  timeout 600 rustup toolchain install nightly --profile minimal \
    || skip "rustup cannot install the nightly toolchain here (dist server unreachable?)"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  timeout 900 cargo install cargo-fuzz --locked \
    || skip "cargo install cargo-fuzz failed"
fi
command -v c++ >/dev/null || command -v clang++ >/dev/null \
  || skip "no C++ compiler for libFuzzer (install g++ or clang)"

# The fuzz build uses sanitizer flags: its own target dir, never the shared one.
unset CARGO_TARGET_DIR
cd fuzz
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
echo "building fuzz targets: $(echo $targets)"
# Default cargo-fuzz build: optimized, with debug assertions and overflow checks.
if ! cargo +nightly fuzz build > "$(pwd)/target-build.log" 2>&1; then
  tail -n 40 target-build.log
  echo "FAILED: cargo fuzz build (the fuzz targets must compile)"
  exit 1
fi
rm -f target-build.log

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
  mkdir -p "$work/$t"
  cp -r "corpus/$t/." "$work/$t/"
  echo
  echo "=== fuzz $t for ${seconds}s (seed corpus: $(ls "corpus/$t" | wc -l) files)"
  start=$(date +%s)
  # -rss_limit_mb: a bounded daemon must stay small on every input.
  if cargo +nightly fuzz run "$t" "$work/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
      > "$work/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE' "$work/$t.log" || true
  echo "=== fuzz $t: $status ($(( $(date +%s) - start )) s, corpus now $(ls "$work/$t" | wc -l) files)"
  if [ "$status" = FAILED ]; then
    tail -n 60 "$work/$t.log"
    ls -l "artifacts/$t" 2>/dev/null || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: fuzz targets ${failed[*]} (inputs under fuzz/artifacts/; see fuzz/README.md)"
  exit 1
fi
echo "fuzzing: every target ran ${seconds}s without a finding"

#!/usr/bin/env bash
# Soak test (issue 6): hundreds of clients against one daemon for minutes.
# Every client registers and subscribes to `*` in one of 4 environments; one
# in ten publishes (20 sets/s each), one in ten keeps leaving and coming back
# with `resume`. Fails on any lost or duplicated notification (every client
# checks each environment seq it sees, replays included) and when memory is
# not flat: the median RSS of the last third of the run may exceed the first
# third's by at most 10 % (or 1 MiB, whichever is larger).
# Prints notifications delivered, their rate, reconnects and RSS first/last/peak.
#
# Usage: scripts/soak.sh [SECONDS (default 180)] [CLIENTS (default 300)] [wsc-bench soak options]
# Uses the debug build of the daemon and of the load generator (a no-op
# build after `cargo test --all-targets`); WSC_SOAK_PROFILE=release uses
# release builds instead.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-180}"
clients="${2:-300}"
shift $(( $# > 2 ? 2 : $# ))
profile="${WSC_SOAK_PROFILE:-debug}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
flag=()
[ "$profile" = release ] && flag=(--release)
cargo build ${flag[@]+"${flag[@]}"} --locked --bin wsconnector --example wsc-bench
# Each client is a descriptor on both sides.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p target/soak
# Bounded: the run plus set-up and the final catch-up check.
timeout $(( ${seconds%.*} + 120 )) "$target/$profile/examples/wsc-bench" soak \
  --daemon "$target/$profile/wsconnector" --seconds "$seconds" --clients "$clients" \
  --dir target/soak "$@"

#!/usr/bin/env bash
# The benchmark of issue 9 (not part of the test run): builds the release
# daemon and the load generator (example `wsc-bench`), installs Debian's
# redis-server when missing, then in ONE run measures on loopback the raw TCP
# ping-pong floor, Redis pub/sub and wsconnector with the same workload
# (1 publisher, S = 1, 10, 100 subscribers, ~100-byte values; closed-loop
# latency and saturation), memory with 1,000 idle and subscribed connections,
# start-up time and binary size. Prints one table with ratios to the floor
# and to Redis from the same run and writes target/bench/results.json.
#
# Latency: server and load generator pinned to CPU 0 (taskset). Saturation:
# load generator on CPU 0, server on CPU 1. Every run counts every
# notification per subscriber and fails on any loss or duplicate.
#
# Usage: scripts/bench.sh [extra wsc-bench suite options, e.g. --repeats 3]
# Environment: CARGO_TARGET_DIR (default target/bench-build, kept apart from
# the debug build so the two do not rebuild each other).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/bench-build}"
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  else
    echo "bench: redis-server is missing; install Debian's redis-server (sudo apt-get install redis-server)" >&2
    exit 2
  fi
fi
command -v taskset >/dev/null || { echo "bench: taskset (util-linux) is missing" >&2; exit 2; }

echo "=== building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release --locked --bin wsconnector --example wsc-bench

# 1,000 connections on each side, plus the servers' own descriptors.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p target/bench
# Bounded: about 2 minutes on 2 CPUs; a stuck run fails after 15 minutes.
timeout 900 "$CARGO_TARGET_DIR/release/examples/wsc-bench" suite \
  --daemon "$CARGO_TARGET_DIR/release/wsconnector" \
  --redis-server "$(command -v redis-server)" \
  --dir target/bench --out target/bench/results.json "$@"

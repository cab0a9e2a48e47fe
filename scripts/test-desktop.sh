#!/usr/bin/env bash
# Runs the Linux desktop tests for real: a virtual X server (Xvfb) with the
# openbox window manager, inside a private D-Bus session bus, with Debian's
# dunst for the notification checks. First the cargo tests
# (tests/desktop_linux.rs, and tests/tray_linux.rs: the tray icon read over
# D-Bus with a test StatusNotifierWatcher), then, in the same session, the browser test
# tests/browser/desktop.test.mjs: every desktop action from connector.js in
# Debian's Chromium against the real daemon. Installs what they need from
# Debian when missing (as root): xvfb, xauth, openbox, dbus, dbus-x11, dunst,
# x11-utils (xprop, xwininfo, xmessage), libnotify-bin, xdg-utils, chromium;
# and playwright-core with `npm ci` when tests/browser/node_modules is
# missing (browsers are never downloaded).
#
# When the packages cannot be installed (not root, apt fails) this prints
# `SKIPPED: desktop tests: <reason>`, appends `desktop tests: <reason>` to
# $WSC_SKIP_LOG when set, and exits 0; when only Node.js (20 or newer) is
# missing, the cargo tests run and the browser part is skipped the same way
# (`desktop browser test: <reason>`). Any other problem is a failure. The
# output ends with a summary of both parts.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo
  echo "!!! SKIPPED: desktop tests: $1"
  echo
  if [ -n "${WSC_SKIP_LOG:-}" ]; then
    echo "desktop tests: $1" >> "$WSC_SKIP_LOG"
  fi
  exit 0
}

[ "$(uname -s)" = Linux ] || skip "not Linux"

# --- Debian packages, by the command each provides.
declare -A provides=(
  [Xvfb]=xvfb [xvfb-run]=xvfb [xauth]=xauth [openbox]=openbox
  [dbus-run-session]=dbus [dbus-launch]=dbus-x11 [dunst]=dunst [dunstctl]=dunst
  [xprop]=x11-utils [xwininfo]=x11-utils [xmessage]=x11-utils
  [notify-send]=libnotify-bin [xdg-open]=xdg-utils [dbus-send]=dbus
)
need=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null || need+=("${provides[$cmd]}")
done
# Chromium only for the browser part: without it (and no root to install
# it) the cargo tests still run.
chromium_skip=""
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    need+=(chromium)
  else
    chromium_skip="chromium not installed and not root to install it (apt-get install -y chromium)"
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" != 0 ]; then
    skip "${need[*]} not installed and not root to install them (apt-get install -y ${need[*]})"
  fi
  echo "installing ${need[*]} from Debian"
  apt-get update -qq || skip "apt-get update failed: cannot install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" ||
    skip "apt-get install ${need[*]} failed"
fi

# --- The browser part needs Chromium and Node.js 20 or newer (playwright-core 1.65).
node_skip=$chromium_skip
if [ -n "$node_skip" ]; then
  :
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  node_skip="node and npm not found (install Node.js 20 or newer)"
elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  node_skip="Node.js $(node --version) is too old: playwright-core needs 20 or newer"
fi
if [ -n "$node_skip" ]; then
  echo
  echo "!!! SKIPPED: desktop browser test: $node_skip"
  echo
  if [ -n "${WSC_SKIP_LOG:-}" ]; then
    echo "desktop browser test: $node_skip" >> "$WSC_SKIP_LOG"
  fi
fi

# --- Build first, outside the session, so the X server is not kept waiting.
cargo test --locked --test desktop_linux --test tray_linux --no-run
work=$(mktemp -d "${TMPDIR:-/tmp}/wsc-desktop.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The daemon binary (the tray tests and the browser part start it), copied
# so another build sharing the target dir cannot swap it mid-run.
if [ -n "${WSCONNECTOR_BIN:-}" ]; then
  bin=$WSCONNECTOR_BIN
else
  target=${CARGO_TARGET_DIR:-target}
  case $target in /*) ;; *) target=$PWD/$target ;; esac
  cargo build --locked --quiet --bin wsconnector
  bin=$target/debug/wsconnector
fi
cp "$bin" "$work/wsconnector"
export WSCONNECTOR_BIN=$work/wsconnector
if [ -z "$node_skip" ]; then
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
export WSC_NODE_SKIP=$node_skip WSC_DESKTOP_WORK=$work

# --- Inside Xvfb and a private session bus: openbox, then the cargo tests
# (one at a time: they take turns owning org.freedesktop.Notifications),
# then the browser test (it starts dunst itself).
session='
set -uo pipefail
openbox >/dev/null 2>&1 &
wm=$!
# Ready when openbox announces itself on the root window (EWMH).
for _ in $(seq 1 200); do
  xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q "window id" && break
  sleep 0.05
done
xprop -root _NET_SUPPORTING_WM_CHECK | grep -q "window id" || { echo "openbox did not start"; exit 1; }
status=0
start=$(date +%s)
WSC_DESKTOP_SESSION=1 cargo test --locked --test desktop_linux --test tray_linux -- --test-threads=1 2>&1 |
  tee "$WSC_DESKTOP_WORK/cargo.log"
cargo_status=${PIPESTATUS[0]}
echo $(( $(date +%s) - start )) > "$WSC_DESKTOP_WORK/cargo.secs"
echo "$cargo_status" > "$WSC_DESKTOP_WORK/cargo.status"
[ "$cargo_status" = 0 ] || status=1
if [ -z "$WSC_NODE_SKIP" ]; then
  start=$(date +%s)
  (cd tests/browser && WSC_DESKTOP_SESSION=1 node --test --test-concurrency=1 \
    --test-timeout=120000 --test-reporter=spec desktop.test.mjs) 2>&1 |
    tee "$WSC_DESKTOP_WORK/node.log"
  node_status=${PIPESTATUS[0]}
  echo $(( $(date +%s) - start )) > "$WSC_DESKTOP_WORK/node.secs"
  echo "$node_status" > "$WSC_DESKTOP_WORK/node.status"
  [ "$node_status" = 0 ] || status=1
fi
kill "$wm" 2>/dev/null || true
exit $status
'
status=0
xvfb-run -a -s "-screen 0 1280x1024x24" dbus-run-session -- bash -c "$session" || status=$?

# --- Summary of both parts (not in cargo's `test result:` form: scripts/test.sh
# counts those lines).
count() { grep -E "$2" "$1" 2>/dev/null | sed -E 's/[^0-9]*([0-9]+).*/\1/' | head -1; }
echo
echo "=== desktop summary"
if [ -f "$work/cargo.status" ]; then
  grep -E '^test result:' "$work/cargo.log" | while read -r line; do
    echo "  cargo desktop_linux + tray_linux: ${line#test result: }"
  done
  echo "  cargo: exit $(cat "$work/cargo.status"), $(cat "$work/cargo.secs") s"
else
  echo "  cargo desktop_linux: did not run (the session failed to start)"
fi
if [ -n "$node_skip" ]; then
  echo "  node desktop.test.mjs: SKIPPED ($node_skip)"
elif [ -f "$work/node.status" ]; then
  echo "  node desktop.test.mjs: $(count "$work/node.log" '^ℹ pass') passed, $(count "$work/node.log" '^ℹ fail') failed," \
    "$(count "$work/node.log" '^ℹ skipped') skipped (exit $(cat "$work/node.status"), $(cat "$work/node.secs") s)"
else
  echo "  node desktop.test.mjs: did not run (the session failed to start)"
fi
exit $status

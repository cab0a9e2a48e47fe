#!/usr/bin/env bash
# Runs the Linux desktop tests (tests/desktop_linux.rs) for real: a virtual X
# server (Xvfb) with the openbox window manager, inside a private D-Bus
# session bus, with Debian's dunst for the second notification check.
# Installs what they need from Debian when missing (as root): xvfb, xauth,
# openbox, dbus, dbus-x11, dunst, x11-utils, libnotify-bin.
#
# When the packages cannot be installed (not root, apt fails) this prints
# `SKIPPED: desktop tests: <reason>`, appends `desktop tests: <reason>` to
# $WSC_SKIP_LOG when set, and exits 0. Any other problem is a failure.
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
  [xprop]=x11-utils [notify-send]=libnotify-bin
)
need=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null || need+=("${provides[$cmd]}")
done
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

# --- Build first, outside the session, so the X server is not kept waiting.
cargo test --locked --test desktop_linux --no-run

# --- Inside Xvfb and a private session bus: openbox, then the tests (one at a
# time: they take turns owning org.freedesktop.Notifications).
session='
set -euo pipefail
openbox >/dev/null 2>&1 &
wm=$!
# Ready when openbox announces itself on the root window (EWMH).
for _ in $(seq 1 200); do
  xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q "window id" && break
  sleep 0.05
done
xprop -root _NET_SUPPORTING_WM_CHECK | grep -q "window id" || { echo "openbox did not start"; exit 1; }
status=0
WSC_DESKTOP_SESSION=1 cargo test --locked --test desktop_linux -- --test-threads=1 || status=$?
kill "$wm" 2>/dev/null || true
exit $status
'
xvfb-run -a -s "-screen 0 1280x1024x24" dbus-run-session -- bash -c "$session"

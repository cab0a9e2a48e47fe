#!/usr/bin/env bash
# Windows smoke tests under Wine: cross-builds for x86_64-pc-windows-gnu with
# mingw, lints it, and runs tests/{platform,peer,exe}_windows.rs with wine64 on a
# virtual X display. Installs what is missing (Debian packages, the rustup
# target). When that is impossible it says SKIPPED loudly, appends the
# reason to $WSC_SKIP_LOG and exits 0; it never passes silently.
#
# Ends with one line: "wine: N passed, N failed".
#
# What Wine cannot show (check on a real Windows 10/11 host):
# - the foreground lock: SetForegroundWindow from a background agent is
#   refused there (the taskbar flashes) and `window` answers FAILURE;
#   Wine lets every SetForegroundWindow succeed;
# - the pickup window and toasts above other applications' windows, in a
#   Citrix/RDS seamless session, with per-monitor DPI scaling;
# - ShellExecuteExW opening the user's real default browser;
# - a launched program running in the agent's session with the agent's
#   token and integrity level, surviving the agent's exit (job objects);
# - SmartScreen / AppLocker / WDAC policies refusing a declared program;
# - peer identity (tests/peer_windows.rs) of another user's socket, of
#   another session, or of a socket owned by an antivirus/proxy product
#   (Wine has one user and one session; Linux processes' sockets, IPv6
#   sockets and sockets that never sent or received show owner pid 0);
# - the tray icon drawn in the real taskbar's notification area (Wine's
#   systray stands in), its menu, and output of a CLI subcommand appearing
#   in the cmd.exe that started it (AttachConsole) rather than a pipe;
# - SO_EXCLUSIVEADDRUSE stopping a SO_REUSEADDR port thief: Wine uses
#   Linux bind semantics, where that theft is impossible anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
export CARGO_TERM_COLOR=never
export WSC_SKIP_LOG="${WSC_SKIP_LOG:-$PWD/target/skipped.txt}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target_dir" "$(dirname "$WSC_SKIP_LOG")"

skip() {
  echo "SKIPPED: Wine smoke tests: $1"
  echo "Wine smoke tests: $1" >> "$WSC_SKIP_LOG"
  echo "wine: 0 passed, 0 failed"
  exit 0
}

t0=$(date +%s)
since() { echo "$(( $(date +%s) - $1 )) s"; }

# --- prerequisites ---------------------------------------------------------
need=()
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
command -v xvfb-run >/dev/null || need+=(xvfb)
command -v xauth >/dev/null || need+=(xauth)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    skip "cannot install ${need[*]}: not root"
  fi
  echo "installing ${need[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; }; then
    skip "apt-get could not install ${need[*]}"
  fi
fi
if ! rustup target list --installed 2>/dev/null | grep -q "^$TARGET\$"; then
  rustup target add "$TARGET" || skip "rustup could not add the $TARGET target"
fi
echo "prerequisites: $(since "$t0")"

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=/usr/lib/wine/wine64
export WINEPREFIX="$target_dir/wine-prefix"
export WINEARCH=win64
export WINEDEBUG=-all
# No Mono/Gecko install prompts on a fresh prefix; our shim DLL wins over
# Wine's builtin bcryptprimitives (which lacks ProcessPrng).
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"

# --- the prefix (created once, reused) -------------------------------------
t=$(date +%s)
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "creating the Wine prefix $WINEPREFIX"
  wineboot --init >/dev/null 2>&1 || skip "wineboot --init failed for $WINEPREFIX"
  wineserver -w
fi
echo "prefix: $(since "$t")"

# Rust >= 1.78 programs import ProcessPrng, which Wine 8.0 lacks.
shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$shim.wsc" ] || [ scripts/wine/processprng.c -nt "$shim.wsc" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$target_dir/bcryptprimitives.dll" \
    scripts/wine/processprng.c -ladvapi32
  cp "$target_dir/bcryptprimitives.dll" "$shim"
  touch "$shim.wsc"
fi

# --- lint and build --------------------------------------------------------
t=$(date +%s)
cargo clippy --target "$TARGET" --all-targets --locked -- -D warnings
echo "clippy ($TARGET): $(since "$t")"

t=$(date +%s)
# The tests start the argv_marker example: build it beside them.
cargo build --target "$TARGET" --locked --example argv_marker
cargo test --target "$TARGET" --locked --lib --test platform_windows --test peer_windows --test exe_windows --test tray_windows --test service_windows --no-run
echo "build: $(since "$t")"

# --- run under Wine --------------------------------------------------------
t=$(date +%s)
log="$target_dir/wine-test.log"
status=0
# Library unit tests (command-line quoting, TCP owner tables), the desktop
# smoke tests, peer identity / exclusive binding, wsconnector.exe itself, and
# the agent (tray icon, GUI subsystem, single instance, HKCU Run autostart),
# and service mode (SCM install, session agent launch, named pipes, relay).
xvfb-run -a -s "-screen 0 1280x1024x24" \
  cargo test --target "$TARGET" --locked --lib --test platform_windows --test peer_windows \
    --test exe_windows --test tray_windows --test service_windows 2>&1 | tee "$log" || status=$?
wineserver -k 2>/dev/null || true
echo "wine tests: $(since "$t")"
echo "total: $(since "$t0")"

sum() { grep -E '^test result:' "$log" | sed -E "s/.* ([0-9]+) $1.*/\1/" | awk '{s+=$1} END {print s+0}'; }
echo "wine: $(sum passed) passed, $(sum failed) failed"
exit "$status"

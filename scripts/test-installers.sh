#!/usr/bin/env bash
# The installers, built and checked for real:
# - Windows: wsconnector.exe (the Wine stage's cross build, reused: cargo
#   only relinks when something changed) signed with osslsigncode using a
#   throwaway certificate made here, `osslsigncode verify` reports the
#   signature and refuses a tampered copy; the MSI built with wixl from
#   installer/wsconnector.wxs, its tables read back with msiinfo (binary,
#   config.xml, Start-menu shortcut, HKLM Run autostart, service.xml and the
#   SERVICEMODE=1 custom actions), signed and verified; then installed
#   with Wine's msiexec: SERVICEMODE=1 registers the service (and the
#   Citrix LogoffCheckSysModules entry), /x removes both, a failing
#   `service install` rolls back.
# - Debian: `cargo deb` (pinned cargo-deb, installed here when missing)
#   builds the package, `dpkg -i` installs it, the installed
#   /usr/bin/wsconnector answers --version and check-config on the installed
#   example configuration, and `dpkg -r` removes it again.
# Installs what it needs from Debian (wixl, msitools, osslsigncode, openssl,
# mingw). What cannot run here says SKIPPED loudly (and goes to
# $WSC_SKIP_LOG); it never passes silently.
#
# Ends with one line: "installers: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
TARGET=x86_64-pc-windows-gnu
export CARGO_TERM_COLOR=never
export WSC_SKIP_LOG="${WSC_SKIP_LOG:-$PWD/target/skipped.txt}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
mkdir -p "$target_dir" "$(dirname "$WSC_SKIP_LOG")"
work=$(mktemp -d "${TMPDIR:-/tmp}/wsc-installers.XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
t0=$(date +%s)
since() { echo "$(( $(date +%s) - $1 )) s"; }
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAILED: $1"; failed=$((failed + 1)); }
# check NAME CMD...: runs CMD, counts it.
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}
skipped() {
  echo "!!! SKIPPED: installers: $1"
  echo "installers: $1" >> "$WSC_SKIP_LOG"
}
finish() {
  echo "total: $(since "$t0")"
  echo "installers: $passed passed, $failed failed"
  if [ "$failed" = 0 ]; then exit 0; else exit 1; fi
}

# --- prerequisites ---------------------------------------------------------
declare -A provides=(
  [wixl]=wixl [msiinfo]=msitools [osslsigncode]=osslsigncode [openssl]=openssl
  [x86_64-w64-mingw32-gcc]=gcc-mingw-w64-x86-64 [x86_64-w64-mingw32-strip]=binutils-mingw-w64-x86-64
)
need=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null || need+=("${provides[$cmd]}")
done
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" != 0 ]; then
    skipped "cannot install ${need[*]}: not root"
    finish
  fi
  echo "installing ${need[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; }; then
    skipped "apt-get could not install ${need[*]}"
    finish
  fi
fi
if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
  echo "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi
echo "prerequisites: $(since "$t0")"

# --- Windows: exe, signature, MSI ------------------------------------------
t=$(date +%s)
if ! rustup target list --installed 2>/dev/null | grep -q "^$TARGET\$"; then
  rustup target add "$TARGET"
fi
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
cargo build --target "$TARGET" --locked --quiet --bin wsconnector
exe=$target_dir/$TARGET/debug/wsconnector.exe
# Debug symbols out: the MSI's cabinet stays small (release builds strip too).
x86_64-w64-mingw32-strip -o "$work/wsconnector.exe" "$exe"
echo "windows build: $(since "$t")"

# A throwaway code-signing certificate, valid two days, made for this run.
openssl req -x509 -newkey rsa:3072 -nodes -days 2 \
  -subj "/CN=wsconnector CI throwaway code signing" \
  -addext "extendedKeyUsage=codeSigning" -addext "keyUsage=digitalSignature" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
export WSC_SIGN_CERT=$work/cert.pem WSC_SIGN_KEY=$work/key.pem

# verify_signed FILE: osslsigncode verifies the chain to our certificate and
# reports our signer.
verify_signed() {
  local out
  out=$(osslsigncode verify -CAfile "$work/cert.pem" -in "$1" 2>&1) || { echo "$out" | tail -5; return 1; }
  grep -q "Signature verification: ok" <<<"$out" &&
    grep -q "Subject: /CN=wsconnector CI throwaway code signing" <<<"$out"
}
not_verified() { ! osslsigncode verify -CAfile "$work/cert.pem" -in "$1" >/dev/null 2>&1; }

check "the unsigned exe has no signature" not_verified "$work/wsconnector.exe"
installer/sign.sh "$work/wsconnector.exe" "$work/signed.exe" >/dev/null
check "osslsigncode verify reports the exe's signature" verify_signed "$work/signed.exe"
# One byte changed in the code: the signature no longer matches.
cp "$work/signed.exe" "$work/tampered.exe"
printf '\x90' | dd of="$work/tampered.exe" bs=1 seek=4096 conv=notrunc status=none
check "a tampered signed exe fails verification" not_verified "$work/tampered.exe"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The MSI's config.xml: the example with Windows programs (it declares
# /usr/bin/gedit, which Windows refuses).
check "windows-config.sh makes the example's Windows variant" \
  installer/windows-config.sh config.xml.example "$work/windows.xml"
check "the Windows variant differs from the example in the two program paths only" \
  bash -c "diff config.xml.example '$work/windows.xml' | grep '^>' | grep -c 'path=\"C:' | grep -qx 2 && diff config.xml.example '$work/windows.xml' | grep -c '^>' | grep -qx 2"
installer/build-msi.sh "$work/signed.exe" "$work/windows.xml" "$version" "$work/wsconnector.msi" 2>"$work/wixl.err" ||
  { cat "$work/wixl.err"; bad "wixl builds the MSI"; finish; }
ok "wixl builds the MSI"

# msiinfo exports CRLF lines.
table() { msiinfo export "$work/wsconnector.msi" "$1" | tr -d '\r'; }
has_row() { table "$1" | grep -qE "$2"; }
check "msiinfo: File table holds wsconnector.exe" has_row File $'^WsconnectorExe\tBinary\twsconnector.exe\t'
check "msiinfo: File table holds config.xml" has_row File $'^ConfigXml\tConfig\tconfig.xml\t'
check "msiinfo: both installed into INSTALLDIR under Program Files (64-bit)" \
  has_row Directory $'^INSTALLDIR\tProgramFiles64Folder\twsconnector'
check "msiinfo: Start-menu shortcut runs the agent" \
  has_row Shortcut $'^WsconnectorShortcut\tProgramMenuFolder\twsconnector\tStartMenuShortcut\t\\[INSTALLDIR\\]wsconnector.exe\trun\t'
check "msiinfo: autostart value under HKLM Run" \
  has_row Registry $'\t2\tSoftware\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run\twsconnector\t"\\[INSTALLDIR\\]wsconnector.exe" run\tAutostart$'
check "msiinfo: product version $version" has_row Property $'^ProductVersion\t'"$version"'$'
# The exe inside the MSI is the signed one (same size as signed.exe).
size=$(stat -c %s "$work/signed.exe")
check "msiinfo: the packaged exe is the signed one ($size bytes)" \
  has_row File $'^WsconnectorExe\tBinary\twsconnector.exe\t'"$size"$'\t'

# Service mode (SERVICEMODE=1): the custom actions, their types, conditions
# and places in the installation script.
check "msiinfo: SERVICEMODE defaults to 0" has_row Property $'^SERVICEMODE\t0$'
check "msiinfo: SERVICEMODE is a secure property (reaches the elevated install)" \
  has_row Property $'^SecureCustomProperties\t([^\t]*;)?SERVICEMODE(;[^\t]*)?$'
# 3090 = 18 (run an installed file) + 1024 (deferred) + 2048 (no impersonation);
# 3154 = 3090 + 64 (its exit code is ignored).
check "msiinfo: ServiceInstall runs the installed exe, deferred as LocalSystem, checked (type 3090)" \
  has_row CustomAction $'^ServiceInstall\t3090\tWsconnectorExe\t--config "\\[INSTALLDIR\\]service.xml" service install\t?$'
check "msiinfo: ServiceUninstall runs the installed exe, deferred as LocalSystem, ignored (type 3154)" \
  has_row CustomAction $'^ServiceUninstall\t3154\tWsconnectorExe\t--config "\\[INSTALLDIR\\]service.xml" service uninstall\t?$'
check "msiinfo: ServiceInstall only with SERVICEMODE=1, not on removal" \
  has_row InstallExecuteSequence $'^ServiceInstall\tSERVICEMODE="1" AND NOT REMOVE="ALL"\t[0-9]+$'
check "msiinfo: ServiceUninstall on every removal" \
  has_row InstallExecuteSequence $'^ServiceUninstall\tREMOVE="ALL"\t[0-9]+$'
# seq ACTION: its sequence number in InstallExecuteSequence.
seq_of() { table InstallExecuteSequence | awk -F'\t' -v a="$1" '$1 == a { print $3 }'; }
# in_order A B C: A's sequence < B's < C's (all present).
in_order() {
  local a b c
  a=$(seq_of "$1") b=$(seq_of "$2") c=$(seq_of "$3")
  [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ "$a" -lt "$b" ] && [ "$b" -lt "$c" ] ||
    { echo "$1=$a $2=$b $3=$c"; return 1; }
}
check "msiinfo: ServiceUninstall inside the script, before RemoveFiles" in_order InstallInitialize ServiceUninstall RemoveFiles
check "msiinfo: ServiceInstall after InstallFiles, inside the script" in_order InstallFiles ServiceInstall InstallFinalize
check "msiinfo: File table holds service.xml" has_row File $'^ServiceXml\tServiceConfig\tservice.xml\t'
check "msiinfo: the log folder under CommonAppDataFolder is created" \
  bash -c "msiinfo export '$work/wsconnector.msi' CreateFolder | tr -d '\r' | grep -qP '^LogDir\tLogFolder\$' && msiinfo export '$work/wsconnector.msi' Directory | tr -d '\r' | grep -qP '^DataDir\tCommonAppDataFolder\twsconnector\$'"
rm -rf "$work/extract" && mkdir "$work/extract"
msiextract -C "$work/extract" "$work/wsconnector.msi" >/dev/null
check "msiextract: service.xml says Mode = service" grep -q '<Mode>service</Mode>' "$work/extract/wsconnector/service.xml"
check "msiextract: config.xml keeps Mode = single-user" grep -q '<Mode>single-user</Mode>' "$work/extract/wsconnector/config.xml"
check "msiextract: service.xml differs from config.xml in <Mode> only" \
  bash -c "diff '$work/extract/wsconnector/config.xml' '$work/extract/wsconnector/service.xml' | grep '^[<>]' | grep -v '<Mode>' | wc -l | grep -qx 0"

check "the unsigned MSI has no signature" not_verified "$work/wsconnector.msi"
installer/sign.sh "$work/wsconnector.msi" "$work/signed.msi" >/dev/null
check "osslsigncode verify reports the MSI's signature" verify_signed "$work/signed.msi"
echo "windows installer: $(since "$t")"

# --- the MSI under Wine's msiexec ------------------------------------------
# The MSI installed for real: SERVICEMODE=1 registers and starts the service
# (and, on a Citrix host, adds the agent to LogoffCheckSysModules), removal
# takes both away again; without SERVICEMODE no service; a failing
# `service install` rolls the whole installation back. The MSIs installed
# here carry a small Windows configuration (an ephemeral port, so the
# service never takes 8443 on the CI machine); the real MSI's config.xml
# and service.xml are loaded with check-config.
# Wine runs the custom actions as the Wine user, not LocalSystem.
msi_under_wine() {
  export WINEPREFIX="$target_dir/wine-prefix" WINEARCH=win64 WINEDEBUG=-all
  export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    wineboot --init >/dev/null 2>&1 || { skipped "msiexec under Wine: wineboot --init failed"; return; }
    wineserver -w
  fi
  # Rust programs import ProcessPrng, which Wine 8.0 lacks (as in test-windows.sh).
  local shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
  if [ ! -f "$shim.wsc" ] || [ scripts/wine/processprng.c -nt "$shim.wsc" ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -o "$target_dir/bcryptprimitives.dll" scripts/wine/processprng.c -ladvapi32
    cp "$target_dir/bcryptprimitives.dll" "$shim"
    touch "$shim.wsc"
  fi
  local w=/usr/lib/wine/wine64
  # The configurations the real MSI installs load on Windows; the Linux
  # example does not (why windows-config.sh exists).
  local x="$work/extract/wsconnector"
  check "Windows check-config accepts the MSI's config.xml" \
    bash -c "'$w' '$work/wsconnector.exe' --config '$(winepath -w "$x/config.xml")' check-config 2>&1 | grep -q 'is valid'"
  check "Windows check-config accepts the MSI's service.xml (Mode = service)" \
    bash -c "'$w' '$work/wsconnector.exe' --config '$(winepath -w "$x/service.xml")' check-config 2>&1 | grep -q 'Mode = service'"
  check "Windows check-config refuses config.xml.example (a Linux program path)" \
    bash -c "if '$w' '$work/wsconnector.exe' --config '$(winepath -w "$PWD/config.xml.example")' check-config >'$work/example.out' 2>&1; then exit 1; fi; grep -q 'gedit.*expected the absolute path' '$work/example.out'"
  local twi='HKLM\SYSTEM\CurrentControlSet\Control\Citrix\wfshell\TWI'
  local svc='HKLM\System\CurrentControlSet\Services\wsconnector'
  local dir="$WINEPREFIX/drive_c/Program Files/wsconnector"
  printf '<configuration>\n  <Mode>single-user</Mode>\n  <Socket-port>0</Socket-port>\n</configuration>\n' >"$work/win.xml"
  printf '<configuration>\n  <Mode>single-user</Mode>\n  <Socket-port>not-a-port</Socket-port>\n</configuration>\n' >"$work/bad.xml"
  if ! { installer/build-msi.sh "$work/wsconnector.exe" "$work/win.xml" "$version" "$work/win.msi" &&
    installer/build-msi.sh "$work/wsconnector.exe" "$work/bad.xml" "$version" "$work/bad.msi"; } >/dev/null 2>&1; then
    bad "wixl builds the MSIs for Wine"
    return
  fi
  msi() { timeout 300 "$w" msiexec "$@" /qn >>"$work/msiexec.log" 2>&1; }
  # A service or product left by an earlier failed run.
  msi /x "$(winepath -w "$work/win.msi")" || true
  "$w" reg delete 'HKLM\SYSTEM\CurrentControlSet\Control\Citrix' /f >/dev/null 2>&1 || true
  # modules: LogoffCheckSysModules as reg query shows it.
  modules() { "$w" reg query "$twi" /v LogoffCheckSysModules 2>/dev/null | tr -d '\r' | sed -n 's/^ *LogoffCheckSysModules *REG_SZ *//p'; }
  # A Citrix host whose value lists two other programs (with a space).
  "$w" reg add "$twi" /v LogoffCheckSysModules /t REG_SZ /d "ssonsvr.exe, Other.EXE" /f >/dev/null
  if ! msi /i "$(winepath -w "$work/win.msi")" SERVICEMODE=1; then
    cat "$work/msiexec.log"
    bad "msiexec /i SERVICEMODE=1 under Wine"
    return
  fi
  ok "msiexec /i SERVICEMODE=1 under Wine"
  check "SERVICEMODE=1: the service is running" bash -c "'$w' sc query wsconnector | grep -q RUNNING"
  check "SERVICEMODE=1: the service runs service.xml" \
    bash -c "'$w' reg query '$svc' /v ImagePath | grep -qF -e '--config \"C:\\Program Files\\wsconnector\\service.xml\" service run'"
  check "SERVICEMODE=1: Citrix LogoffCheckSysModules = ssonsvr.exe,Other.EXE,wsconnector.exe" \
    test "$(modules)" = "ssonsvr.exe,Other.EXE,wsconnector.exe"
  check "msiexec /x under Wine" msi /x "$(winepath -w "$work/win.msi")"
  check "removed: the service is gone" bash -c "! '$w' reg query '$svc' >/dev/null 2>&1"
  check "removed: LogoffCheckSysModules back to ssonsvr.exe,Other.EXE" test "$(modules)" = "ssonsvr.exe,Other.EXE"
  check "removed: the program folder is gone" test ! -e "$dir/wsconnector.exe"
  # The service's log folder, left by the service above: gone, so the
  # next install must make it.
  rm -rf "$WINEPREFIX/drive_c/ProgramData/wsconnector"
  check "msiexec /i without SERVICEMODE under Wine" msi /i "$(winepath -w "$work/win.msi")"
  check "without SERVICEMODE: files, no service" \
    bash -c "[ -f '$dir/wsconnector.exe' ] && [ -f '$dir/service.xml' ] && ! '$w' reg query '$svc' >/dev/null 2>&1"
  check "the MSI made the service's log folder (ProgramData/wsconnector/logs)" \
    test -d "$WINEPREFIX/drive_c/ProgramData/wsconnector/logs"
  check "without SERVICEMODE: LogoffCheckSysModules untouched" test "$(modules)" = "ssonsvr.exe,Other.EXE"
  check "msiexec /x of the desktop install under Wine" msi /x "$(winepath -w "$work/win.msi")"
  # service install refuses service.xml (Socket-port is not a port): the
  # installation fails and is rolled back.
  if msi /i "$(winepath -w "$work/bad.msi")" SERVICEMODE=1; then
    bad "a failing service install fails the MSI"
    msi /x "$(winepath -w "$work/bad.msi")" || true
  else
    ok "a failing service install fails the MSI"
  fi
  check "rolled back: no program folder, no service" \
    bash -c "[ ! -e '$dir/wsconnector.exe' ] && ! '$w' reg query '$svc' >/dev/null 2>&1"
  "$w" reg delete 'HKLM\SYSTEM\CurrentControlSet\Control\Citrix' /f >/dev/null 2>&1 || true
  wineserver -k 2>/dev/null || true
}
t=$(date +%s)
if [ ! -x /usr/lib/wine/wine64 ]; then
  skipped "msiexec under Wine: wine64 is not installed (the Wine stage, scripts/test-windows.sh, installs it)"
else
  msi_under_wine
fi
echo "msiexec under wine: $(since "$t")"

# --- Debian package --------------------------------------------------------
t=$(date +%s)
rm -rf "$target_dir/debian"
if ! cargo deb --profile dev --locked --quiet 2>"$work/deb.err"; then
  cat "$work/deb.err"
  bad "cargo deb builds the package"
  finish
fi
deb=$(ls "$target_dir"/debian/wsconnector_*.deb | head -1)
ok "cargo deb builds $(basename "$deb")"
contents=$(dpkg-deb --contents "$deb")
check "the package holds /usr/bin/wsconnector" grep -qE ' \./usr/bin/wsconnector$' <<<"$contents"
check "the package holds the example configuration" grep -q './usr/share/wsconnector/config.xml.example' <<<"$contents"
check "the package holds the service's system unit" grep -q './lib/systemd/system/wsconnector.service' <<<"$contents"
check "the package holds the session agent's user unit" grep -q './usr/lib/systemd/user/wsconnector-agent.service' <<<"$contents"

if [ "$(id -u)" != 0 ]; then
  skipped "dpkg -i of the .deb: not root"
elif dpkg -s wsconnector >/dev/null 2>&1; then
  skipped "dpkg -i of the .deb: a wsconnector package is already installed here; not replacing it"
else
  dpkg -i "$deb" >/dev/null
  check "installed: wsconnector --version" \
    test "$(/usr/bin/wsconnector --version)" = "wsconnector $version"
  check "installed: check-config on the installed example" \
    bash -c '/usr/bin/wsconnector check-config /usr/share/wsconnector/config.xml.example | grep "is valid" >/dev/null'
  check "installed: check-config with no file (embedded defaults)" \
    bash -c 'cd / && HOME=$(mktemp -d) XDG_CONFIG_HOME= /usr/bin/wsconnector check-config | grep "embedded defaults" >/dev/null'
  if command -v systemd-analyze >/dev/null; then
    check "installed: systemd-analyze verify accepts the service unit" \
      bash -c '! systemd-analyze verify /lib/systemd/system/wsconnector.service 2>&1 | grep -q wsconnector'
  else
    skipped "systemd-analyze verify of the installed unit: systemd-analyze is not installed"
  fi
  dpkg -r wsconnector >/dev/null
  check "dpkg -r removes /usr/bin/wsconnector" test ! -e /usr/bin/wsconnector
fi
echo "debian package: $(since "$t")"

finish

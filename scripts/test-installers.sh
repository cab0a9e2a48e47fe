#!/usr/bin/env bash
# The installers, built and checked for real:
# - Windows: wsconnector.exe (the Wine stage's cross build, reused: cargo
#   only relinks when something changed) signed with osslsigncode using a
#   throwaway certificate made here, `osslsigncode verify` reports the
#   signature and refuses a tampered copy; the MSI built with wixl from
#   installer/wsconnector.wxs, its tables read back with msiinfo (binary,
#   config.xml, Start-menu shortcut, HKLM Run autostart), signed and verified.
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
installer/build-msi.sh "$work/signed.exe" config.xml.example "$version" "$work/wsconnector.msi" 2>"$work/wixl.err" ||
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

check "the unsigned MSI has no signature" not_verified "$work/wsconnector.msi"
installer/sign.sh "$work/wsconnector.msi" "$work/signed.msi" >/dev/null
check "osslsigncode verify reports the MSI's signature" verify_signed "$work/signed.msi"
echo "windows installer: $(since "$t")"

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

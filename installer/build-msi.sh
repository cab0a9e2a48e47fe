#!/usr/bin/env bash
# Builds the wsconnector MSI with Debian's wixl (package wixl) and msitools'
# msiinfo/msibuild (package msitools).
#   installer/build-msi.sh EXE CONFIG VERSION OUT.msi
# EXE is the (signed) wsconnector.exe, CONFIG the config.xml installed
# beside it (and, in service mode, as service.xml), VERSION the product
# version (x.y.z). wixl reads sources relative
# to the working directory, so they are staged in a temporary folder.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 EXE CONFIG VERSION OUT.msi" >&2
  exit 2
fi
exe=$1 config=$2 version=$3 out=$4
wxs="$(cd "$(dirname "$0")" && pwd)/wsconnector.wxs"
case $out in /*) ;; *) out=$PWD/$out ;; esac
stage=$(mktemp -d "${TMPDIR:-/tmp}/wsc-msi.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$exe" "$stage/wsconnector.exe"
cp "$config" "$stage/config.xml"
# service.xml: the same configuration in service mode (what SERVICEMODE=1
# registers the service with): <Mode> set to service, or added when absent.
if grep -q '<Mode>' "$config"; then
  sed 's|<Mode>[^<]*</Mode>|<Mode>service</Mode>|' "$config" >"$stage/service.xml"
else
  sed '0,/<configuration>/s||<configuration>\n  <Mode>service</Mode>|' "$config" >"$stage/service.xml"
fi
if ! grep -q '<Mode>service</Mode>' "$stage/service.xml"; then
  echo "$0: could not make a Mode = service copy of $config (no <configuration> element?)" >&2
  exit 1
fi
# wixl prints GLib warnings for attributes it ignores; errors still fail.
(cd "$stage" && wixl -a x64 -D "Version=$version" -D ExePath=wsconnector.exe \
  -D ConfigPath=config.xml -D ServiceConfigPath=service.xml -o "$out" "$wxs")
# SERVICEMODE must reach the elevated (server) side of the installation,
# which evaluates the service custom actions' condition: it has to be in
# SecureCustomProperties. wixl ignores Property/@Secure and writes that row
# itself (for MajorUpgrade), so SERVICEMODE is appended with msibuild.
secure=$(msiinfo export "$out" Property | tr -d '\r' | awk -F'\t' '$1 == "SecureCustomProperties" { print $2 }')
if [ -n "$secure" ]; then
  msibuild "$out" -q "UPDATE \`Property\` SET \`Value\` = '$secure;SERVICEMODE' WHERE \`Property\` = 'SecureCustomProperties'"
else
  msibuild "$out" -q "INSERT INTO \`Property\` (\`Property\`, \`Value\`) VALUES ('SecureCustomProperties', 'SERVICEMODE')"
fi
echo "built $out"

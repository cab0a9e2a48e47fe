#!/usr/bin/env bash
# Builds the wsconnector MSI with Debian's wixl (package wixl, from msitools).
#   installer/build-msi.sh EXE CONFIG VERSION OUT.msi
# EXE is the (signed) wsconnector.exe, CONFIG the config.xml installed
# beside it, VERSION the product version (x.y.z). wixl reads sources relative
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
# wixl prints GLib warnings for attributes it ignores; errors still fail.
(cd "$stage" && wixl -a x64 -D "Version=$version" -D ExePath=wsconnector.exe \
  -D ConfigPath=config.xml -o "$out" "$wxs")
echo "built $out"

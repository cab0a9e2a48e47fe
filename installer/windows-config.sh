#!/usr/bin/env bash
# Makes the config.xml the Windows MSI installs from config.xml.example:
#   installer/windows-config.sh config.xml.example OUT.xml
# The example declares Linux programs (/usr/bin/gedit, /usr/bin/chromium),
# which Windows refuses at load as "not absolute", so an MSI built straight
# from it installs a configuration on which neither `run` nor `service
# install` starts. Only the two <Program> paths differ; everything else,
# the documentation of every setting included, is the example's.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 config.xml.example OUT.xml" >&2
  exit 2
fi
in=$1 out=$2
# The Windows programs: Notepad takes a file name as gedit did (no
# --new-window: Notepad opens one window per start anyway); chrome.exe
# stays the legacy name pages pass, with Chrome's per-machine path. Its
# URLs open in the default browser (openUrl="true"), so the path is only
# the program the name stands for.
editor='    <Program name="editor" path="C:\\Windows\\System32\\notepad.exe"'
chrome='    <Program name="chrome.exe" path="C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" openUrl="true"/>'
sed -e "s|^    <Program name=\"editor\" path=\"/usr/bin/gedit\" args=\"--new-window\"\$|$editor|" \
  -e "s|^    <Program name=\"chrome.exe\" path=\"/usr/bin/chromium\" openUrl=\"true\"/>\$|$chrome|" \
  "$in" >"$out"
# The example changed and these lines no longer match: fail rather than
# ship Linux paths to Windows.
if grep -nE 'path="/' "$out" >&2; then
  echo "$0: $out still declares a Unix path (above); update this script for $in" >&2
  exit 1
fi
for want in 'notepad.exe' 'chrome.exe" path="C:'; do
  grep -q "$want" "$out" || {
    echo "$0: $in no longer has the programs this script rewrites ($want)" >&2
    exit 1
  }
done

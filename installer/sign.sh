#!/usr/bin/env bash
# Authenticode-signs a Windows file (.exe or .msi) with Debian's osslsigncode.
#   installer/sign.sh IN OUT
# The certificate comes from the environment, either
#   WSC_SIGN_CERT=cert.pem WSC_SIGN_KEY=key.pem        (PEM, unencrypted key), or
#   WSC_SIGN_PFX=codesign.pfx WSC_SIGN_PASS_FILE=file  (PKCS#12, password in a file);
# WSC_SIGN_TIMESTAMP_URL, when set, adds an RFC 3161 timestamp so the
# signature outlives the certificate (always set it at release).
# CI signs with a throwaway certificate (scripts/test-installers.sh);
# installer/README.md says how to sign a release.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 IN OUT" >&2
  exit 2
fi
args=(sign -h sha256 -n wsconnector -i https://github.com/wsconnector)
if [ -n "${WSC_SIGN_PFX:-}" ]; then
  args+=(-pkcs12 "$WSC_SIGN_PFX")
  [ -n "${WSC_SIGN_PASS_FILE:-}" ] && args+=(-readpass "$WSC_SIGN_PASS_FILE")
elif [ -n "${WSC_SIGN_CERT:-}" ] && [ -n "${WSC_SIGN_KEY:-}" ]; then
  args+=(-certs "$WSC_SIGN_CERT" -key "$WSC_SIGN_KEY")
else
  echo "$0: set WSC_SIGN_CERT and WSC_SIGN_KEY, or WSC_SIGN_PFX (and WSC_SIGN_PASS_FILE)" >&2
  exit 2
fi
if [ -n "${WSC_SIGN_TIMESTAMP_URL:-}" ]; then
  args+=(-ts "$WSC_SIGN_TIMESTAMP_URL")
fi
rm -f "$2"
osslsigncode "${args[@]}" -in "$1" -out "$2"

# Sourced by the scripts that drive real browsers (test-browser.sh,
# test-certs.sh): the shared preamble. Each caller defines `skip REASON`
# (a loud SKIPPED line, then exit 0) before sourcing this file.

# install_from_debian PKG...: installs the missing packages as root, or skips.
install_from_debian() {
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    skip "$* not installed and not root to install them (apt-get install -y $*)"
  fi
  echo "installing $* from Debian"
  apt-get update -qq || skip "apt-get update failed: cannot install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" || skip "apt-get install $* failed"
}

# require_node: Node.js 20 or newer (playwright-core), or skips.
require_node() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    skip "node and npm not found (install Node.js 20 or newer)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || skip "Node.js $(node --version) is too old: playwright-core needs 20 or newer"
}

# private_daemon_binary: exports WSCONNECTOR_BIN as a private copy of the
# daemon ($WSCONNECTOR_BIN, else the debug build, built if needed), so another
# build sharing the target dir cannot swap it mid-run. Removed on exit.
private_daemon_binary() {
  local bin target
  if [ -n "${WSCONNECTOR_BIN:-}" ]; then
    bin=$WSCONNECTOR_BIN
  else
    target=${CARGO_TARGET_DIR:-target}
    case $target in /*) ;; *) target=$PWD/$target ;; esac
    cargo build --locked --quiet --bin wsconnector
    bin=$target/debug/wsconnector
  fi
  [ -x "$bin" ] || { echo "daemon binary $bin not found or not executable" >&2; exit 1; }
  browser_bindir=$(mktemp -d "${TMPDIR:-/tmp}/wsc-browser-bin.XXXXXX")
  trap 'rm -rf "$browser_bindir"' EXIT
  cp "$bin" "$browser_bindir/wsconnector"
  export WSCONNECTOR_BIN=$browser_bindir/wsconnector
  "$WSCONNECTOR_BIN" --version
}

# playwright_deps: playwright-core exactly as locked in tests/browser; it never
# downloads a browser. Leaves the shell in tests/browser.
playwright_deps() {
  cd tests/browser
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  npm ci --no-audit --no-fund --loglevel=error
}

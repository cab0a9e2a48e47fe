#!/usr/bin/env bash
# Runs the fat-client examples (examples/java, examples/python,
# examples/dotnet) against the real daemon, over ws:// and over wss:// with a
# CA from `wsconnector cert create`.
#
# For each example and transport, two instances of the same example talk
# through the daemon (and, over ws://, each example with another one):
#   crm      registers, subscribes to every variable, prints each change and
#            answers a ringing call with GEN_P2T="RqAnswer";
#   toolbar  registers, subscribes to every variable, drops its connection
#            (--simulate-drop), reconnects and resumes with the hello's token,
#            publishes GEN_T2P="EvRinging", ANI=3225551234, VIP=true, NOTE=null
#            with setContextJSON and waits for the answer, then closes.
# Their output must be exactly the expected lines: the crm receives the four
# values with their JSON types and no echo of its own write; the toolbar is
# resumed (mode replay), its write lands after the resume (seq 4), and it
# receives the crm's answer and nothing of its own.
#
# Installs what is missing (as root): openjdk-17-jdk-headless, python3-venv,
# mono-mcs + mono-runtime from Debian; websockets (examples/python/
# requirements.txt) with pip into a venv under the target dir. What cannot be
# installed or run is reported as `SKIPPED: ...` (also appended to
# $WSC_SKIP_LOG) and does not fail the run; a wrong output does.
#
# The daemon binary is $WSCONNECTOR_BIN, else ${CARGO_TARGET_DIR:-target}/debug/wsconnector
# built with `cargo build --locked --bin wsconnector`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# Every wait is bounded; nothing sleeps for a fixed time to wait for readiness.
DEADLINE_S=${WSC_EXAMPLES_DEADLINE_S:-30}

start=$(date +%s)
passed=0
failed=0
skipped=0
results=()

skip() {
  echo
  echo "!!! SKIPPED: $1"
  echo
  skipped=$((skipped + 1))
  results+=("SKIPPED  $1")
  if [ -n "${WSC_SKIP_LOG:-}" ]; then
    echo "$1" >> "$WSC_SKIP_LOG"
  fi
}

# Debian packages, installed only when missing. Prints nothing on success;
# returns 1 (after printing why) when they cannot be installed.
apt_updated=
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "cannot install $*: not root (apt-get install -y $*)"
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    apt-get update -qq || { echo "apt-get update failed"; return 1; }
    apt_updated=1
  fi
  echo "installing $* from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    { echo "apt-get install $* failed"; return 1; }
}

target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$repo/$target ;; esac
mkdir -p "$target"
work=$(mktemp -d "${TMPDIR:-/tmp}/wsc-examples.XXXXXX")
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- The daemon binary (copied, so a parallel build cannot swap it mid-run).
if [ -n "${WSCONNECTOR_BIN:-}" ]; then
  bin=$WSCONNECTOR_BIN
else
  cargo build --locked --quiet --bin wsconnector
  bin=$target/debug/wsconnector
fi
[ -x "$bin" ] || { echo "daemon binary $bin not found or not executable" >&2; exit 1; }
cp "$bin" "$work/wsconnector"
"$work/wsconnector" --version

# --- The WSS certificate: a local CA and a localhost leaf, as PEM files.
"$work/wsconnector" cert create --dir "$work/certs" >/dev/null
ca=$work/certs/wsconnector-ca.pem
[ -s "$ca" ] || { echo "cert create wrote no $ca" >&2; exit 1; }

# Polls until file $1 has a line matching $2, or pid $3 exited, or the deadline.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3 end=$(($(date +%s) + DEADLINE_S))
  while ! grep -qE "$pattern" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      grep -qE "$pattern" "$file" 2>/dev/null && return 0
      echo "process $pid exited before printing /$pattern/; its output:" >&2
      cat "$file" >&2
      return 1
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "timed out after ${DEADLINE_S}s waiting for /$pattern/ in $file:" >&2
      cat "$file" >&2
      return 1
    fi
    sleep 0.05
  done
}

# Starts the daemon with Socket-type $1 (WS or WSS); sets daemon_pid and url.
start_daemon() {
  local type=$1 dir=$work/daemon-$1 tls=""
  mkdir -p "$dir"
  if [ "$type" = WSS ]; then
    tls="<Certificate-path>$work/certs/localhost.pem</Certificate-path>
  <Key-path>$work/certs/localhost.key</Key-path>"
  fi
  cat > "$dir/config.xml" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <Socket-type>$type</Socket-type>
  <Socket-port>0</Socket-port>
  <Log-level>INFO</Log-level>
  $tls
</configuration>
EOF
  "$work/wsconnector" run --config "$dir/config.xml" > "$dir/stdout" 2> "$dir/stderr" &
  daemon_pid=$!
  local banner='^wsconnector [^ ]+ listening on wss?://127\.0\.0\.1:[0-9]+ '
  if ! wait_for_line "$dir/stdout" "$banner" "$daemon_pid"; then
    cat "$dir/stderr" >&2
    exit 1
  fi
  local port
  port=$(sed -nE 's#^wsconnector [^ ]+ listening on wss?://127\.0\.0\.1:([0-9]+) .*#\1#p' "$dir/stdout" | head -1)
  local scheme=ws
  [ "$type" = WSS ] && scheme=wss
  url="$scheme://127.0.0.1:$port/"
  echo "daemon ($type) pid $daemon_pid at $url"
}

# SIGTERM; the daemon must exit 0 within the deadline.
stop_daemon() {
  kill -TERM "$daemon_pid"
  local end=$(($(date +%s) + DEADLINE_S))
  while kill -0 "$daemon_pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "daemon did not stop within ${DEADLINE_S}s of SIGTERM" >&2
      exit 1
    fi
    sleep 0.05
  done
  local rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=
  if [ "$rc" != 0 ]; then
    echo "daemon exited with $rc after SIGTERM (expected 0)" >&2
    failed=$((failed + 1))
    results+=("FAILED   daemon exit status $rc after SIGTERM")
    return 1
  fi
  echo "daemon stopped cleanly (exit 0)"
}

expected_crm='READY
EVENT GEN_T2P="EvRinging"
EVENT ANI=3225551234
EVENT VIP=true
EVENT NOTE=null
ANSWERED
STATE {"ANI":3225551234,"GEN_P2T":"RqAnswer","GEN_T2P":"EvRinging","NOTE":null,"VIP":true}
DONE'
expected_toolbar="HELLO user=$(id -un) native=true
RESUMED resumed=true modes=replay
PUBLISHED seq=4
EVENT GEN_P2T=\"RqAnswer\"
DONE"

# Runs one scenario: `scenario NAME ENV CRM TOOLBAR`, CRM and TOOLBAR being
# the names of arrays holding an example's command line (without
# --role/--env/--url).
scenario() {
  local name=$1 env=$2
  local -n crm_cmd=$3 tb_cmd=$4
  local t0 crm_out=$work/$env.crm tb_out=$work/$env.toolbar crm_pid rc_tb=0 rc_crm=0 ok=1
  t0=$(date +%s%N)
  echo "--- $name"
  : > "$crm_out"
  : > "$tb_out"
  "${crm_cmd[@]}" --role crm --env "$env" --url "$url" --ca "$ca" --timeout "$DEADLINE_S" > "$crm_out" 2>&1 &
  crm_pid=$!
  if wait_for_line "$crm_out" '^READY$' "$crm_pid"; then
    timeout "$((DEADLINE_S + 5))" "${tb_cmd[@]}" --role toolbar --env "$env" --url "$url" --ca "$ca" \
      --timeout "$DEADLINE_S" --simulate-drop > "$tb_out" 2>&1 || rc_tb=$?
  else
    ok=0
  fi
  # The crm ends by itself (after 4 events, or at its own timeout).
  local end=$(($(date +%s) + DEADLINE_S + 5))
  while kill -0 "$crm_pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done
  kill -KILL "$crm_pid" 2>/dev/null || true
  wait "$crm_pid" || rc_crm=$?
  # stdout lines only: the examples log reconnect diagnostics on stderr,
  # which is merged into the files; keep the protocol lines.
  local got_crm got_tb
  got_crm=$(grep -E '^(READY|EVENT|ANSWERED|STATE|DONE|TIMEOUT|FAILED)' "$crm_out" || true)
  got_tb=$(grep -E '^(HELLO|RESUMED|RESYNC|PUBLISHED|EVENT|DONE|TIMEOUT|FAILED)' "$tb_out" || true)
  if [ "$rc_crm" != 0 ] || [ "$got_crm" != "$expected_crm" ]; then
    ok=0
    echo "crm (exit $rc_crm) printed:"; sed 's/^/  | /' "$crm_out" || true
    echo "expected:"; sed 's/^/  | /' <<< "$expected_crm" || true
  fi
  # PUBLISHED (the reply, printed where the example's own code resumes)
  # and the CRM's answer EVENT (printed by the thread or task that reads
  # the socket) race in the examples' output although the reply is first
  # on the wire: compare the toolbar's lines as a set, plus its first and
  # last line.
  local tb_set expected_set
  tb_set=$(sort <<< "$got_tb")
  expected_set=$(sort <<< "$expected_toolbar")
  if [ "$rc_tb" != 0 ] || [ "$tb_set" != "$expected_set" ] \
    || [ "$(head -1 <<< "$got_tb")" != "$(head -1 <<< "$expected_toolbar")" ] \
    || [ "$(tail -1 <<< "$got_tb")" != "DONE" ]; then
    ok=0
    echo "toolbar (exit $rc_tb) printed:"; sed 's/^/  | /' "$tb_out" || true
    echo "expected:"; sed 's/^/  | /' <<< "$expected_toolbar" || true
  fi
  local ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1))
    results+=("passed   $name (${ms} ms)")
    echo "passed: $name (${ms} ms)"
  else
    failed=$((failed + 1))
    results+=("FAILED   $name (${ms} ms)")
    echo "FAILED: $name (${ms} ms)"
  fi
}

# --- Prerequisites and builds: each example gets a command line or a skip.
java_cmd=()
echo "=== Java"
if ! command -v javac >/dev/null || ! javac -version 2>&1 | grep -qE 'javac (1[7-9]|[2-9][0-9])'; then
  apt_install openjdk-17-jdk-headless || true
fi
if command -v javac >/dev/null && javac -version 2>&1 | grep -qE 'javac (1[7-9]|[2-9][0-9])'; then
  javac -version
  rm -rf "$target/examples/java"
  javac -Xlint:all -Werror -d "$target/examples/java" examples/java/WsConnectorClient.java
  java_cmd=(java -cp "$target/examples/java" WsConnectorClient)
else
  skip "Java example: no JDK 17+ (javac) and it could not be installed"
fi

python_cmd=()
echo "=== Python"
venv=$target/examples/python-venv
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv || true
fi
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  python3 --version
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if "$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/python/requirements.txt; then
    "$venv/bin/python" -c 'import websockets; print("websockets", websockets.__version__)'
    python_cmd=("$venv/bin/python" examples/python/wsconnector_client.py)
  else
    skip "Python example: pip install -r examples/python/requirements.txt failed"
  fi
else
  skip "Python example: python3 with venv/ensurepip not available and python3-venv could not be installed"
fi

dotnet_cmd=()
echo "=== .NET (Mono)"
if ! command -v mcs >/dev/null || ! command -v mono >/dev/null; then
  apt_install mono-mcs mono-runtime || true
fi
if command -v mcs >/dev/null && command -v mono >/dev/null; then
  mono --version | head -1
  mkdir -p "$target/examples/dotnet"
  mcs -warn:4 -warnaserror -out:"$target/examples/dotnet/WsConnectorClient.exe" examples/dotnet/WsConnectorClient.cs
  dotnet_cmd=(mono "$target/examples/dotnet/WsConnectorClient.exe")
else
  skip ".NET example: mono-mcs/mono-runtime not installed and could not be installed"
fi

# --- The scenarios, over ws:// then wss://.
for type in WS WSS; do
  echo
  echo "=== daemon over $type"
  start_daemon "$type"
  lower=$(echo "$type" | tr 'A-Z' 'a-z')
  [ ${#java_cmd[@]} -gt 0 ] && scenario "java over $lower" "JAVA_$type" java_cmd java_cmd
  [ ${#python_cmd[@]} -gt 0 ] && scenario "python over $lower" "PYTHON_$type" python_cmd python_cmd
  if [ ${#dotnet_cmd[@]} -gt 0 ]; then
    if [ "$type" = WSS ]; then
      # Checked here: Mono's TLS (BoringSSL fork) stops the handshake with
      # UNSUPPORTED_CONSTRAINT_TYPE on the name-constrained local CA, even
      # when the CA is in Mono's trust store (cert-sync), before the
      # validation callback runs; Mono's managed X509Chain cannot decode the
      # ECDSA keys either. Windows .NET and .NET 6+ handle both.
      skip ".NET example over wss: Mono 6.8 cannot validate the name-constrained ECDSA local CA (UNSUPPORTED_CONSTRAINT_TYPE); run it with the .NET SDK on Windows or .NET 6+"
    else
      scenario ".NET (mono) over $lower" "DOTNET_$type" dotnet_cmd dotnet_cmd
    fi
  fi
  if [ "$type" = WS ]; then
    # The examples also understand each other (crm of one, toolbar of another).
    [ ${#python_cmd[@]} -gt 0 ] && [ ${#java_cmd[@]} -gt 0 ] &&
      scenario "python crm + java toolbar over ws" CROSS_PY_JAVA python_cmd java_cmd
    [ ${#java_cmd[@]} -gt 0 ] && [ ${#dotnet_cmd[@]} -gt 0 ] &&
      scenario "java crm + .NET toolbar over ws" CROSS_JAVA_DOTNET java_cmd dotnet_cmd
    [ ${#dotnet_cmd[@]} -gt 0 ] && [ ${#python_cmd[@]} -gt 0 ] &&
      scenario ".NET crm + python toolbar over ws" CROSS_DOTNET_PY dotnet_cmd python_cmd
  fi
  stop_daemon || true
done

echo
printf '%s\n' "${results[@]}"
echo "=== examples done in $(($(date +%s) - start)) s"
echo "examples: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

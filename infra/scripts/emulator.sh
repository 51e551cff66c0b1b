#!/usr/bin/env bash
# The AWS emulator of the local stack, on the host and port of AWS_ENDPOINT_URL (default
# http://127.0.0.1:4566), and beside it localstripe, the Stripe API, on the host and port of
# STRIPE_API_BASE (default http://127.0.0.1:8420). If something already answers on either
# address, it is used and left alone.
#
#   EMULATOR=localstack (default)  LocalStack in host mode, no Docker: installed by
#                                   infra/localstack/install.sh into $LOCALSTACK_HOME
#   EMULATOR=moto                   moto_server from the project's venv, through moto_server.py
#                                   beside this script (which isolates its DynamoDB operations);
#                                   a quicker lane to start, slower for transactions
#   localstripe (either way)        infra/localstripe/serve.py from the venv that
#                                   infra/localstripe/install.sh makes in $LOCALSTRIPE_HOME;
#                                   its state is in memory and goes when it stops
#
#   emulator.sh start        start each one unless something answers; wait until they are ready
#   emulator.sh stop         stop what this script started
#   emulator.sh run CMD...   start, run CMD (STRIPE_API_BASE exported), stop again what this
#                            run started; CMD's exit status
#
# Logs and pid files: $DEVSTACK_STATE_DIR (default .devstack)/{emulator,localstripe}.{log,pid}.
set -euo pipefail

ENDPOINT="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
EMULATOR="${EMULATOR:-localstack}"
VENV="${VENV:-.venv}"
LOCALSTACK_HOME="${LOCALSTACK_HOME:-.localstack}"
STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:8420}"
LOCALSTRIPE_HOME="${LOCALSTRIPE_HOME:-.localstripe}"
STATE_DIR="${DEVSTACK_STATE_DIR:-.devstack}"
# What the stack uses: the functions' services, and STS for the account id provisioning reads.
LOCALSTACK_SERVICES="sqs,sns,dynamodb,ssm,secretsmanager,ses,sts"
# The services this invocation launched (run stops only those).
STARTED=()

# host and port of a URL such as http://127.0.0.1:4566
host_of() { local hp="${1#*://}"; hp="${hp%%/*}"; echo "${hp%:*}"; }
port_of() { local hp="${1#*://}"; hp="${hp%%/*}"; echo "${hp##*:}"; }

answers() { curl -s -o /dev/null --max-time 1 "$ENDPOINT/" ; }

# LocalStack answers its health route before every service is up: ready when each one we use is.
ready() {
  case "$EMULATOR" in
    moto) answers ;;
    localstack)
      local health
      health="$(curl -s --max-time 1 "$ENDPOINT/_localstack/health")" || return 1
      "$LOCALSTACK_HOME/venv/bin/python" - "$LOCALSTACK_SERVICES" "$health" <<'PY'
import json, sys
services = json.loads(sys.argv[2]).get("services", {})
sys.exit(0 if all(services.get(s) in ("available", "running") for s in sys.argv[1].split(",")) else 1)
PY
      ;;
  esac
}

launch() {
  local host port; host="$(host_of "$ENDPOINT")"; port="$(port_of "$ENDPOINT")"
  case "$EMULATOR" in
    moto) exec "$VENV/bin/python" "$(dirname "$0")/moto_server.py" -H "$host" -p "$port" ;;
    localstack)
      [[ -x "$LOCALSTACK_HOME/venv/bin/python" ]] || {
        echo "emulator: LocalStack is not installed in $LOCALSTACK_HOME (run make venv)" >&2; return 1; }
      # Host mode, every download off (DynamoDB Local and Java are in place: install.sh), state
      # in memory, no DNS server, no usage events. OVERRIDE_IN_DOCKER: this machine looks like a
      # container to LocalStack, which would then ignore FILESYSTEM_ROOT.
      exec env OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$(cd "$LOCALSTACK_HOME" && pwd)/fs" \
        SERVICES="$LOCALSTACK_SERVICES" STRICT_SERVICE_LOADING=1 \
        GATEWAY_LISTEN="$host:$port" LOCALSTACK_HOST="$host:$port" \
        DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 DYNAMODB_IN_MEMORY=1 \
        PERSISTENCE=0 EAGER_SERVICE_LOADING=1 \
        "$LOCALSTACK_HOME/venv/bin/python" -m localstack.runtime.main ;;
    *) echo "emulator: EMULATOR must be localstack or moto, not $EMULATOR" >&2; return 2 ;;
  esac
}

stripe_answers() { curl -s -o /dev/null --max-time 1 "$STRIPE_API_BASE/" ; }

# Ready when it answers an authenticated read (localstripe takes any key that starts with sk_;
# listing PaymentIntents changes nothing in its store).
stripe_ready() {
  curl -sf --max-time 1 -H 'Authorization: Bearer sk_test_devstack' \
    "$STRIPE_API_BASE/v1/payment_intents?limit=1" | grep -q '"object": "list"'
}

stripe_launch() {
  [[ -x "$LOCALSTRIPE_HOME/venv/bin/python" ]] || {
    echo "localstripe: not installed in $LOCALSTRIPE_HOME (run make venv)" >&2; return 1; }
  exec "$LOCALSTRIPE_HOME/venv/bin/python" "$(dirname "$0")/../localstripe/serve.py" \
    --host "$(host_of "$STRIPE_API_BASE")" --port "$(port_of "$STRIPE_API_BASE")"
}

# start_service NAME WHAT ADDRESS ANSWERS READY LAUNCH: launch it in the background unless
# something answers at ADDRESS, then wait until READY; pid and log in $STATE_DIR/NAME.{pid,log}.
start_service() {
  local name=$1 what=$2 address=$3 answers=$4 ready=$5 launch=$6
  local pid_file="$STATE_DIR/$name.pid" log_file="$STATE_DIR/$name.log"
  if "$answers"; then
    echo "$name: using the one already at $address"
    return 0
  fi
  mkdir -p "$STATE_DIR"
  local began; began=$(date +%s%N)
  "$launch" >"$log_file" 2>&1 &
  echo $! >"$pid_file"
  STARTED+=("$name")
  for _ in $(seq 1 300); do
    if "$ready"; then
      echo "$name: $what ready at $address in $(( ($(date +%s%N) - began) / 1000000 )) ms (pid $(cat "$pid_file"), log $log_file)"
      return 0
    fi
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "$name: $what did not come up at $address; see $log_file" >&2
  cat "$log_file" >&2 || true
  stop_service "$name"
  return 1
}

stop_service() {
  local pid_file="$STATE_DIR/$1.pid"
  if [[ -f "$pid_file" ]]; then
    local pid; pid="$(cat "$pid_file")"
    # LocalStack stops its DynamoDB Local (java) child on SIGTERM before it exits.
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$pid_file"
    echo "$1: stopped (pid $pid)"
  fi
}

# If localstripe does not come up, the emulator this call launched is stopped too.
start() {
  start_service emulator "$EMULATOR" "$ENDPOINT" answers ready launch || return 1
  if ! start_service localstripe localstripe "$STRIPE_API_BASE" stripe_answers stripe_ready stripe_launch; then
    if [[ " ${STARTED[*]} " == *" emulator "* ]]; then stop_service emulator; fi
    return 1
  fi
}

stop() { stop_service localstripe; stop_service emulator; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run)
    shift
    start
    export STRIPE_API_BASE
    status=0
    "$@" || status=$?
    for (( i = ${#STARTED[@]} - 1; i >= 0; i-- )); do stop_service "${STARTED[i]}"; done
    exit $status
    ;;
  *) echo "usage: $0 start|stop|run CMD..." >&2; exit 2 ;;
esac

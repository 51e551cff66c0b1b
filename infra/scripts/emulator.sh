#!/usr/bin/env bash
# The AWS emulator of the local stack, on the host and port of AWS_ENDPOINT_URL (default
# http://127.0.0.1:4566). If an emulator already answers there, it is used and left alone.
#
#   EMULATOR=localstack (default)  LocalStack in host mode, no Docker: installed by
#                                   infra/localstack/install.sh into $LOCALSTACK_HOME
#   EMULATOR=moto                   moto_server from the project's venv, through moto_server.py
#                                   beside this script (which isolates its DynamoDB operations);
#                                   a quicker lane to start, slower for transactions
#
#   emulator.sh start        start it unless something answers; wait until it is ready
#   emulator.sh stop         stop it, if this script started it
#   emulator.sh run CMD...   start, run CMD, stop again if we started it; CMD's exit status
set -euo pipefail

ENDPOINT="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
EMULATOR="${EMULATOR:-localstack}"
VENV="${VENV:-.venv}"
LOCALSTACK_HOME="${LOCALSTACK_HOME:-.localstack}"
STATE_DIR="${DEVSTACK_STATE_DIR:-.devstack}"
PID_FILE="$STATE_DIR/emulator.pid"
LOG_FILE="$STATE_DIR/emulator.log"
# What the stack uses: the functions' services, and STS for the account id provisioning reads.
LOCALSTACK_SERVICES="sqs,sns,dynamodb,ssm,secretsmanager,ses,sts"

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
  local hostport="${ENDPOINT#*://}"; hostport="${hostport%%/*}"
  local host="${hostport%:*}" port="${hostport##*:}"
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

start() {
  if answers; then
    echo "emulator: using the one already at $ENDPOINT"
    return 0
  fi
  mkdir -p "$STATE_DIR"
  local began; began=$(date +%s%N)
  launch >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 300); do
    if ready; then
      echo "emulator: $EMULATOR ready at $ENDPOINT in $(( ($(date +%s%N) - began) / 1000000 )) ms (pid $(cat "$PID_FILE"), log $LOG_FILE)"
      return 0
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "emulator: $EMULATOR did not come up at $ENDPOINT; see $LOG_FILE" >&2
  cat "$LOG_FILE" >&2 || true
  stop
  return 1
}

stop() {
  if [[ -f "$PID_FILE" ]]; then
    local pid; pid="$(cat "$PID_FILE")"
    # LocalStack stops its DynamoDB Local (java) child on SIGTERM before it exits.
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$PID_FILE"
    echo "emulator: stopped (pid $pid)"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run)
    shift
    started=0
    answers || started=1
    start
    status=0
    "$@" || status=$?
    if [[ $started == 1 ]]; then stop; fi
    exit $status
    ;;
  *) echo "usage: $0 start|stop|run CMD..." >&2; exit 2 ;;
esac

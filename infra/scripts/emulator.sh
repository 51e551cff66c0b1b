#!/usr/bin/env bash
# The AWS emulator of the local stack: moto_server from the project's venv (through
# moto_server.py beside this script, which isolates its DynamoDB operations), on the host and
# port of AWS_ENDPOINT_URL (default http://127.0.0.1:4566). If an emulator (moto or
# LocalStack) already answers there, it is used and left alone.
#
#   emulator.sh start        start it unless something answers; wait until it is ready
#   emulator.sh stop         stop it, if this script started it
#   emulator.sh run CMD...   start, run CMD, stop again if we started it; CMD's exit status
set -euo pipefail

ENDPOINT="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
VENV="${VENV:-.venv}"
STATE_DIR="${DEVSTACK_STATE_DIR:-.devstack}"
PID_FILE="$STATE_DIR/emulator.pid"
LOG_FILE="$STATE_DIR/emulator.log"

answers() { curl -s -o /dev/null --max-time 1 "$ENDPOINT/" ; }

start() {
  if answers; then
    echo "emulator: using the one already at $ENDPOINT"
    return 0
  fi
  local hostport="${ENDPOINT#*://}"; hostport="${hostport%%/*}"
  local host="${hostport%:*}" port="${hostport##*:}"
  mkdir -p "$STATE_DIR"
  "$VENV/bin/python" "$(dirname "$0")/moto_server.py" -H "$host" -p "$port" >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if answers; then echo "emulator: moto_server started at $ENDPOINT (pid $(cat "$PID_FILE"), log $LOG_FILE)"; return 0; fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "emulator: moto_server did not come up at $ENDPOINT; see $LOG_FILE" >&2
  cat "$LOG_FILE" >&2 || true
  stop
  return 1
}

stop() {
  if [[ -f "$PID_FILE" ]]; then
    local pid; pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
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

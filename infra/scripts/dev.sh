#!/usr/bin/env bash
# `make dev`: the emulator, template.yaml provisioned on it, then wait for Ctrl-C, which
# stops everything this script started.
set -euo pipefail

STACK_NAME="${STACK_NAME:-ecommerce}"
started=0
curl -s -o /dev/null --max-time 1 "$AWS_ENDPOINT_URL/" || started=1
infra/scripts/emulator.sh start
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [[ $started == 1 ]]; then infra/scripts/emulator.sh stop; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo run --quiet -p devstack -- provision --stack-name "$STACK_NAME" --output .devstack/stack.json

cat <<INFO

Local stack "$STACK_NAME" is provisioned on the emulator at $AWS_ENDPOINT_URL.
Resource ids and ARNs: .devstack/stack.json
Not yet served: the HTTP API on http://127.0.0.1:3000 and the queue pollers arrive with
the local-stack issue; until then call the functions' handlers through their tests.

Press Ctrl-C to stop.
INFO
sleep infinity & wait $!

#!/usr/bin/env bash
# `make dev`: the emulator and localstripe, then `devstack serve` in the foreground (provision
# template.yaml, serve the HTTP API on 127.0.0.1:3000, run the functions, poll the queues,
# stream logs). Ctrl-C stops devstack (and with it every function process) and the emulator
# and localstripe if we started them.
set -euo pipefail

STACK_NAME="${STACK_NAME:-ecommerce}"
# localstripe's address (emulator.sh's default): devstack points the payment functions at it,
# creates their Stripe secret and registers the stack's webhook endpoint there.
export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:8420}"
DEVSTACK="${CARGO_TARGET_DIR:-target}/debug/devstack"
started=0
curl -s -o /dev/null --max-time 1 "$AWS_ENDPOINT_URL/" || started=1
infra/scripts/emulator.sh start
cleanup() { if [[ $started == 1 ]]; then infra/scripts/emulator.sh stop; fi; }
trap cleanup EXIT

"$DEVSTACK" --stack-name "$STACK_NAME" serve --listen "${LISTEN:-127.0.0.1:3000}" --output .devstack/stack.json --seed infra/seed/demo.json

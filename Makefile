# Two commands matter on a fresh machine: `make dev` and `make test` (see README.md).
# Everything they need is installed here, into the project's venv, only when missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
export VENV
CARGO ?= cargo
STACK_NAME ?= ecommerce
# Where `make invoke`'s function reaches the HTTP API for internal calls: `make dev`'s.
API_URL ?= http://127.0.0.1:3000

# Local runs talk to the emulator with dummy credentials; they never reach AWS.
# (Used as `env $(LOCAL_ENV) CMD`.)
LOCAL_ENV := -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566} \
	AWS_REGION=$${AWS_REGION:-us-east-1} \
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
EMULATOR_SH := env $(LOCAL_ENV) infra/scripts/emulator.sh

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The stamp names the requirements' hash: a changed pin reinstalls, a fresh clone does not.
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum infra/requirements.txt | cut -c1-16)
$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# The AsyncAPI parser (Node): `make lint` validates infra/asyncapi.yaml with it.
NODE_TOOLS_STAMP := infra/node_modules/.installed-$(shell sha256sum infra/package-lock.json | cut -c1-16)
$(NODE_TOOLS_STAMP):
	npm ci --prefix infra --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -f infra/node_modules/.installed-*
	touch $@

# The web app (web/, Preact + Vite): its packages from the npm registry, then a build into
# web/dist that devstack serves at / (`make dev`, the browser tests). The build regenerates the
# API types from infra/openapi.yaml and type-checks them, so it runs every time (about 2 s).
WEB_STAMP := web/node_modules/.installed-$(shell sha256sum web/package-lock.json | cut -c1-16)
$(WEB_STAMP):
	npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -f web/node_modules/.installed-*
	touch $@

.PHONY: web
web: $(WEB_STAMP) ## Build the web app into web/dist (served by devstack at /)
	npm run --prefix web --silent build

# The emulator: LocalStack (default; its own venv on Python 3.13 and DynamoDB Local's jars, in
# LOCALSTACK_HOME) or EMULATOR=moto (from the project's venv). See infra/scripts/emulator.sh.
EMULATOR ?= localstack
export EMULATOR
LOCALSTACK_HOME ?= .localstack
export LOCALSTACK_HOME
LOCALSTACK_STAMP := $(LOCALSTACK_HOME)/.installed-$(shell cat infra/localstack/requirements.txt \
	infra/localstack/package-lock.json infra/localstack/install.sh infra/localstack/NoopAgent.java | sha256sum | cut -c1-16)
$(LOCALSTACK_STAMP):
	infra/localstack/install.sh
	rm -f $(LOCALSTACK_HOME)/.installed-*
	touch $@
EMULATOR_STAMP := $(if $(filter localstack,$(EMULATOR)),$(LOCALSTACK_STAMP))

# localstripe, the Stripe API beside the emulator (its own venv, in LOCALSTRIPE_HOME); see
# infra/localstripe/README.md.
LOCALSTRIPE_HOME ?= .localstripe
export LOCALSTRIPE_HOME
LOCALSTRIPE_STAMP := $(LOCALSTRIPE_HOME)/.installed-$(shell cat infra/localstripe/requirements.txt \
	infra/localstripe/install.sh | sha256sum | cut -c1-16)
$(LOCALSTRIPE_STAMP):
	infra/localstripe/install.sh
	rm -f $(LOCALSTRIPE_HOME)/.installed-*
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) $(NODE_TOOLS_STAMP) $(EMULATOR_STAMP) $(LOCALSTRIPE_STAMP) ## Install the emulator, localstripe and the linters (venvs, node_modules) if missing

# cargo-lambda and zig: only the arm64 (deploy) builds need them, so `make test` does not.
BUILD_TOOLS_STAMP := $(VENV)/.build-tools-$(shell sha256sum infra/requirements-build.txt | cut -c1-16)
$(BUILD_TOOLS_STAMP): $(VENV_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-build.txt
	rm -f $(VENV)/.build-tools-*
	touch $@

# The function crates (one package per service); what deploys and benchmarks build.
FUNCTION_PACKAGES := $(addprefix -p ,$(notdir $(wildcard functions/*)))
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: build-arm64
build-arm64: $(BUILD_TOOLS_STAMP) ## Release builds for Lambda (arm64, zipped) into $(TARGET_DIR)/lambda
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(abspath $(VENV))/bin:$$PATH" $(CARGO) lambda build --release --arm64 --output-format zip \
		$(FUNCTION_PACKAGES) -p bench-baseline

.PHONY: build
build: ## Build every crate (functions, devstack, tests)
	$(CARGO) build --workspace --all-targets

.PHONY: dev
dev: venv build web ## The whole stack at http://127.0.0.1:3000 (emulator, API, functions, pollers); Ctrl-C stops it
	env $(LOCAL_ENV) STACK_NAME=$(STACK_NAME) infra/scripts/dev.sh

.PHONY: provision
provision: venv ## Provision template.yaml on the running emulator
	env $(LOCAL_ENV) $(CARGO) run --quiet -p devstack -- provision --stack-name $(STACK_NAME) --output .devstack/stack.json

.PHONY: test
test: venv lint fmt-check clippy deny web ## Every test: linters, unit, handler and system tests against the emulator
	$(CARGO) build --workspace --all-targets
	env $(LOCAL_ENV) infra/scripts/offline.sh infra/scripts/emulator.sh run $(CARGO) test --offline --workspace --no-fail-fast

.PHONY: redrive
redrive: ## Move a DLQ's messages back to their queue: make redrive QUEUE=notification-dlq (make dev's stack; AWS=1: the deployed one)
	@test -n "$(QUEUE)" || { echo "make redrive: name the DLQ, e.g. QUEUE=notification-dlq"; exit 1; }
	env $(if $(AWS),,$(LOCAL_ENV)) $(CARGO) run --quiet -p devstack -- --stack-name $(STACK_NAME) redrive $(QUEUE)

.PHONY: invoke
invoke: venv ## Replay one event: make invoke FN=HealthFunction EVENT=events/http-get-health.json [API_URL=...]
	$(CARGO) build --quiet --workspace
	$(EMULATOR_SH) run $(CARGO) run --quiet -p devstack -- --stack-name $(STACK_NAME) --api-url $(API_URL) invoke $(FN) $(EVENT)

.PHONY: admin
admin: ## On AWS: create the stack's admin account (ADMIN_EMAIL, ADMIN_PASSWORD; STACK_NAME); idempotent
	@test -n "$$ADMIN_PASSWORD" || { echo "make admin: set ADMIN_PASSWORD (and ADMIN_EMAIL) for the deployed stack"; exit 1; }
	$(CARGO) run --quiet -p devstack -- --stack-name $(STACK_NAME) create-admin

.PHONY: package
package: build-arm64 ## .aws-sam/build/template.yaml: the template with each function's arm64 zip
	$(VENV)/bin/python infra/scripts/package.py template.yaml $(TARGET_DIR) .aws-sam/build/template.yaml

# `sam deploy` reads samconfig.toml and deploys what `make package` wrote, with the signing
# keys' parameters (JwtPublicKeys, JwtSigningKeyId) from the stack's key secret, made on the
# first deploy (docs/operations.md, Signing keys). First time on AWS: make deploy DEPLOY_ARGS=--guided
CONFIG_ENV ?= default
PARAMETER_OVERRIDES ?= LogLevel=INFO
.PHONY: deploy
deploy: package web ## Deploy to AWS with sam (samconfig.toml's CONFIG_ENV), then the web app to its bucket; DEPLOY_ARGS=--guided the first time
	keys="$$($(CARGO) run --quiet -p devstack -- --stack-name $(STACK_NAME) jwt-keys parameters)" && \
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy --config-env $(CONFIG_ENV) \
		--parameter-overrides $$keys $(PARAMETER_OVERRIDES) $(DEPLOY_ARGS)
	$(VENV)/bin/python infra/scripts/publish_web.py $(STACK_NAME) web/dist

# Rotation of the signing keys, one step at a time with a deploy between (docs/operations.md):
# make jwt-keys STEP=add | STEP="sign KID" | STEP="retire KID" | STEP=show
STEP ?= show
# make push-apps GCM_KEY=firebase-service-account.json and/or
# APNS_CERTIFICATE=cert.pem APNS_PRIVATE_KEY=key.pem (docs/operations.md, Push)
.PHONY: push-apps
push-apps: ## On AWS: the stack's push applications (SNS) from GCM_KEY and/or APNS_CERTIFICATE + APNS_PRIVATE_KEY
	$(CARGO) run --quiet -p devstack -- --stack-name $(STACK_NAME) push-apps $(if $(GCM_KEY),--gcm-key $(GCM_KEY)) \
		$(if $(APNS_CERTIFICATE),--apns-certificate $(APNS_CERTIFICATE)) $(if $(APNS_PRIVATE_KEY),--apns-private-key $(APNS_PRIVATE_KEY))

.PHONY: jwt-keys
jwt-keys: ## The deployed stack's token-signing keys: STEP=show|add|"sign KID"|"retire KID"
	$(CARGO) run --quiet -p devstack -- --stack-name $(STACK_NAME) jwt-keys $(STEP)

# A fresh emulator of its own, so that nothing else loads it while it is measured.
BENCH_ENDPOINT ?= http://127.0.0.1:4599
.PHONY: bench
bench: venv build-arm64 ## Benchmarks (not part of `make test`): cold start, latency, size, memory -> target/bench
	$(CARGO) build --release $(FUNCTION_PACKAGES) -p bench-baseline
	$(CARGO) build -p bench
	@mkdir -p $(TARGET_DIR)/bench
	@echo "bench: function logs go to $(TARGET_DIR)/bench/functions.log"
	env $(LOCAL_ENV) AWS_ENDPOINT_URL=$(BENCH_ENDPOINT) DEVSTACK_STATE_DIR=.devstack/bench infra/scripts/emulator.sh \
		run $(TARGET_DIR)/debug/bench --out $(TARGET_DIR)/bench $(BENCH_ARGS) \
		2>$(TARGET_DIR)/bench/functions.log || { tail -n 30 $(TARGET_DIR)/bench/functions.log; exit 1; }

LOAD_ENDPOINT ?= http://127.0.0.1:4598
.PHONY: load
load: venv ## The stack under load (not part of `make test`): shopping for 60 s, then a flash sale -> target/bench/load.*
	$(CARGO) build --release $(FUNCTION_PACKAGES)
	$(CARGO) build -p bench
	@mkdir -p $(TARGET_DIR)/bench
	@echo "load: function logs go to $(TARGET_DIR)/bench/load-functions.log"
	env $(LOCAL_ENV) AWS_ENDPOINT_URL=$(LOAD_ENDPOINT) DEVSTACK_STATE_DIR=.devstack/load infra/scripts/emulator.sh \
		run $(TARGET_DIR)/debug/bench --out $(TARGET_DIR)/bench load $(LOAD_ARGS) \
		2>$(TARGET_DIR)/bench/load-functions.log || { tail -n 30 $(TARGET_DIR)/bench/load-functions.log; exit 1; }

.PHONY: asyncapi
asyncapi: ## Regenerate infra/asyncapi.yaml (from shared/src/events.rs, template.yaml and events/)
	$(CARGO) run --quiet -p devstack -- asyncapi --output infra/asyncapi.yaml

.PHONY: lint
lint: venv ## cfn-lint and sam validate --lint on template.yaml; the OpenAPI and AsyncAPI documents are valid
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(VENV)/bin/openapi-spec-validator infra/openapi.yaml
	node infra/scripts/validate-asyncapi.mjs infra/asyncapi.yaml
	env $(LOCAL_ENV) SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --region us-east-1

# cargo-deny, pinned; installed into ~/.cargo/bin once (a few minutes), then reused.
CARGO_DENY_VERSION := 0.20.2
.PHONY: cargo-deny
cargo-deny:
	@cargo deny --version 2>/dev/null | grep -qx "cargo-deny $(CARGO_DENY_VERSION)" || \
		$(CARGO) install --locked --quiet cargo-deny@$(CARGO_DENY_VERSION)

.PHONY: deny
deny: cargo-deny ## Dependencies: permissive licenses only, crates.io only, no wildcard versions (deny.toml)
	$(CARGO) deny check licenses bans sources

.PHONY: audit
audit: cargo-deny ## Known vulnerabilities (RustSec advisories; fetches the database from GitHub)
	$(CARGO) deny check advisories

.PHONY: fmt-check
fmt-check:
	$(CARGO) fmt --all --check

.PHONY: clippy
clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: emulator
emulator: venv ## Start the emulator in the background (if nothing answers yet)
	$(EMULATOR_SH) start

.PHONY: stop
stop: ## Stop the emulator that `make emulator` started
	$(EMULATOR_SH) stop

.PHONY: clean
clean: stop ## Remove build output and local state (not the venv)
	$(CARGO) clean
	rm -rf .devstack .aws-sam

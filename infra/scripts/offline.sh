#!/usr/bin/env bash
# Runs CMD with no network but loopback: a network namespace of its own (root and unshare(1)
# needed), so `make test` proves that the emulator, the stack and the tests fetch nothing at run
# time. Where that cannot be had (not root, no unshare), or with OFFLINE=0, CMD runs as it is and
# this says so.
#
#   offline.sh CMD...
set -euo pipefail
if [[ "${OFFLINE:-1}" != 0 && $(id -u) == 0 ]] && unshare --net true 2>/dev/null; then
  echo "offline: running with loopback only (a network namespace of its own): $*"
  exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' offline "$@"
fi
echo "offline: not isolated from the network (needs root and unshare; OFFLINE=${OFFLINE:-1}): $*"
exec "$@"

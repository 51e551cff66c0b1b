"""Runs localstripe on one address, with its state in memory only, in Stripe's test mode.

`python -m localstripe` listens on every interface ([::], no option to change it) and pickles
its whole store to /tmp/localstripe.pickle after every write, reloading it at start: a store
shared by every instance on the machine and carried from one run to the next, rewritten in full
on each request. This serves the same application on --host/--port and keeps nothing on disk,
with the test-mode behaviour of testmode.py added (Stripe's test tokens, declines, state rules,
events and search, and tok_settlementFails).
infra/scripts/emulator.sh starts it: serve.py --host 127.0.0.1 --port 8420
"""

import argparse
import logging
import sys

from aiohttp import web
from localstripe import resources

sys.dont_write_bytecode = True  # no __pycache__ beside testmode.py in the repository
import testmode  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args()

    resources.Store.dump_to_disk = lambda self: None

    # localstripe's own access log (and its webhook delivery lines), as its start() sets it up.
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.DEBUG)
    access.addHandler(logging.StreamHandler())
    print(f"localstripe serving on http://{args.host}:{args.port}", flush=True)
    web.run_app(testmode.install(), host=args.host, port=args.port, access_log=access, print=None)


if __name__ == "__main__":
    main()

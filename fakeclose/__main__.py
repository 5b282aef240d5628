"""`python -m fakeclose`: run the fake Close API alone, for demos and benchmarks.

Prints the API base URL on one line, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from fakeclose.seed import seed_demo
from fakeclose.server import FakeClose


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.webhook_url and not args.signature_key:
        _parser().error("--webhook-url needs --signature-key (or CLOSE_WEBHOOK_SECRET)")
    fake = FakeClose(
        api_keys={args.api_key: args.api_key_id},
        host=args.host,
        port=args.port,
        admin=not args.non_admin,
    )
    # Handlers go in before the URL is printed: whoever reads the URL may stop us at once.
    stop = _stop_on_signal()
    with fake:
        if args.webhook_url:
            fake.deliver_webhooks_to(args.webhook_url, signature_key_hex=args.signature_key)
        seed_demo(fake, count=args.seed)
        sys.stdout.write(fake.url + "\n")
        sys.stdout.flush()
        stop.wait()
    return 0


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    # The first key of CLOSE_WEBHOOK_SECRET, so a demo can share dealkeeper's environment.
    secret = (env.get("CLOSE_WEBHOOK_SECRET") or "").split(",")[0].strip() or None
    parser = argparse.ArgumentParser(prog="python -m fakeclose", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", default=env.get("CLOSE_API_KEY") or FakeClose.DEFAULT_API_KEY)
    parser.add_argument("--api-key-id", default=FakeClose.DEFAULT_API_KEY_ID)
    parser.add_argument(
        "--non-admin",
        action="store_true",
        help="the key is not an admin's: the event log hides data of events an hour old",
    )
    parser.add_argument("--webhook-url", help="POST every event here, signed")
    parser.add_argument("--signature-key", default=secret, help="hex signature_key")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="add N demo opportunities")
    return parser


def _stop_on_signal() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


if __name__ == "__main__":
    raise SystemExit(main())

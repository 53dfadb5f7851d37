"""``manage.py fmp_simulator``: run the FMP simulator until Ctrl-C.

Point a feed at it with ``FMP_WS_URL=ws://127.0.0.1:<port>`` and any API key
(or one of ``--api-key``) to demo or debug without FMP; its REST API (reference
data) listens on ``--rest-port``: set ``FMP_REST_URL=http://127.0.0.1:<rest-port>``.
Like FMP it only knows its universe of symbols unless ``--any-symbol`` is given
(default from ``REALTIME_SIMULATOR_ANY_SYMBOL``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from realtime.upstream.simulator import FmpSimulator

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a local FMP WebSocket simulator (FMP_UPSTREAM.md) until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=8765, help="0 picks a free port"
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=settings.REALTIME_SIMULATOR_RATE,
            help="ticks/s per connection over its subscribed symbols",
        )
        parser.add_argument(
            "--seed", type=int, default=settings.REALTIME_SIMULATOR_SEED
        )
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            help="accepted key (repeatable); default: any non-empty key",
        )
        parser.add_argument(
            "--heartbeat", type=float, default=30.0, help="heartbeat interval, s"
        )
        parser.add_argument(
            "--rest-port",
            type=int,
            default=8766,
            help="port of FMP's REST API (quote, batch-quote); 0 picks a free port",
        )
        parser.add_argument(
            "--rest-rate-limit",
            type=int,
            default=None,
            help="REST requests per minute before 429 (default: no limit)",
        )
        parser.add_argument(
            "--any-symbol",
            action=argparse.BooleanOptionalAction,
            default=settings.REALTIME_SIMULATOR_ANY_SYMBOL,
            help="price any well-formed symbol, not only the universe's",
        )
        parser.add_argument(
            "--no-login-ack",
            action="store_true",
            help="never acknowledge logins, like some legacy sockets",
        )

    def handle(self, *args, **options) -> None:
        simulator = FmpSimulator(
            host=options["host"],
            port=options["port"],
            rate=options["rate"],
            seed=options["seed"],
            api_keys=options["api_keys"],
            heartbeat_interval=options["heartbeat"],
            send_login_ack=not options["no_login_ack"],
            any_symbol=options["any_symbol"],
            rest_port=options["rest_port"],
            rest_rate_limit=options["rest_rate_limit"],
        )
        try:
            asyncio.run(self._serve(simulator))
        except KeyboardInterrupt:
            logger.info("event=simulator_interrupted")

    async def _serve(self, simulator: FmpSimulator) -> None:
        await simulator.start()
        logger.info("event=simulator_ready url=%s", simulator.url)
        self.stdout.write(
            f"FMP simulator listening on {simulator.url}, REST API on "
            f"{simulator.rest_url} (Ctrl-C stops)"
        )
        self.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await simulator.stop()

"""``runworker fmp-feed`` hosts the feed; any other channel runs channels' worker.

Channels' generic worker would create the consumer only on the first message,
while the feed must connect upstream (pins, leader lock) as soon as it starts.
SIGTERM (what systemd, supervisors, Docker and Kubernetes send) stops it like
SIGINT: FMP socket closed with a close frame, leader lock released and announced.
"""

from __future__ import annotations

import asyncio
import logging

from channels.management.commands.runworker import Command as ChannelsRunworker

from realtime.events import FEED_CHANNEL

logger = logging.getLogger(__name__)


class Command(ChannelsRunworker):
    help = "Run a channels worker; `runworker fmp-feed` hosts the FMP feed."

    def handle(self, *args, **options) -> None:
        if options["channels"] != [FEED_CHANNEL]:
            return super().handle(*args, **options)
        from realtime.backends import backends
        from realtime.feed.runner import run_until_signalled

        backends()  # the mode, decided once at start (a misconfiguration stops here)
        logger.info("event=feed_worker_starting channel=%s", FEED_CHANNEL)
        try:
            asyncio.run(run_until_signalled())
        except KeyboardInterrupt:  # a second Ctrl-C during the clean stop
            pass
        logger.info("event=feed_worker_stopped")

"""``runworker fmp-feed`` hosts the feed; any other channel runs channels' worker.

Channels' generic worker would create the consumer only on the first message,
while the feed must connect upstream (pins, leader lock) as soon as it starts.
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
        from realtime.feed.runner import FeedRunner

        logger.info("event=feed_worker_starting channel=%s", FEED_CHANNEL)
        try:
            asyncio.run(FeedRunner().run())
        except KeyboardInterrupt:
            logger.info("event=feed_worker_stopped")

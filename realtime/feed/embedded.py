"""Embedded mode: run the feed inside the web server process, from its start.

Daphne implements no ASGI lifespan events, so there is no "server started" hook
in the application. Daphne does create its event loop at import time
(``daphne.server.twisted_loop``) and runs it once listening, so the feed is
scheduled on that loop when the ASGI application is loaded: prices flow before
the first client connects.
"""

from __future__ import annotations

import asyncio
import logging
import sys

logger = logging.getLogger(__name__)

_task: asyncio.Task[None] | None = None


def start_with_server() -> None:
    daphne_server = sys.modules.get("daphne.server")
    if daphne_server is None:
        logger.warning(
            "event=embedded_feed_not_started reason=not_running_under_daphne "
            "hint='run with daphne or manage.py runserver'"
        )
        return
    loop: asyncio.AbstractEventLoop = daphne_server.twisted_loop
    loop.call_soon_threadsafe(_spawn, loop)


def _spawn(loop: asyncio.AbstractEventLoop) -> None:
    global _task
    if _task is not None:
        return
    from realtime.feed.runner import FeedRunner

    _task = loop.create_task(FeedRunner().run(), name="embedded-feed")
    _task.add_done_callback(_report_exit)
    logger.info("event=embedded_feed_scheduled")


def _report_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("event=embedded_feed_crashed error=%r", task.exception())

"""Embedded mode: run the feed inside the web server process, from its start.

Wiring above the stages of the data path: it knows both the feed (the runner) and
the server's event loop (the fan-out's daphne_io), which neither stage may know
of the other.

Daphne implements no ASGI lifespan events, so there is no "server started" hook
in the application. Daphne does create its event loop at import time and runs it
once listening (realtime/fanout/daphne_io.py, ``server_loop``), so the feed is
scheduled on that loop when the ASGI application is loaded: prices flow before
the first client connects. On SIGTERM/SIGINT the feed is stopped before the
server exits, so the upstream socket is closed properly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from realtime.fanout import daphne_io

logger = logging.getLogger(__name__)

_task: asyncio.Task[None] | None = None


def start_with_server() -> None:
    loop = daphne_io.server_loop()
    if loop is None:
        logger.warning(
            "event=embedded_feed_not_started reason=not_running_under_daphne "
            "hint='run with daphne or manage.py runserver'"
        )
        return
    loop.call_soon_threadsafe(_spawn, loop)
    daphne_io.on_server_shutdown(_stop, bound=5.0)


def _spawn(loop: asyncio.AbstractEventLoop) -> None:
    global _task
    if _task is not None:
        return
    from realtime.feed.runner import FeedRunner

    _task = loop.create_task(FeedRunner().run(), name="embedded-feed")
    _task.add_done_callback(_report_exit)
    logger.info("event=embedded_feed_scheduled")


async def _stop() -> None:
    task = _task
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    logger.info("event=embedded_feed_stopped")


def _report_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("event=embedded_feed_crashed error=%r", task.exception())

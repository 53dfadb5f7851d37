"""``stream_prices``: the stream for scripts that do not run asyncio themselves.

A generator that drives a private event loop only while it is asked for the
next message (no thread). Between two ``next()`` calls nothing reads the
socket, so a script should handle each message promptly; the server closes a
reader that stalls for long (4009), after which the stream reconnects and
recovers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from fmpsite_client.messages import StreamMessage
from fmpsite_client.stream import PriceStream

__all__ = ["stream_prices"]


async def _messages(
    url: str, symbols: Iterable[str], kwargs: dict[str, Any]
) -> AsyncIterator[StreamMessage]:
    async with PriceStream(url, **kwargs) as stream:
        await stream.subscribe(list(symbols))
        async for message in stream:
            yield message


def stream_prices(
    url: str, symbols: Iterable[str], **kwargs: Any
) -> Iterator[StreamMessage]:
    """``for message in stream_prices("ws://.../ws/prices", ["AAPL"]): ...``;
    ``kwargs`` are :class:`PriceStream`'s. Closing the generator (``break``,
    garbage collection) closes the connection."""
    loop = asyncio.new_event_loop()
    messages = _messages(url, symbols, kwargs)
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(messages))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(messages.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

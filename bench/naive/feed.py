"""The tutorial feed: read ticks from upstream, one ``group_send`` per tick."""

import asyncio
import json
import logging
from datetime import UTC, datetime

from channels.layers import get_channel_layer
from django.conf import settings
from websockets.asyncio.client import connect

from bench.naive.consumers import group_name
from bench.plain import FIELDS  # the FMP field names, as the guide maps them

logger = logging.getLogger(__name__)


def to_ms(t: int) -> int:
    while t > 10**14:
        t //= 1000
    return t


async def run_feed() -> None:
    layer = get_channel_layer()
    state: dict[str, dict] = {}
    while True:
        try:
            async with connect(settings.SIM_URL, max_size=None) as ws:
                await ws.send(
                    json.dumps({"event": "login", "data": {"apiKey": "bench"}})
                )
                tickers = [s.lower() for s in settings.SYMBOLS]
                await ws.send(
                    json.dumps({"event": "subscribe", "data": {"ticker": tickers}})
                )
                async for raw in ws:
                    msg = json.loads(raw)
                    for tick in msg if isinstance(msg, list) else (msg,):
                        if "s" not in tick:
                            continue
                        symbol = tick["s"].upper()
                        fields = state.setdefault(
                            symbol, dict.fromkeys(FIELDS.values())
                        )
                        for key, name in FIELDS.items():
                            if tick.get(key) is not None:
                                fields[name] = tick[key]
                        data = {
                            "type": "price_update",
                            "symbol": symbol,
                            "timestamp": to_ms(int(tick["t"])),
                            "data_type": tick.get("type", "T"),
                            **fields,
                            "cached_at": datetime.now(UTC).isoformat(),
                        }
                        await layer.group_send(
                            group_name(symbol), {"type": "price.update", "data": data}
                        )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("naive feed reconnecting after %r", exc)
            await asyncio.sleep(0.5)

"""fmpsite-client: a Python client for fmpsite's real-time price stream.

``PriceStream`` (async, in your event loop) reconnects with back-off, resubscribes,
recovers what it missed from the server and fills remaining gaps from the history
endpoint; ``stream_prices`` is the same for scripts without asyncio.
"""

from fmpsite_client.messages import (
    ErrorMessage,
    Gap,
    Message,
    PriceUpdate,
    Reset,
    StreamMessage,
    UpstreamStatus,
    decode,
)
from fmpsite_client.stream import PriceStream, backoff_delay
from fmpsite_client.sync import stream_prices

__all__ = [
    "ErrorMessage",
    "Gap",
    "Message",
    "PriceStream",
    "PriceUpdate",
    "Reset",
    "StreamMessage",
    "UpstreamStatus",
    "backoff_delay",
    "decode",
    "stream_prices",
]
__version__ = "0.1.0"

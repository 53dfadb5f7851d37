"""Where FMP's REST API is: ``FMP_REST_URL`` with a key, or the simulator's port.

With ``FMP_API_KEY`` the product asks ``FMP_REST_URL``. Without a key it asks the
built-in simulator's REST port, registered by whoever starts the simulator with
``set_rest_base(url)``. In scaled mode the simulator runs in the feed process, so
``set_rest_base`` also publishes the URL in Redis for the web processes, which
read it back (trusted for ``REDIS_BASE_TTL`` seconds); with no URL anywhere
``rest_endpoint()`` is None and the reference service answers "unavailable".
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from realtime.backends import backends
from realtime.stores import STORE_ERRORS, RedisClients

logger = logging.getLogger(__name__)

SIMULATOR_KEY = "simulator"  # any non-empty key opens the simulator
REDIS_BASE_TTL = 10.0  # seconds a web process trusts the published simulator URL

_DELETE_IF_OURS = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) end return 0"
)

_local_base: str | None = None
_redis_base: tuple[float, str | None] | None = None
_clients: RedisClients | None = None


def _redis() -> RedisClients:
    """One client holder for ``REDIS_URL`` (a new one if the setting changed).

    Short timeouts: a web process reads the URL on its event loop.
    """
    global _clients
    url = backends().redis_url
    if _clients is None or _clients.url != url:
        _clients = RedisClients(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    return _clients


def _base_key() -> str:
    return f"{settings.REALTIME_CACHE_PREFIX}:reference:rest_base"


def set_rest_base(url: str | None) -> None:
    """Register the running simulator's REST URL (None: it stopped).

    Called by the feed runner right after it starts the simulator. In scaled mode
    the URL is also published in Redis so the web processes find it.
    """
    global _local_base, _redis_base
    previous, _local_base = _local_base, url
    _redis_base = None
    if backends().scaled:
        try:
            client = _redis().sync
            if url:
                client.set(_base_key(), url)
            elif previous:
                # Only our own URL: a new feed leader may have published its own.
                client.eval(_DELETE_IF_OURS, 1, _base_key(), previous)
        except STORE_ERRORS as exc:
            logger.warning("event=reference_base_publish_failed error=%r", exc)
    logger.info("event=reference_rest_base url=%s", url)


def _published_base() -> str | None:
    """The simulator URL another process published (cached for a few seconds)."""
    global _redis_base
    now = time.monotonic()
    if _redis_base is not None and now - _redis_base[0] < REDIS_BASE_TTL:
        return _redis_base[1]
    value: str | None = None
    try:
        raw = _redis().sync.get(_base_key())
        value = raw.decode() if raw else None
    except STORE_ERRORS as exc:
        logger.warning("event=reference_base_read_failed error=%r", exc)
    _redis_base = (now, value)
    return value


def rest_endpoint() -> tuple[str, str, bool] | None:
    """(base URL, API key, simulated) of the REST API to use, or None."""
    if not settings.FMP_REST_ENABLED:
        return None
    if settings.FMP_API_KEY:
        return settings.FMP_REST_URL, settings.FMP_API_KEY, False
    base = _local_base or (_published_base() if backends().scaled else None)
    return (base, SIMULATOR_KEY, True) if base else None


def reset_rest_base() -> None:
    """Forget the registered and the published simulator URL (tests)."""
    global _local_base, _redis_base, _clients
    _local_base = None
    _redis_base = None
    _clients = None

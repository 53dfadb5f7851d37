"""The one parser of the product's Redis URLs: a plain Redis, or a Sentinel group.

``REDIS_URL`` and ``REALTIME_CHANNEL_REDIS_URL`` (which may list several,
comma-separated: the channel layer's shards, ``split_urls``) take either
redis-py's own URL forms (``redis://``, ``rediss://``, ``unix://``) or a
Sentinel group::

    redis+sentinel://[:password@]host1:26379,host2:26379,host3:26379/mymaster[/db]
        [?sentinel_password=...&ssl=true&socket_timeout=...]

(``rediss+sentinel://`` is the same with TLS to the master). Sentinels answer
"who is the master of ``mymaster`` now", so a client follows a failover without
a new configuration: every store (realtime/stores.py), the leader lock and the
channel layer (``channel_host``) are built from what this module returns.

Pure: no Django, no I/O; settings and stores both import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
DEFAULT_SENTINEL_PORT = 26379


class InvalidRedisUrl(ValueError):
    """A Redis URL this product cannot use; the message names what is wrong."""


@dataclass(frozen=True)
class SentinelTarget:
    """A Sentinel group: where the sentinels are and which master they watch."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    password: str | None = None
    username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the master's connections (redis-py)."""
        kwargs: dict[str, Any] = {"db": self.db, **self.options}
        if self.password is not None:
            kwargs["password"] = self.password
        if self.username is not None:
            kwargs["username"] = self.username
        if self.ssl:
            kwargs["ssl"] = True
        return kwargs

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the connections to the sentinels themselves."""
        kwargs: dict[str, Any] = {}
        if self.sentinel_password is not None:
            kwargs["password"] = self.sentinel_password
        for name in ("socket_timeout", "socket_connect_timeout"):
            if name in self.options:
                kwargs[name] = self.options[name]
        return kwargs


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidRedisUrl(f"{name}={value!r} is not a number of seconds") from None


def parse_sentinel(url: str) -> SentinelTarget | None:
    """The Sentinel group ``url`` names, or None for a plain Redis URL."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        return None
    netloc = parts.netloc
    password = username = None
    if "@" in netloc:
        credentials, netloc = netloc.rsplit("@", 1)
        user, _, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if secret else None
    sentinels = []
    for address in filter(None, netloc.split(",")):
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
        host = host.strip("[]")
        try:
            sentinels.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
        except ValueError:
            raise InvalidRedisUrl(
                f"sentinel address {address!r}: the port must be a number"
            ) from None
    if not sentinels or any(not host for host, _ in sentinels):
        raise InvalidRedisUrl(
            f"{parts.scheme}:// needs at least one sentinel host:port, got {netloc!r}"
        )
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise InvalidRedisUrl(
            f"{parts.scheme}:// needs /<master name>[/<db>] after the sentinels, "
            f"got {parts.path!r}"
        )
    try:
        db = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise InvalidRedisUrl(f"database {path[1]!r} must be a number") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options: dict[str, Any] = {}
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in query:
            options[name] = _number(name, query.pop(name))
    ssl = SENTINEL_SCHEMES[parts.scheme] or query.pop("ssl", "").lower() in (
        "1",
        "true",
        "yes",
    )
    query.pop("ssl", None)
    sentinel_password = query.pop("sentinel_password", None)
    if query:
        raise InvalidRedisUrl(f"unknown option(s) {', '.join(sorted(query))}")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        master_name=path[0],
        db=db,
        password=password,
        username=username,
        sentinel_password=sentinel_password,
        ssl=ssl,
        options=options,
    )


# A comma that starts another URL (``,redis://``, ``,rediss+sentinel://`` ...);
# the commas between a Sentinel URL's hosts are not followed by a scheme.
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list (``REALTIME_CHANNEL_REDIS_URL`` with
    several shards), keeping a Sentinel URL's own host list whole."""
    return [part.strip() for part in _NEXT_URL.split(value) if part.strip()]


def channel_host(url: str, **extra: Any) -> dict[str, Any]:
    """One ``hosts`` entry of channels-redis's layer for ``url``.

    channels-redis takes a plain address, or ``sentinels`` + ``master_name``
    (it builds redis-py's ``SentinelConnectionPool``, channels_redis/utils.py).
    """
    target = parse_sentinel(url)
    if target is None:
        return {"address": url, **extra}
    return {
        "sentinels": [list(address) for address in target.sentinels],
        "master_name": target.master_name,
        "sentinel_kwargs": target.sentinel_kwargs(),
        **target.connection_kwargs(),
        **extra,
    }


def describe(url: str) -> str:
    """``url`` for a log line: no password."""
    target = parse_sentinel(url)
    if target is None:
        parts = urlsplit(url)
        host = parts.hostname or parts.path
        return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}"
    hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
    return f"sentinel://{hosts}/{target.master_name}/{target.db}"

"""``FmpConfig``: everything ``FmpClient`` is told, in one frozen value.

Built once from settings (``FmpConfig.from_settings``) so the FMP_* settings are
read, validated and documented in one place instead of being copied keyword by
keyword through factories; tests build it directly with ``dataclasses.replace``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import certifi

Protocol = Literal["legacy", "stream"]

# Which asset class each legacy cluster host serves (FMP_UPSTREAM.md).
LEGACY_CLUSTERS = {
    "websockets.financialmodelingprep.com": "stocks",
    "crypto.financialmodelingprep.com": "crypto",
    "forex.financialmodelingprep.com": "forex",
}
STREAM_URL = "wss://socket.financialmodelingprep.com"


def trust_context(ca_bundle: str = "") -> ssl.SSLContext:
    """What FMP's certificates are checked against, for the socket and the REST
    API alike: certifi, plus SSL_CERT_FILE/SSL_CERT_DIR, plus ``ca_bundle``
    (FMP_CA_BUNDLE: intermediates FMP may fail to send). Never unverified."""
    context = ssl.create_default_context(cafile=certifi.where())
    cert_file = os.environ.get("SSL_CERT_FILE", "")
    cert_dir = os.environ.get("SSL_CERT_DIR", "")
    if cert_file and os.path.isfile(cert_file):
        context.load_verify_locations(cafile=cert_file)
    if cert_dir and os.path.isdir(cert_dir):
        context.load_verify_locations(capath=cert_dir)
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


@dataclass(frozen=True, slots=True)
class FmpConfig:
    """How to reach FMP and how patiently (see .env.example for each FMP_* name).

    ``ping_interval`` 0 turns WebSocket pings off. ``slot_backoff`` is the first
    wait after FMP says the account's one connection slot is taken; it doubles up
    to ``fatal_backoff`` and starts again after a stable session. ``ca_bundle`` is
    a PEM file of extra CA certificates/intermediates trusted on top of certifi's
    bundle (and of ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set); verification is
    never switched off.
    """

    url: str
    api_key: str = field(repr=False)
    protocol: Protocol = "legacy"
    streams: tuple[str, ...] = ("fmp-us-equities-stream",)
    login_timeout: float = 5.0
    reconnect_base: float = 1.0
    reconnect_cap: float = 60.0
    max_attempts: int = 0
    fatal_backoff: float = 300.0
    slot_backoff: float = 15.0
    stable_after: float = 30.0
    idle_timeout: float = 90.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    subscribe_batch: int = 100
    ca_bundle: str = ""
    # The asset class a legacy socket serves; empty: known from FMP's host names.
    legacy_cluster: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in ("legacy", "stream"):
            raise ValueError(f"protocol={self.protocol!r}: use 'legacy' or 'stream'")
        if self.subscribe_batch < 1:
            raise ValueError(f"subscribe_batch={self.subscribe_batch}: must be >= 1")
        for name in (
            "login_timeout",
            "reconnect_base",
            "reconnect_cap",
            "fatal_backoff",
            "slot_backoff",
            "stable_after",
            "idle_timeout",
            "ping_interval",
            "ping_timeout",
        ):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name}={value}: must be >= 0 (0 turns it off)")
        if self.ca_bundle and not os.path.isfile(self.ca_bundle):
            raise ValueError(f"ca_bundle={self.ca_bundle!r}: no such file")
        object.__setattr__(self, "streams", tuple(self.streams))

    @classmethod
    def from_settings(cls, **overrides: Any) -> FmpConfig:
        """The FMP_* settings as one config; ``overrides`` replace single fields
        (the runner points ``url``/``api_key`` at the simulator)."""
        from django.conf import settings

        values: dict[str, Any] = {
            "url": settings.FMP_WS_URL,
            "api_key": settings.FMP_API_KEY,
            "protocol": settings.FMP_PROTOCOL,
            "streams": tuple(settings.FMP_STREAMS),
            "login_timeout": settings.FMP_LOGIN_TIMEOUT,
            "reconnect_base": settings.FMP_RECONNECT_BASE,
            "reconnect_cap": settings.FMP_RECONNECT_CAP,
            "max_attempts": settings.FMP_RECONNECT_MAX_ATTEMPTS,
            "fatal_backoff": settings.FMP_FATAL_BACKOFF,
            "slot_backoff": settings.FMP_SLOT_BACKOFF,
            "stable_after": settings.FMP_STABLE_AFTER,
            "idle_timeout": settings.FMP_IDLE_TIMEOUT,
            "ping_interval": settings.FMP_PING_INTERVAL,
            "ping_timeout": settings.FMP_PING_TIMEOUT,
            "subscribe_batch": settings.FMP_SUBSCRIBE_BATCH,
            "ca_bundle": settings.FMP_CA_BUNDLE,
        }
        values.update(overrides)
        try:
            return cls(**values)
        except ValueError as exc:  # name the setting, refuse to start
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"FMP settings: {exc}") from exc

    @property
    def pings_enabled(self) -> bool:
        return self.ping_interval > 0

    @property
    def cluster(self) -> str | None:
        """The asset class a legacy cluster URL serves (``stocks``, ``crypto``,
        ``forex``), or None for the standard socket and unknown hosts."""
        if self.protocol != "legacy":
            return None
        if self.legacy_cluster:
            return self.legacy_cluster
        return LEGACY_CLUSTERS.get((urlsplit(self.url).hostname or "").lower())

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS for ``wss://``: certifi, plus SSL_CERT_FILE/SSL_CERT_DIR, plus
        ``ca_bundle``. None for ``ws://`` (the simulator on loopback)."""
        if not self.url.lower().startswith("wss://"):
            return None
        return trust_context(self.ca_bundle)

"""Alert webhooks: the target check (SSRF), the signature, one bounded POST.

Never on the tick path: the alert engine's writer task calls ``deliver`` after
the event is recorded, each POST in a worker thread (``asyncio.to_thread``), and
retries with exponential back-off for a bounded time.

- **Targets**: ``http://`` and ``https://`` only, no credentials in the URL. Every
  address the host resolves to must be global: loopback, private, link-local,
  multicast, reserved and unspecified addresses are refused unless
  ``REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE`` is on. The check is made when the alert
  is saved (literal addresses, ``localhost``) and again before every attempt (DNS
  answers change). Plain-HTTP requests go to the address that was checked (no
  second lookup to rebind); HTTPS connects by name for certificate checks.
  Redirects are not followed (a 3xx is a failure), so a redirect cannot reach
  an internal address either.
- **Signature**: ``X-Fmpsite-Signature: t=<unix seconds>,v1=<hex>``, the hex being
  HMAC-SHA256 of ``"<t>.<body>"`` with ``REALTIME_ALERT_WEBHOOK_SECRET`` (Stripe's
  scheme: the timestamp inside the signed content lets a receiver refuse replays).
- **Bounds**: a timeout per attempt, at most ``max_response_bytes`` of the answer
  read, any 2xx is success.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Fmpsite-Signature"
USER_AGENT = "fmpsite-alerts/1"
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0


class InvalidWebhookUrl(ValueError):
    """Not an acceptable webhook target; the message says why."""


class WebhookFailed(Exception):
    """One attempt failed; the message is what is recorded as ``last_error``."""


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, *, allow_private: bool | None = None) -> str:
    """The URL if its shape is acceptable (scheme, host, no credentials, no
    literal private address); raises ``InvalidWebhookUrl`` naming the problem."""
    if allow_private is None:
        allow_private = _allow_private()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl(f"webhook_url must be http:// or https://, got {url!r}")
    if not parts.hostname:
        raise InvalidWebhookUrl(f"webhook_url has no host: {url!r}")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("webhook_url must not carry credentials")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise InvalidWebhookUrl(f"webhook_url has a bad port: {url!r}") from exc
    if allow_private:
        return url
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidWebhookUrl(f"webhook_url targets a loopback host: {host}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A name, or an IPv4 spelling only the resolver reads (``0``, ``127.1``,
        # ``2130706433``): resolved and checked before each attempt.
        return url
    if _refused(address):
        raise InvalidWebhookUrl(
            f"webhook_url targets a non-public address: {host} "
            "(REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE allows it)"
        )
    return url


def resolve_target(url: str, *, allow_private: bool) -> str:
    """The address to connect to, after checking every address the host has."""
    check_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookFailed(f"cannot resolve {parts.hostname}: {exc}") from exc
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        for raw in addresses:
            if _refused(ipaddress.ip_address(raw.split("%")[0])):
                raise InvalidWebhookUrl(
                    f"webhook_url host {parts.hostname} resolves to a non-public "
                    f"address {raw}"
                )
    return addresses[0]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Fmpsite-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300.0) -> bool:
    """What a receiver does (docs/protocol.md): recompute, compare in constant
    time, and refuse a timestamp older than ``tolerance`` seconds."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    secret: str
    allow_private: bool
    timeout: float
    max_response_bytes: int
    retry_for: float

    @classmethod
    def from_settings(cls) -> WebhookConfig:
        from django.conf import settings

        return cls(
            secret=settings.REALTIME_ALERT_WEBHOOK_SECRET or settings.SECRET_KEY,
            allow_private=settings.REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE,
            timeout=settings.REALTIME_ALERT_WEBHOOK_TIMEOUT,
            max_response_bytes=settings.REALTIME_ALERT_WEBHOOK_MAX_RESPONSE_BYTES,
            retry_for=settings.REALTIME_ALERT_WEBHOOK_RETRY_FOR,
        )


def _allow_private() -> bool:
    from django.conf import settings

    return bool(settings.REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE)


def post_once(url: str, body: bytes, config: WebhookConfig) -> int:
    """One signed POST (blocking: run it in a thread). Returns the 2xx status;
    raises ``WebhookFailed`` or ``InvalidWebhookUrl``."""
    address = resolve_target(url, allow_private=config.allow_private)
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname,
            parts.port or 443,
            timeout=config.timeout,
            context=ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(
            address, parts.port or 80, timeout=config.timeout
        )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": parts.netloc,
        SIGNATURE_HEADER: sign(config.secret, int(time.time()), body),
    }
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(config.max_response_bytes)  # bounded; the rest is dropped
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise WebhookFailed(f"HTTP {status} from the receiver")
    return status


Attempted = Callable[[int, str | None, bool], Awaitable[None]]


async def deliver(
    url: str,
    body: bytes,
    config: WebhookConfig,
    *,
    on_attempt: Attempted,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """POST until a 2xx or until ``config.retry_for`` seconds have passed, the
    wait doubling from 1 s (capped at 60 s). ``on_attempt(attempt, error,
    final)`` records each attempt. A refused target is final at once."""
    deadline = clock() + config.retry_for
    wait = BACKOFF_FIRST
    attempt = 0
    while True:
        attempt += 1
        try:
            await asyncio.to_thread(post_once, url, body, config)
        except InvalidWebhookUrl as exc:
            await on_attempt(attempt, f"refused: {exc}", True)
            logger.warning(
                "event=alert_webhook_refused url_host=%s error=%s",
                urlsplit(url).hostname,
                exc,
            )
            return False
        except WebhookFailed as exc:
            final = clock() + wait > deadline
            await on_attempt(attempt, str(exc), final)
            logger.info(
                "event=alert_webhook_failed attempt=%d final=%s error=%s",
                attempt,
                final,
                exc,
            )
            if final:
                return False
            await sleep(wait)
            wait = min(wait * 2, BACKOFF_CAP)
            continue
        await on_attempt(attempt, None, True)
        return True

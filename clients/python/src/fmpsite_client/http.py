"""The one HTTP call the client makes: ``GET /api/v2/realtime/history/{symbol}``.

A minimal HTTP/1.1 GET on asyncio streams, so the package needs nothing beyond
websockets and orjson and never leaves the caller's event loop (no thread, no
blocking urllib).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

__all__ = ["HistoryError", "auth_header", "fetch_history", "http_base_url"]

HISTORY_PATH = "/api/v2/realtime/history/"
HISTORY_PAGE_MAX = 1000  # the endpoint's largest `limit`


class HistoryError(Exception):
    """The history endpoint could not be read (status, network or body)."""


def http_base_url(ws_url: str) -> str:
    """``http(s)://host[:port]`` of the server a ``ws(s)://`` URL points at."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def auth_header(token: str | None) -> dict[str, str]:
    """The header the REST API takes for ``token`` (docs/frontends.md): a
    connection token (a JWT: two dots) as ``Bearer``, a DRF key as ``Token``."""
    if not token:
        return {}
    scheme = "Bearer" if token.count(".") == 2 else "Token"
    return {"Authorization": f"{scheme} {token}"}


async def _get(url: str, headers: dict[str, str], within: float) -> tuple[int, bytes]:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Accept: application/json",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl.create_default_context() if secure else None
        )
        try:
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (h.partition(":") for h in header_lines if h)
            }
            if fields.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        break
                    body += await reader.readexactly(size)
                    await reader.readline()
            elif "content-length" in fields:
                body = await reader.readexactly(int(fields["content-length"]))
            else:
                body = await reader.read()
        finally:
            writer.close()
    return status, body


async def fetch_history(
    base_url: str,
    symbol: str,
    *,
    after_seq: int,
    token: str | None = None,
    limit: int = HISTORY_PAGE_MAX,
    within: float = 10.0,
) -> dict[str, Any]:
    """One page of the symbol's history after ``after_seq`` (oldest first):
    ``{"symbol", "epoch", "last_seq", "updates"}``; 404 is an empty page."""
    url = (
        f"{base_url}{HISTORY_PATH}{quote(symbol, safe='')}"
        f"?after_seq={after_seq}&limit={limit}"
    )
    try:
        status, body = await _get(url, auth_header(token), within)
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
        raise HistoryError(f"GET {url}: {exc!r}") from exc
    if status == 404:
        return {"symbol": symbol, "epoch": None, "last_seq": None, "updates": []}
    if status != 200:
        raise HistoryError(f"GET {url}: HTTP {status} {body[:200]!r}")
    try:
        page = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HistoryError(f"GET {url}: not JSON") from exc
    if not isinstance(page, dict) or not isinstance(page.get("updates"), list):
        raise HistoryError(f"GET {url}: unexpected body {body[:200]!r}")
    return page

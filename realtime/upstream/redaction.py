"""Keep the FMP API key out of every text that leaves the upstream client.

The key reaches logs in three ways: the login frame (websockets logs sent frames at
DEBUG), URLs (``?apikey=`` on REST calls or a pasted URL) and server frames that
echo it. websockets shortens long frames in its DEBUG lines ("head...tail") before
any formatter sees them, so a plain ``replace(key, "***")`` misses a key cut in
half: every run of ``MIN_FRAGMENT`` or more characters of the key is redacted, and
websockets' frames are rendered from their full payload before being shortened.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

from websockets.frames import Frame

MIN_FRAGMENT = 6
MASK = "***"
FRAME_LOG_LIMIT = 200  # characters of a frame's payload kept in a DEBUG line

_URL_KEY = re.compile(r"(?i)(api_?key=)[^&\s\"']+")


def secret_forms(secret: str) -> set[str]:
    """The ways the key can appear in a text: as given, upper- and lower-cased (a
    header or a proxy may change its case) and percent-encoded, with upper- or
    lower-case hex digits (a URL quotes a key with ``+``, ``/`` or ``=``)."""
    forms = {secret, secret.upper(), secret.lower()}
    for form in list(forms):
        for quoted in (quote(form, safe=""), quote_plus(form, safe="")):
            forms.add(quoted)
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quoted))
    return forms


class Redactor:
    """Callable that masks ``secret`` (in each of its ``secret_forms``), any
    >= ``MIN_FRAGMENT``-char run of it, and ``apikey=...`` URL parameters.

    Every window of ``MIN_FRAGMENT`` characters of the key is searched (overlapping
    matches, one compiled pattern built once per key); the union of the windows
    found is masked, which covers any longer run of the key as a whole.
    """

    def __init__(self, secret: str, min_fragment: int = MIN_FRAGMENT) -> None:
        self._pattern: re.Pattern[str] | None = None
        if secret:
            size = min(min_fragment, len(secret))
            self._size = size
            grams = sorted(
                {
                    form[i : i + size]
                    for form in secret_forms(secret)
                    for i in range(len(form) - size + 1)
                }
            )
            self._pattern = re.compile(
                "(?=(?:" + "|".join(map(re.escape, grams)) + "))"
            )

    def __call__(self, text: str) -> str:
        if self._pattern is not None and text:
            text = self._mask(text)
        return _URL_KEY.sub(rf"\1{MASK}", text)

    def _mask(self, text: str) -> str:
        assert self._pattern is not None
        spans: list[list[int]] = []
        for match in self._pattern.finditer(text):
            start = match.start()
            end = start + self._size
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        parts, last = [], 0
        for start, end in spans:
            parts.append(text[last:start])
            parts.append(MASK)
            last = end
        parts.append(text[last:])
        return "".join(parts)


def render_frame(frame: Frame, redact: Callable[[str], str]) -> str:
    """A websockets frame as its DEBUG line shows it, redacted *before* shortening."""
    data = bytes(frame.data)
    text = redact(data.decode("utf-8", errors="replace"))
    if len(text) > FRAME_LOG_LIMIT:
        half = FRAME_LOG_LIMIT // 2
        text = f"{text[:half]}...{text[-half:]}"
    return f"{frame.opcode.name} {text!r} [{len(data)} bytes]"


class RedactingLogger(logging.LoggerAdapter):
    """The logger handed to websockets: every line it writes is redacted.

    Frame arguments are rendered here from their full payload (see module doc);
    tracebacks are reduced to the exception's type and message, redacted, since a
    traceback's locals and reprs could quote the key.
    """

    def __init__(self, target: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(target, {})
        self._redact = redact

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        shown = tuple(
            render_frame(a, self._redact) if isinstance(a, Frame) else a for a in args
        )
        try:
            text = str(msg) % shown if shown else str(msg)
        except Exception:
            text = f"{msg} {shown!r}"
        kwargs.pop("extra", None)
        kwargs.pop("stack_info", None)
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:
            exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
            if exc is not None:
                text = f"{text} error={type(exc).__name__}: {exc}"
        self.logger.log(level, "%s", self._redact(text), **kwargs)

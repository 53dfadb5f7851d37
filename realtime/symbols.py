"""Symbol rules shared by the WebSocket, REST and dashboard code (docs/protocol.md).

One place decides what a symbol is, so a symbol the dashboard accepts is one the
stream accepts too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SYMBOL_RE = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=^/]{0,19}$")


class InvalidSymbol(ValueError):
    """A value that is not a valid symbol; the message names the value."""


def normalize_symbol(raw: object) -> str:
    """Return the canonical (upper-case, stripped) symbol or raise InvalidSymbol."""
    if not isinstance(raw, str):
        raise InvalidSymbol(f"Invalid symbol: {raw!r} (symbols are strings)")
    symbol = raw.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise InvalidSymbol(f"Invalid symbol: {raw!r}")
    return symbol


class SymbolModelMixin:
    """``clean()`` for a model with a ``symbol`` field: the one symbol rule of the
    product, so whatever an admin or a form saves, the stream accepts too."""

    symbol: str

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        super().clean()  # type: ignore[misc]
        try:
            self.symbol = normalize_symbol(self.symbol)
        except InvalidSymbol as exc:
            raise ValidationError({"symbol": str(exc)}) from exc


@dataclass(frozen=True, slots=True)
class SymbolParse:
    """Valid symbols in request order without duplicates, and the rejected values."""

    valid: tuple[str, ...]
    invalid: tuple[object, ...]


def parse_symbols(raw: object) -> SymbolParse:
    """Split a request's ``symbols`` (a string or a list) into valid and invalid.

    Partial success is the contract: the valid symbols of a request are processed
    even when others in it are rejected.
    """
    items: Iterable[object]
    if isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, list):
        items = raw
    else:
        raise InvalidSymbol(
            f"'symbols' must be a string or a list of strings, got {type(raw).__name__}"
        )
    valid: dict[str, None] = {}
    invalid: list[object] = []
    for item in items:
        try:
            valid[normalize_symbol(item)] = None
        except InvalidSymbol:
            invalid.append(item)
    return SymbolParse(valid=tuple(valid), invalid=tuple(invalid))

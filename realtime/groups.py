"""Channel-layer group names for symbols.

Channels accepts only ``[A-Za-z0-9-_.]`` in group names, under 100 characters, so
symbols such as ``^GSPC`` or ``EUR/USD`` need an encoding that is reversible and
never collides: every character outside ``[A-Z0-9-]`` becomes ``_XX`` (hex).
"""

from __future__ import annotations

import re

PREFIX = "price."
_SAFE = re.compile(r"[A-Z0-9-]")


def price_group(symbol: str) -> str:
    encoded = "".join(ch if _SAFE.match(ch) else f"_{ord(ch):02X}" for ch in symbol)
    return PREFIX + encoded


def symbol_from_group(group: str) -> str:
    if not group.startswith(PREFIX):
        raise ValueError(f"not a price group: {group!r}")
    return re.sub(
        r"_([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), group[len(PREFIX) :]
    )

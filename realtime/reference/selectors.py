"""What the rest of the product calls for reference data (HackSoft selectors).

Async callers (the stream consumer, snapshots) await ``get_references`` /
``unknown_symbols``; sync callers (DRF views, dashboard views) use the ``*_sync``
forms. None of these is ever called per tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync

from realtime import universe
from realtime.reference.cache import Reference
from realtime.reference.service import Resolution, get_reference_service

# Default bound on a wait for FMP in request paths: a page or a subscribe answers
# within this even when FMP is slow (the fetch goes on and fills the cache).
DEFAULT_WAIT = 3.0


async def get_references(
    symbols: Iterable[str], wait: float | None = DEFAULT_WAIT
) -> dict[str, Reference]:
    """Reference per symbol FMP knows; unknown and unresolved symbols are absent."""
    return await get_reference_service().get_references(symbols, wait)


async def unknown_symbols(
    symbols: Iterable[str], wait: float | None = DEFAULT_WAIT
) -> list[str]:
    """Symbols FMP reports unknown. Fails open: unreachable FMP -> ``[]``."""
    return await get_reference_service().unknown_symbols(symbols, wait)


async def resolve(
    symbols: Iterable[str], wait: float | None = DEFAULT_WAIT
) -> Resolution:
    """References, unknown and unresolved symbols (the REST view's 200/404/503)."""
    return await get_reference_service().resolve(symbols, wait)


def get_references_sync(
    symbols: Iterable[str], wait: float | None = DEFAULT_WAIT
) -> dict[str, Reference]:
    """``get_references`` for sync code (views); runs on the server's event loop."""
    return async_to_sync(get_references)(list(symbols), wait)


def resolve_sync(
    symbols: Iterable[str], wait: float | None = DEFAULT_WAIT
) -> Resolution:
    return async_to_sync(resolve)(list(symbols), wait)


# Legacy cluster sockets serve one market each (FMP_UPSTREAM.md). Only asset classes
# that certainly belong to another cluster are refused; indices, commodities and
# unknown classes are let through (no FMP page says which cluster serves them).
CLUSTER_CLASSES = {
    "stocks": {"stock", "etf"},
    "crypto": {"crypto"},
    "forex": {"forex"},
}
DECIDED_CLASSES = {"stock", "etf", "crypto", "forex"}


async def cluster_mismatches(
    symbols: Iterable[str], cluster: str | None, wait: float | None = DEFAULT_WAIT
) -> dict[str, str]:
    """``{symbol: asset_class}`` of symbols a legacy ``cluster`` cannot serve.

    ``cluster`` is ``stocks``, ``crypto`` or ``forex`` (H2's ``FmpConfig.cluster()``),
    None for the standard socket (serves everything: nothing is a mismatch).
    Unresolved symbols are let through (fail open).
    """
    served = CLUSTER_CLASSES.get(cluster or "")
    if served is None:
        return {}
    references = await get_references(symbols, wait)
    return {
        symbol: ref.asset_class
        for symbol, ref in references.items()
        if ref.asset_class in DECIDED_CLASSES and ref.asset_class not in served
    }


def reference_status() -> dict[str, Any]:
    """For /health: ``available``, ``source``, ``backoff_seconds``, ``last_error``."""
    return get_reference_service().status()


def snapshot_fields(reference: Reference | None) -> dict[str, Any]:
    """The extension fields a snapshot ``price_update`` carries (docs/protocol.md)."""
    if reference is None:
        return {}
    return {
        "name": reference.name,
        "previous_close": reference.previous_close,
        "open": reference.open,
    }


def symbol_directory() -> list[dict[str, str]]:
    """Well-known symbols with names and asset classes, for symbol suggestions.

    The simulator's universe: the symbols people look for most (US large caps,
    ETFs, indices, crypto, forex, commodities), available offline.
    """
    return [
        {"symbol": i.symbol, "name": i.name, "asset_class": i.asset_class}
        for i in universe.INSTRUMENTS.values()
    ]

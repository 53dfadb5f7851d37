"""Reads of realtime's database state: views and the feed call these."""

from __future__ import annotations

from realtime.models import PinnedSubscription


def pinned_symbols() -> list[str]:
    """Every pinned symbol, sorted. Called at feed start and on pin changes only."""
    return list(PinnedSubscription.objects.values_list("symbol", flat=True))

"""Garbage-collector settings for the long-lived server processes.

CPython 3.11's full (generation-2) collection walks every tracked object. A web
process holding 1,000 WebSocket connections has about a million of them; on the
2-core benchmark machine one full collection took 150-230 ms and freed nothing,
and under tick load transient objects were promoted fast enough to trigger one
every few seconds: a pause every client saw as latency (docs/benchmarks.md,
"Garbage collection"). A larger first threshold promotes far fewer transient
objects, and freezing what exists once the application is loaded (Django, the
URL conf, settings) takes it out of every later collection. Reference cycles are
still collected, only less often.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

# The default of REALTIME_GC_THRESHOLDS; the benchmark's own processes use it too.
DEFAULT_THRESHOLDS = (50_000, 20, 100)


def parse_thresholds(raw: str) -> tuple[int, int, int] | None:
    """``"50000,20,100"`` -> the three thresholds; ``"off"`` or empty -> None."""
    value = raw.strip().lower()
    if value in {"", "off", "default"}:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"{raw!r} is not three comma-separated integers (e.g. 50000,20,100) or off"
        )
    first, second, third = (int(p) for p in parts)
    if first < 1:
        raise ValueError(f"{raw!r}: the first threshold must be at least 1")
    return first, second, third


def tune_gc(thresholds: tuple[int, int, int] | None) -> bool:
    """Apply ``thresholds`` and freeze the objects alive now; False if left alone."""
    if thresholds is None:
        return False
    gc.collect()  # free start-up garbage first, so it is not frozen with the rest
    gc.set_threshold(*thresholds)
    gc.freeze()
    logger.info(
        "event=gc_tuned thresholds=%s frozen=%d", thresholds, gc.get_freeze_count()
    )
    return True

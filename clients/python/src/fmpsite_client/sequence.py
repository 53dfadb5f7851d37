"""Per-symbol sequence bookkeeping: pure, no I/O (docs/protocol.md "Sequence
numbers, history and recovery").

For each subscribed symbol the tracker remembers the epoch and the last seq
yielded. It answers three questions the stream asks: what to put in ``recover``
on a reconnect, whether an update is a duplicate (at or below the last seq: an
older state, never yielded again) and whether it skips ahead (a gap to fill
before it). An epoch change resets the symbol to "seq 0 of the new epoch", so
the new sequence is filled from its start like any other gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fmpsite_client.messages import Reset

__all__ = ["Position", "SequenceTracker"]


@dataclass(slots=True)
class Position:
    epoch: str | None = None
    seq: int | None = None


class SequenceTracker:
    """Positions of the symbols a stream wants."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}

    def want(self, symbol: str) -> None:
        self.positions.setdefault(symbol, Position())

    def forget(self, symbol: str) -> None:
        self.positions.pop(symbol, None)

    def recover_map(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """``recover`` entries for the symbols whose epoch and seq are known."""
        out: dict[str, dict[str, Any]] = {}
        for symbol in symbols:
            pos = self.positions.get(symbol)
            if pos is not None and pos.epoch is not None and pos.seq is not None:
                out[symbol] = {"epoch": pos.epoch, "seq": pos.seq}
        return out

    def acknowledged(self, ack: dict[str, Any]) -> list[Reset]:
        """A ``subscribed`` acknowledgement: its epoch, and which symbols restart.

        A symbol that was ``not_recovered`` in the same epoch keeps its seq: the
        next update shows the gap, which is filled from the history. One whose
        epoch changed starts the new epoch at seq 0.
        """
        epoch = ack.get("epoch") if isinstance(ack.get("epoch"), str) else None
        not_recovered = ack.get("not_recovered") or ()
        resets: list[Reset] = []
        for symbol in ack.get("symbols") or ():
            pos = self.positions.get(symbol)
            if pos is None or epoch is None:
                continue
            if pos.epoch is not None and pos.seq is not None and pos.epoch != epoch:
                reason = "not_recovered" if symbol in not_recovered else "epoch"
                resets.append(Reset(symbol=symbol, epoch=epoch, reason=reason))
                pos.seq = 0
            pos.epoch = epoch
        return resets

    def check(
        self, symbol: str, seq: int, epoch: str | None
    ) -> tuple[str, int, Reset | None]:
        """Classify one update: ``("new"|"duplicate"|"gap", after_seq, reset)``.

        ``after_seq`` is the last seq before it (for a gap: fetch after it). The
        position is not moved: :meth:`advance` does that once it is yielded.
        """
        pos = self.positions.get(symbol)
        if pos is None:
            return "new", 0, None
        reset = None
        if epoch is not None and epoch != pos.epoch:
            if pos.epoch is not None and pos.seq is not None:
                reset = Reset(symbol=symbol, epoch=epoch, reason="epoch")
                pos.seq = 0
            pos.epoch = epoch
        last = pos.seq
        if last is None:
            return "new", 0, reset
        if seq <= last:
            return "duplicate", last, reset
        if seq > last + 1:
            return "gap", last, reset
        return "new", last, reset

    def advance(self, symbol: str, seq: int) -> None:
        pos = self.positions.get(symbol)
        if pos is not None and (pos.seq is None or seq > pos.seq):
            pos.seq = seq

    def epoch(self, symbol: str) -> str | None:
        pos = self.positions.get(symbol)
        return pos.epoch if pos is not None else None

    def last_seq(self, symbol: str) -> int | None:
        pos = self.positions.get(symbol)
        return pos.seq if pos is not None else None

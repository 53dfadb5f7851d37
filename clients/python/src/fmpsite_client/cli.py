"""``fmpsite-stream AAPL MSFT --url ws://host/api/v2/realtime/ws/prices``: live
prices in a terminal (a table redrawn in place) or as JSON lines (``--json``),
through server restarts: the stream reconnects and recovers by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

import orjson

from fmpsite_client.messages import (
    ErrorMessage,
    Gap,
    PriceUpdate,
    Reset,
    StreamMessage,
    UpstreamStatus,
)
from fmpsite_client.stream import PriceStream

DEFAULT_URL = "ws://127.0.0.1:8000/api/v2/realtime/ws/prices"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmpsite-stream", description="Stream live prices from fmpsite."
    )
    parser.add_argument("symbols", nargs="+", help="symbols, e.g. AAPL MSFT")
    parser.add_argument(
        "--url",
        default=os.environ.get("FMPSITE_STREAM_URL", DEFAULT_URL),
        help="the price stream's ws(s):// URL (env FMPSITE_STREAM_URL)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("FMPSITE_TOKEN"),
        help="a DRF token or connection token (env FMPSITE_TOKEN)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per message"
    )
    return parser


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


class Table:
    """The latest update per symbol; redrawn in place on a terminal, one row
    per update otherwise (a pipe or a log file)."""

    HEADER = f"{'SYMBOL':<10} {'LAST':>12} {'BID':>12} {'ASK':>12} {'SEQ':>8}"

    def __init__(self, symbols: list[str], out: Any) -> None:
        self.rows: dict[str, PriceUpdate | None] = dict.fromkeys(symbols)
        self.out = out
        self.tty = out.isatty()
        self.status = "connecting"

    def row(self, symbol: str, u: PriceUpdate | None) -> str:
        if u is None:
            return f"{symbol:<10} {'-':>12} {'-':>12} {'-':>12} {'-':>8}"
        return (
            f"{symbol:<10} {_fmt(u.last_price):>12} {_fmt(u.bid_price):>12} "
            f"{_fmt(u.ask_price):>12} {_fmt(u.seq):>8}"
        )

    def update(self, u: PriceUpdate) -> None:
        self.rows[u.symbol] = u
        if self.tty:
            self.redraw()
        else:
            print(self.row(u.symbol, u), file=self.out, flush=True)

    def redraw(self) -> None:
        lines = [self.HEADER, *(self.row(s, u) for s, u in self.rows.items())]
        lines.append(f"[{self.status}]")
        self.out.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
        self.out.flush()

    def set_status(self, status: str) -> None:
        self.status = status
        if self.tty:
            self.redraw()


def _json_line(message: StreamMessage) -> bytes:
    if isinstance(message, PriceUpdate):
        body = dict(message.raw)
        body.setdefault("epoch", message.epoch)
        if message.from_history:
            body["from_history"] = True
        return orjson.dumps(body)
    if isinstance(message, Reset | Gap):
        return orjson.dumps({"type": message.type, **_fields(message)})
    return orjson.dumps(message.raw)


def _fields(message: Reset | Gap) -> dict[str, Any]:
    return {k: getattr(message, k) for k in message.__slots__}


async def run(args: argparse.Namespace) -> None:
    table = Table([s.upper() for s in args.symbols], sys.stdout)

    def on_state(state: str, info: dict[str, Any]) -> None:
        detail = " ".join(f"{k}={v}" for k, v in info.items())
        print(f"state={state} {detail}".rstrip(), file=sys.stderr, flush=True)
        table.set_status(state)

    async with PriceStream(args.url, token=args.token, on_state=on_state) as stream:
        await stream.subscribe(args.symbols)
        async for message in stream:
            if args.json:
                sys.stdout.buffer.write(_json_line(message) + b"\n")
                sys.stdout.buffer.flush()
            elif isinstance(message, PriceUpdate):
                table.update(message)
            elif isinstance(message, ErrorMessage):
                print(f"error {message.code}: {message.message}", file=sys.stderr)
            elif isinstance(message, UpstreamStatus):
                table.set_status(f"upstream {message.status}")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()

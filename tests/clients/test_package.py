"""The Python client's pure parts (sequence bookkeeping, back-off, subscribe
splitting) and its packaging: the wheel builds and installs its CLI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
from fmpsite_client import PriceUpdate, Reset, decode
from fmpsite_client.http import auth_header
from fmpsite_client.sequence import SequenceTracker
from fmpsite_client.stream import MAX_SUBSCRIBE_BYTES, backoff_delay, subscribe_messages

ROOT = Path(__file__).resolve().parents[2]


def test_tracker_drops_duplicates_and_finds_gaps_and_epoch_resets() -> None:
    t = SequenceTracker()
    t.want("AAPL")
    assert t.acknowledged({"symbols": ["AAPL"], "epoch": "e1"}) == []
    assert t.check("AAPL", 5, "e1")[0] == "new"
    t.advance("AAPL", 5)
    assert t.check("AAPL", 5, None)[0] == "duplicate"
    assert t.check("AAPL", 6, None)[0] == "new"
    assert t.check("AAPL", 9, None)[:2] == ("gap", 5)
    assert t.recover_map(["AAPL", "MSFT"]) == {"AAPL": {"epoch": "e1", "seq": 5}}
    resets = t.acknowledged(
        {"symbols": ["AAPL"], "epoch": "e2", "not_recovered": ["AAPL"]}
    )
    assert resets == [Reset(symbol="AAPL", epoch="e2", reason="not_recovered")]
    # The new epoch starts at 0: its snapshot at seq 7 is a gap from 0.
    assert t.check("AAPL", 7, "e2")[:2] == ("gap", 0)


def test_backoff_is_full_jitter_capped() -> None:
    assert backoff_delay(3, 0.5, 30, rng=lambda: 1.0) == 4.0
    assert backoff_delay(20, 0.5, 30, rng=lambda: 1.0) == 30
    assert backoff_delay(5, 0.5, 30, rng=lambda: 0.0) == 0.0


def test_resubscribe_with_recover_is_split_below_the_message_limit() -> None:
    symbols = [f"LONGSYMBOL{i:04d}ABCDEF" for i in range(50)]
    recover = {
        s: {"epoch": "k3x9Qa1b", "seq": 123456 + i} for i, s in enumerate(symbols)
    }
    messages = subscribe_messages(symbols, recover)
    assert len(messages) > 1
    assert all(len(orjson.dumps(m)) <= MAX_SUBSCRIBE_BYTES for m in messages)
    assert [s for m in messages for s in m["symbols"]] == symbols
    assert {s: p for m in messages for s, p in m["recover"].items()} == recover


def test_decode_types_messages_and_keeps_unknown_ones() -> None:
    update = decode(
        {"type": "price_update", "symbol": "AAPL", "seq": 3, "last_price": 1.5}
    )
    assert isinstance(update, PriceUpdate) and update.seq == 3
    assert update.last_price == 1.5 and update.raw["symbol"] == "AAPL"
    assert decode({"type": "bar", "symbol": "AAPL"}).type == "bar"
    assert decode({"type": "error", "code": "x", "message": "m"}).code == "x"


def test_tokens_go_in_the_header_the_api_takes() -> None:
    assert auth_header("abc123") == {"Authorization": "Token abc123"}
    assert auth_header("a.b.c") == {"Authorization": "Bearer a.b.c"}
    assert auth_header(None) == {}


def test_the_wheel_builds_typed_with_its_cli(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT / "clients" / "python"),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("fmpsite_client-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "fmpsite-stream = fmpsite_client.cli:main" in z.read(entry).decode()
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "fmpsite_client/py.typed" in names
    assert "Requires-Dist: websockets" in meta and "Django" not in meta

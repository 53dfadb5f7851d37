"""The dashboard's candle rules (static/dashboard/bars.js: replace by start, the
forming candle, day statistics) under node's own test runner: the module is pure,
so no browser is needed for them."""

from __future__ import annotations

import subprocess
from pathlib import Path

TESTS = Path(__file__).resolve().parent / "js" / "bars.test.mjs"


def test_bar_book_rules_pass_under_node() -> None:
    result = subprocess.run(
        ["node", "--test", str(TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout

"""The dashboard's candle rules (static/dashboard/bars.js: replace by start, the
forming candle, day statistics) under node's own test runner: the module is pure,
so no browser is needed for them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent / "js" / "bars.test.mjs"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_bar_book_rules_pass_under_node() -> None:
    result = subprocess.run(
        ["node", "--test", str(TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout

"""tests/frontend/node_modules from its lockfile, for every test here that needs
an npm package (esbuild and React for the guide's component, tsc for the JS
client's declarations).

``npm ci`` runs when node_modules is missing or older than the lockfile, under a
file lock: pytest-xdist may run two of these test files at once, and two
``npm ci`` into one folder break each other.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"


def run(args: list[str], what: str, *, cwd: Path = HERE, timeout: float = 600) -> str:
    """Run a node tool; fail the test with its output when it fails."""
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(f"{what} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def installed_bin(name: str) -> Path:
    """``node_modules/.bin/<name>``, installed from the lockfile first if need be."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed: `apt-get install nodejs npm`")
    lock = HERE / "package-lock.json"
    with (HERE / ".npm-ci.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        installed = NODE_MODULES / ".package-lock.json"
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            run(["npm", "ci", "--no-audit", "--no-fund"], "npm ci in tests/frontend")
    binary = NODE_MODULES / ".bin" / name
    if not binary.exists():
        pytest.fail(f"{binary} missing after npm ci")
    return binary

"""One daphne web process of the stack: ``python -m deploy.webproc N``.

supervisor starts the web processes as one program with ``numprocs`` copies
(``web1`` ... ``webN``) but cannot compute a port from a process number; this
turns N into the Nth port of ``FMPSITE_WEB_PORTS`` and becomes daphne
(``execv``: same pid, so supervisor's signals reach daphne itself).
"""

from __future__ import annotations

import os
import sys


def daphne_argv(number: int, environ: dict[str, str]) -> list[str]:
    """daphne's command line for web process ``number`` (1-based)."""
    ports = [p.strip() for p in environ["FMPSITE_WEB_PORTS"].split(",") if p.strip()]
    if not 1 <= number <= len(ports):
        raise SystemExit(
            f"webproc: process {number} has no port in FMPSITE_WEB_PORTS={ports}"
        )
    return [
        sys.executable,
        "-m",
        "daphne",
        "--proxy-headers",
        "-b",
        environ.get("FMPSITE_WEB_BIND", "127.0.0.1"),
        "-p",
        ports[number - 1],
        "fmpsite.asgi:application",
    ]


def main() -> None:
    argv = daphne_argv(int(sys.argv[1]), dict(os.environ))
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()

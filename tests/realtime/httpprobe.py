"""Read a running server's JSON endpoints and Prometheus metrics, as a probe would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def http_json(port: int, path: str) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:  # health answers 503 with the same body
        return json.loads(exc.read())


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"metric {name} not exported")

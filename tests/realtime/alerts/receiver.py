"""A local webhook receiver for tests: a real HTTP server on a loopback port that
records every POST and whether its ``X-Fmpsite-Signature`` verifies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from realtime.alerts.webhook import SIGNATURE_HEADER, verify


class Receiver:
    def __init__(self, secret: str, port: int = 0, status: int = 200) -> None:
        self.secret = secret
        self.status = status
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                header = self.headers.get(SIGNATURE_HEADER, "")
                receiver.received.append(
                    {
                        "path": self.path,
                        "body": json.loads(body),
                        "signature_ok": verify(receiver.secret, header, body),
                        "header": header,
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A tiny JSON HTTP server on loopback, for fakes of Google's REST APIs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# (method, path without query, headers, decoded JSON body or None) -> (status, JSON answer)
Route = Callable[[str, str, Mapping[str, str], Any], tuple[int, Any]]


class JsonApi:
    def __init__(self, route: Route) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, answer = route(
                    self.command, urlsplit(self.path).path, self.headers, json.loads(raw) if raw else None
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="fake-api", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeLoggingApi(JsonApi):
    """entries:write of the Cloud Logging v2 REST API, on loopback."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.auth: list[str] = []
        super().__init__(self._route)

    def _route(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        if method == "POST" and path.endswith("/entries:write"):
            self.auth.append(headers.get("Authorization", ""))
            for entry in (body or {}).get("entries", []):
                self.entries.append({**entry, "logName": entry.get("logName") or body.get("logName")})
            return 200, {}
        return 404, {"error": {"code": 404, "message": "Not found"}}

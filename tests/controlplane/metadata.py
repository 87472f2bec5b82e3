"""A fake GCE metadata server on loopback, for google-auth's compute-engine credentials.

Point google-auth at it with ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP`` (both
``127.0.0.1:PORT``). It answers the paths google-auth uses: the detection ping, the project id,
the default service account's info, its access token (handed out from a fixed list that the API
server's token file maps to the drainer user, rotating at each refresh) and its ID token
(``identity?audience=...``, minted by ``id_token_minter``, e.g. signed by a test issuer, when one
is configured: google-auth's ``id_token.fetch_id_token`` then works as on Compute Engine).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SA_ROOT = "/computeMetadata/v1/instance/service-accounts/"


@dataclass
class FakeMetadataServer:
    project: str
    email: str
    tokens: Sequence[str]
    expires_in: int = 3599
    # Not Google's universe: google-auth then skips its Regional Access Boundary lookup, which
    # would otherwise try to reach iamcredentials.googleapis.com from an authorized session.
    universe_domain: str = "universe.test"
    id_token_minter: Callable[[str], str] | None = None
    requests: list[str] = field(default_factory=list)
    id_token_audiences: list[str] = field(default_factory=list)  # what each identity request asked for

    def __post_init__(self) -> None:
        self._next_token = itertools.cycle(self.tokens)
        self._lock = threading.Lock()
        self.token_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-metadata", daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def environ(self) -> dict[str, str]:
        """Variables that make google-auth use this server."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

    def start(self) -> FakeMetadataServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, str]:
        """(status, content type, body) for one GET."""
        if path in ("", "/"):
            return 200, "text/plain", "computeMetadata/\n"
        if path == "/computeMetadata/v1/project/project-id":
            return 200, "text/plain", self.project
        if path == "/computeMetadata/v1/universe/universe-domain":
            return 200, "text/plain", self.universe_domain
        if not path.startswith(SA_ROOT):
            return 404, "text/plain", "not found"
        account, _, leaf = path[len(SA_ROOT) :].partition("/")
        if account not in ("default", self.email):
            return 404, "text/plain", "no such service account"
        if leaf == "":
            info = {"aliases": ["default"], "email": self.email, "scopes": query.get("scopes", [])}
            return 200, "application/json", json.dumps(info)
        if leaf == "email":
            return 200, "text/plain", self.email
        if leaf == "token":
            with self._lock:
                self.token_requests += 1
                token = next(self._next_token)
            body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
            return 200, "application/json", json.dumps(body)
        if leaf == "identity" and self.id_token_minter is not None:
            audience = (query.get("audience") or [""])[0]
            if not audience:
                return 400, "text/plain", "audience required"
            self.id_token_audiences.append(audience)
            return 200, "text/plain", self.id_token_minter(audience)
        return 404, "text/plain", "not found"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                owner.requests.append(parts.path)
                if self.headers.get("Metadata-Flavor") != "Google":
                    status, ctype, body = 403, "text/plain", "Missing Metadata-Flavor: Google header"
                else:
                    status, ctype, body = owner._answer(parts.path, parse_qs(parts.query))
                data = body.encode()
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler

"""Caller verification for the HTTP entry points: a Google-signed ID token and an allow-list.

The token is verified with google-auth's ``id_token.verify_oauth2_token`` (signature against
Google's certificates, ``exp``/``iat`` with 30 s of clock skew allowed, the expected audience,
Google's issuers). The certificates are cached for a few minutes; ``certs_url`` may point the
certificate fetch elsewhere (tests). google-auth's verification is imported only when an audience
is configured (at the first call that verifies), never by a cold start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.errors import PermanentError

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
CERTS_CACHE_SECONDS = 300.0
CLOCK_SKEW_SECONDS = 30  # a token issued by a clock this far ahead of ours is still accepted (iat, exp)


class Unauthorized(PermanentError):
    """No valid credential: HTTP 401."""


class Forbidden(PermanentError):
    """A valid credential that may not call: HTTP 403."""


@dataclass(frozen=True, kw_only=True)
class Caller:
    email: str | None
    verified: bool  # False when verification is not configured


def _certs_request(certs_url: str | None) -> Any:
    """A google-auth transport that caches the certificate document (and may fetch it elsewhere)."""
    import google.auth.transport
    import google.auth.transport.requests

    class CertsRequest(google.auth.transport.Request):
        def __init__(self) -> None:
            self._inner = google.auth.transport.requests.Request()
            self._cached: tuple[float, Any] | None = None
            self._lock = threading.Lock()

        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: Any = None,
            headers: Mapping[str, str] | None = None,
            timeout: Any = None,
            **kwargs: Any,
        ) -> Any:
            if url != GOOGLE_CERTS_URL:
                return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
            with self._lock:
                if self._cached and time.monotonic() - self._cached[0] < CERTS_CACHE_SECONDS:
                    return self._cached[1]
            response = self._inner(certs_url or url, method=method, headers=headers, timeout=timeout or 10)
            if response.status == 200:
                with self._lock:
                    self._cached = (time.monotonic(), response)
            return response

    return CertsRequest()


class CallerVerifier:
    def __init__(self, *, audience: str | None, allowed: frozenset[str], certs_url: str | None = None) -> None:
        self.audience = audience
        self.allowed = allowed
        self._certs_url = certs_url
        self._request: Any = None
        self._request_lock = threading.Lock()

    def _transport(self) -> Any:
        with self._request_lock:
            if self._request is None:
                self._request = _certs_request(self._certs_url)
            return self._request

    def verify(self, authorization: str | None) -> Caller:
        if not self.audience:
            return Caller(email=None, verified=False)  # the platform's IAM invoker check is the gate
        import google.auth.exceptions
        from google.oauth2 import id_token

        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("send a Google-signed ID token: Authorization: Bearer <token>")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            claims = id_token.verify_oauth2_token(
                token, self._transport(), audience=self.audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
            )
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise Unauthorized(f"the ID token was rejected: {_first_line(exc)}") from None
        email = str(claims.get("email") or "")
        if not email or claims.get("email_verified") is not True:
            raise Forbidden("the ID token carries no verified email")
        if self.allowed and email.lower() not in self.allowed:
            raise Forbidden(f"{email} is not allowed to call this function")
        return Caller(email=email, verified=True)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__

"""The function's own Google identity: application-default credentials, shared by every gateway
that calls a Google API (Container API, Compute Engine) or hands a token to a GKE API server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests

from functions.errors import TransientError

GOOGLE_SCOPES = (
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/cloud-platform",
)
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)


class TokenUnavailable(TransientError):
    """google-auth could not mint an access token (metadata server down, credentials revoked)."""


class GoogleIdentity:
    """One set of credentials per process, refreshed five minutes before it expires."""

    _lock = threading.Lock()
    _credentials: google.auth.credentials.Credentials | None = None
    _session: google.auth.transport.requests.AuthorizedSession | None = None

    @classmethod
    def credentials(cls) -> google.auth.credentials.Credentials:
        with cls._lock:
            if cls._credentials is None:
                try:
                    creds, _ = google.auth.default(scopes=list(GOOGLE_SCOPES))
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise TokenUnavailable(f"no Google credentials: {type(exc).__name__}") from None
                cls._credentials = creds
            return cls._credentials

    @classmethod
    def token(cls) -> str:
        creds = cls.credentials()
        with cls._lock:
            expiry = creds.expiry.replace(tzinfo=UTC) if creds.expiry else None
            if creds.token is None or expiry is None or expiry - datetime.now(UTC) < TOKEN_REFRESH_MARGIN:
                try:
                    creds.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise TokenUnavailable(f"could not get a Google access token: {type(exc).__name__}") from None
            if not creds.token:
                raise TokenUnavailable("google-auth returned no access token")
            return str(creds.token)

    @classmethod
    def session(cls) -> google.auth.transport.requests.AuthorizedSession:
        """A requests session (one per process: its connections are reused) that sends and
        refreshes the function's access token."""
        credentials = cls.credentials()
        with cls._lock:
            if cls._session is None:
                cls._session = google.auth.transport.requests.AuthorizedSession(credentials)
            return cls._session

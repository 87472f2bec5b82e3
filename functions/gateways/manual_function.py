"""Calls to the deployed manual function (``on_manual``) for the command-line tool: a Google ID
token for its audience, minted from the caller's own credentials, and one JSON POST.

Errors say what to fix; the command line maps them to exit codes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.id_token
import requests
from google.auth import impersonated_credentials

from functions.errors import DrainerError

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
CONNECT_TIMEOUT = 10.0
NO_CREDENTIALS = (
    "no Google credentials: run gcloud auth application-default login or set GOOGLE_APPLICATION_CREDENTIALS "
    "to a service-account key file (on a VM, Cloud Shell or Cloud Run the metadata server is used)"
)
USER_CREDENTIALS = (
    "your Google credentials are user credentials, which cannot mint an ID token for the audience {audience}: "
    "pass --impersonate-service-account EMAIL (you need roles/iam.serviceAccountTokenCreator on it, and it needs "
    "to be allowed to call the function), or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
)


class CredentialsError(DrainerError):
    """No ID token could be obtained from the caller's credentials; the message says what to fix."""


class Unreachable(DrainerError):
    """The function could not be reached (connection refused, DNS, TLS, timeout)."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    status: int
    body: Any  # the decoded JSON, or the text when the answer is not JSON
    is_json: bool

    @property
    def error(self) -> str:
        """The function's own error message, or the start of whatever it answered."""
        if self.is_json and isinstance(self.body, dict) and isinstance(self.body.get("error"), str):
            return str(self.body["error"])
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return " ".join(text.split())[:300] or "(empty answer)"


def _ambient_id_token(audience: str, request: google.auth.transport.requests.Request) -> str:
    """An ID token through google-auth's own lookup: a service-account (or impersonation) file in
    GOOGLE_APPLICATION_CREDENTIALS, or the metadata server. User credentials cannot mint one for an
    arbitrary audience, so they are recognised first and answered with what to do instead."""
    try:
        credentials, _ = google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError as exc:
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            raise CredentialsError(f"GOOGLE_APPLICATION_CREDENTIALS cannot be used: {exc}") from None
        raise CredentialsError(NO_CREDENTIALS) from None
    if type(credentials).__module__ == "google.oauth2.credentials":
        raise CredentialsError(USER_CREDENTIALS.format(audience=audience))
    try:
        return str(google.oauth2.id_token.fetch_id_token(request, audience))
    except google.auth.exceptions.DefaultCredentialsError:
        raise CredentialsError(
            f"your Google credentials ({type(credentials).__name__}) cannot mint an ID token: "
            "pass --impersonate-service-account EMAIL"
        ) from None
    except google.auth.exceptions.GoogleAuthError as exc:
        raise CredentialsError(f"could not get an ID token for {audience}: {exc}") from None


def _impersonated_id_token(audience: str, account: str, request: google.auth.transport.requests.Request) -> str:
    try:
        source, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
    except google.auth.exceptions.DefaultCredentialsError:
        raise CredentialsError(NO_CREDENTIALS) from None
    target = impersonated_credentials.Credentials(
        source_credentials=source, target_principal=account, target_scopes=[CLOUD_PLATFORM], lifetime=300
    )
    credentials = impersonated_credentials.IDTokenCredentials(target, target_audience=audience, include_email=True)
    try:
        credentials.refresh(request)
    except google.auth.exceptions.GoogleAuthError as exc:
        raise CredentialsError(
            f"could not impersonate {account} for an ID token: {exc} "
            "(you need roles/iam.serviceAccountTokenCreator on that service account)"
        ) from None
    return str(credentials.token)


def id_token(*, audience: str, impersonate: str | None = None) -> str:
    """A Google-signed ID token for ``audience`` from the caller's credentials."""
    request = google.auth.transport.requests.Request()
    if impersonate:
        return _impersonated_id_token(audience, impersonate, request)
    return _ambient_id_token(audience, request)


def post(url: str, body: dict[str, Any], *, token: str | None, timeout: float) -> Answer:
    """POST ``body`` as JSON; any HTTP answer comes back, a transport failure raises Unreachable."""
    headers = {"Content-Type": "application/json", "User-Agent": "gke-node-drainer-cli"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.post(url, data=json.dumps(body), headers=headers, timeout=(CONNECT_TIMEOUT, timeout))
    except requests.Timeout:
        raise Unreachable(f"{url} did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise Unreachable(f"{url} could not be reached: {_short(exc)}") from None
    try:
        return Answer(status=response.status_code, body=response.json(), is_json=True)
    except ValueError:
        return Answer(status=response.status_code, body=response.text, is_json=False)


def _short(exc: Exception) -> str:
    """The innermost reason of a requests error (e.g. "Connection refused"), not the whole chain."""
    text = str(exc)
    for marker in ("] ", "Errno "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip("')\" ") or type(exc).__name__

"""Caller verification of the HTTP entry points: Google-signed ID tokens (signed here by a test key,
its certificate served from a loopback certs endpoint) and the caller allow-list."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support.fakes import JsonApi
from tests.support.idtokens import AUDIENCE, OPERATOR, TokenIssuer
from tests.support.server import FunctionServer

SCHEDULER = "scheduler@acme-prod.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer("test-key-1")


@pytest.fixture(scope="module")
def certs(issuer: TokenIssuer) -> Iterator[JsonApi]:
    stranger = TokenIssuer("other-key")  # published too: a known key, but not the one that signs
    api = JsonApi(
        lambda method, path, headers, body: (200, {issuer.kid: issuer.cert_pem, stranger.kid: stranger.cert_pem})
    )
    yield api
    api.stop()


@pytest.fixture(scope="module")
def guarded(server_factory: Callable[..., FunctionServer], certs: JsonApi) -> dict[str, FunctionServer]:
    env = {
        "DRAINER_HTTP_AUDIENCE": AUDIENCE,
        "DRAINER_ALLOWED_CALLERS": f"{OPERATOR}, {SCHEDULER.upper()}",
        "DRAINER_ID_TOKEN_CERTS_URL": certs.url + "/oauth2/v1/certs",
    }
    return {
        "manual": server_factory("on_manual", "http", **env),
        "schedule": server_factory("on_schedule", "http", **env),
    }


def post(server: FunctionServer, token: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.post(server.url + "/", data=json.dumps(body), headers=headers, timeout=60)
    return response.status_code, response.json()


def test_valid_token_of_an_allowed_caller_is_accepted(guarded: dict[str, FunctionServer], issuer: TokenIssuer) -> None:
    code, body = post(guarded["manual"], issuer.token(), {"action": "status"})
    assert code == 200, body
    record = guarded["manual"].wait_audit(action="http.request", caller=OPERATOR)
    assert record["caller_verified"] is True
    code, body = post(guarded["schedule"], issuer.token(email=SCHEDULER), {"action": "recover"})
    assert code == 200, body


def test_a_token_from_a_clock_slightly_ahead_is_accepted(
    guarded: dict[str, FunctionServer], issuer: TokenIssuer
) -> None:
    ahead = int(time.time()) + 20  # the issuer's clock runs 20 s ahead of ours: within the 30 s tolerated
    code, body = post(guarded["manual"], issuer.token(iat=ahead, exp=ahead + 3600), {"action": "status"})
    assert code == 200, body
    far = int(time.time()) + 120
    code, body = post(guarded["manual"], issuer.token(iat=far, exp=far + 3600), {"action": "status"})
    assert code == 401, body


@pytest.mark.parametrize(
    ("claims", "status", "message"),
    [
        pytest.param({"aud": "https://elsewhere.example/fn"}, 401, "rejected", id="wrong-audience"),
        pytest.param({"iss": "https://evil.example"}, 401, "rejected", id="wrong-issuer"),
        pytest.param({"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200}, 401, "rejected", id="expired"),
        pytest.param(
            {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, 401, "rejected", id="issued-in-future"
        ),
        pytest.param({"email": "intruder@example.com"}, 403, "not allowed", id="unlisted-email"),
        pytest.param({"email_verified": False}, 403, "verified email", id="unverified-email"),
        pytest.param({"email": None}, 403, "verified email", id="no-email"),
    ],
)
def test_bad_tokens_are_rejected(
    guarded: dict[str, FunctionServer], issuer: TokenIssuer, claims: dict[str, Any], status: int, message: str
) -> None:
    for server in guarded.values():
        code, body = post(server, issuer.token(**claims), {"action": "cleanup", "dry_run": True})
        assert code == status, body
        assert message in body["error"]
    record = guarded["manual"].wait_audit(action="http.rejected", status=status)
    assert record["severity"] == "WARNING"


def test_token_signed_by_another_key_is_rejected(guarded: dict[str, FunctionServer]) -> None:
    forger = TokenIssuer("test-key-1")  # claims the right key id, signs with another key
    code, body = post(guarded["manual"], forger.token(), {"action": "status"})
    assert code == 401
    assert "rejected" in body["error"]


@pytest.mark.parametrize(
    "token", [None, "", "not-a-jwt", "a.b.c"], ids=["no-header", "empty", "garbage", "bad-segments"]
)
def test_missing_or_malformed_token_is_401(guarded: dict[str, FunctionServer], token: str | None) -> None:
    code, body = post(guarded["manual"], token, {"action": "status"})
    assert code == 401
    assert body["error"]


def test_audience_is_never_skipped_when_configured(guarded: dict[str, FunctionServer], issuer: TokenIssuer) -> None:
    token = issuer.token(aud=None)
    code, _ = post(guarded["manual"], token, {"action": "status"})
    assert code == 401

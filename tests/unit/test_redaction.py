"""Redaction of token-shaped text and of secrets in botocore's and urllib3's log records."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import quote

import jwt
import pytest

from webid_provider import _redaction
from webid_provider._redaction import (
    REDACTED,
    REDACTED_LOGGERS,
    install_secret_redaction,
    redact_secrets,
    redact_token_shaped,
    remember_secrets,
)

SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjEHAaCXVzLWVhc3QtMSJGMEQCIFi8+9s/LqX2Vv4kKt0vQw3mN7yP1rR6sS8tT9uU0vW1"
    "AiBx2yZ3a4b5c6d7e8f9g0h1i2j3k4l5m6n7o8p9q0r1s2t3u4v5w6x7y8z9A0B1C2D3E4F5G6H7I8J9K0=="
)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


@pytest.fixture(autouse=True)
def _forget_remembered_secrets() -> Iterator[None]:
    yield
    with _redaction._lock:
        _redaction._remembered.clear()


# -- token shapes (stderr excerpts) -------------------------------------------------------------


def test_a_jwt_is_redacted_whole() -> None:
    token = jwt.encode({"sub": "system:serviceaccount:prod:app"}, "k" * 32, algorithm="HS256")
    text = f"+ TOKEN={token}\n+ curl -H 'Authorization: Bearer {token}' https://idp.example/x"
    redacted = redact_token_shaped(text)
    for part in (token, *token.split(".")):
        assert part not in redacted
    assert redacted.count(REDACTED) == 2
    assert "https://idp.example/x" in redacted


@pytest.mark.parametrize(
    "secret",
    [
        SESSION_TOKEN,
        SECRET_KEY,
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "A1b2C3d4E5f6G7h8.I9j0K1l2M3n4O5p6.Q7r8S9t0",
    ],
    ids=["session-token", "secret-key", "github-token", "hex", "jwe-like"],
)
def test_long_secret_shaped_runs_are_redacted(secret: str) -> None:
    redacted = redact_token_shaped(f"error: {secret} was rejected")
    assert secret not in redacted
    assert redacted == f"error: {REDACTED} was rejected"


@pytest.mark.parametrize(
    "text",
    [
        "curl: (7) Failed to connect to idp.example.com port 443: Connection refused",
        "/usr/local/lib/python3.11/site-packages/requests/adapters.py line 519",
        "/home/runner/work/my-project/my-project/scripts/get_web_identity_token",
        "request id 550e8400-e29b-41d4-a716-446655440000 failed",
        "kubernetes.default.svc.cluster.local: no such host",
        "x" * 1000 + "oidc endpoint unreachable",
        "ASIAIOSFODNN7EXAMPLE",
    ],
)
def test_ordinary_diagnostics_survive(text: str) -> None:
    assert redact_token_shaped(text) == text


# -- log records --------------------------------------------------------------------------------


def record_through(logger_name: str, message: str, *args: object) -> str:
    install_secret_redaction()
    captured: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler = Capture(level=logging.DEBUG)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.debug(message, *args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    (line,) = captured
    return line


@pytest.mark.parametrize(
    ("logger_name", "template"),
    [
        ("botocore.endpoint", "Sending http request: <AWSPreparedRequest headers={%s}>"),
        ("botocore.auth", "CanonicalRequest:\nGET\n/\n\nhost:s3\n%s\n\nhost;x-amz-security-token"),
        ("urllib3.connectionpool", 'http://127.0.0.1:1 "GET /b/k?%s HTTP/1.1" 200 0'),
        ("botocore.parsers", "Response body:\n%s"),
    ],
)
def test_named_session_tokens_are_redacted_in_every_form(logger_name: str, template: str) -> None:
    forms = {
        "botocore.endpoint": f"'X-Amz-Security-Token': b'{SESSION_TOKEN}'",
        "botocore.auth": f"x-amz-security-token:{SESSION_TOKEN}",
        "urllib3.connectionpool": f"X-Amz-Security-Token={quote(SESSION_TOKEN, safe='')}&x=1",
        "botocore.parsers": f"<SessionToken>{SESSION_TOKEN}</SessionToken>",
    }
    line = record_through(logger_name, template, forms[logger_name])
    assert SESSION_TOKEN not in line
    assert quote(SESSION_TOKEN, safe="") not in line
    assert SESSION_TOKEN[:20] not in line
    assert REDACTED in line


def test_remembered_secrets_are_redacted_wherever_they_appear() -> None:
    remember_secrets(SESSION_TOKEN, SECRET_KEY)
    message = f"odd place: {SESSION_TOKEN} and {quote(SESSION_TOKEN, safe='')} and {SECRET_KEY}"
    line = record_through("botocore.hooks", "%s", message)
    for value in (SESSION_TOKEN, quote(SESSION_TOKEN, safe=""), SECRET_KEY):
        assert value not in line
    assert line.count(REDACTED) == 3


def test_records_without_secrets_are_untouched() -> None:
    message = "Event choose-signer.sts.GetCallerIdentity: calling handler <function f>"
    assert record_through("botocore.hooks", "%s", message) == message
    assert redact_secrets(message) == message


def test_the_filter_sits_on_every_logger_that_quotes_requests() -> None:
    install_secret_redaction()
    install_secret_redaction()  # idempotent
    for name in (
        "botocore.endpoint",
        "botocore.auth",
        "botocore.parsers",
        "urllib3.connectionpool",
    ):
        assert name in REDACTED_LOGGERS
    for name in REDACTED_LOGGERS:
        filters = [
            f for f in logging.getLogger(name).filters if type(f).__module__ == _redaction.__name__
        ]
        assert len(filters) == 1, name


def test_the_remembered_set_is_bounded() -> None:
    for index in range(500):
        remember_secrets(f"{SESSION_TOKEN[:40]}{index:08d}")
    assert len(_redaction._remembered) <= 3 * 64

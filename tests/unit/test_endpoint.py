"""The container-credentials endpoint in-process: authorization, methods, bounds, logging."""

from __future__ import annotations

import errno
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Optional

import pytest

from webid_provider._endpoint import (
    DEFAULT_PATH,
    CredentialsEndpoint,
    CredentialsUnavailable,
    is_loopback_host,
)

pytestmark = pytest.mark.timeout(60)

TOKEN = "an-authorization-token-of-some-length"
DOCUMENT = {
    "AccessKeyId": "ASIAENDPOINTEXAMPLE",
    "SecretAccessKey": "secret/key+EXAMPLE",
    "Token": "session-token-EXAMPLE",
    "Expiration": "2026-01-01T13:00:00Z",
}


class Credentials:
    """Counts calls; returns the document or raises what it is told to."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Optional[Exception] = None

    def __call__(self) -> Mapping[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return DOCUMENT


@pytest.fixture
def credentials() -> Credentials:
    return Credentials()


@pytest.fixture
def endpoint(credentials: Credentials) -> Iterator[CredentialsEndpoint]:
    with CredentialsEndpoint(
        credentials, authorization_token=TOKEN, max_connections=2, timeout_seconds=2.0
    ) as running:
        yield running


def request(
    endpoint: CredentialsEndpoint,
    method: str = "GET",
    path: str = DEFAULT_PATH,
    headers: Optional[list[tuple[str, str]]] = None,
) -> tuple[int, dict[str, Any], str]:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    try:
        connection.putrequest(method, path)
        for name, value in headers if headers is not None else [("Authorization", TOKEN)]:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read().decode()
        return response.status, dict(response.getheaders()), body
    finally:
        connection.close()


def test_get_with_the_token_returns_the_document(
    endpoint: CredentialsEndpoint, credentials: Credentials
) -> None:
    status, headers, body = request(endpoint)
    assert status == 200
    assert json.loads(body) == DOCUMENT
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert credentials.calls == 1
    assert endpoint.url == f"http://127.0.0.1:{endpoint.port}{DEFAULT_PATH}"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([], 401),
        ([("Authorization", "wrong")], 403),
        ([("Authorization", TOKEN[:-1])], 403),
        ([("Authorization", TOKEN + "x")], 403),
        ([("Authorization", f"Bearer {TOKEN}")], 403),
        ([("Authorization", TOKEN), ("Authorization", "wrong")], 403),
        ([("Authorization", "wrong"), ("Authorization", TOKEN)], 403),
    ],
    ids=["missing", "wrong", "prefix", "longer", "bearer", "two-first-right", "two-last-right"],
)
def test_missing_or_wrong_authorization_is_refused_before_credentials(
    endpoint: CredentialsEndpoint,
    credentials: Credentials,
    headers: list[tuple[str, str]],
    status: int,
) -> None:
    got, _, body = request(endpoint, headers=headers)
    assert got == status
    assert DOCUMENT["AccessKeyId"] not in body
    assert TOKEN not in body
    assert credentials.calls == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"])
def test_other_methods_get_405(
    endpoint: CredentialsEndpoint, credentials: Credentials, method: str
) -> None:
    status, headers, body = request(endpoint, method=method)
    assert status == 405
    assert headers["Allow"] == "GET"
    assert body == "" if method == "HEAD" else "MethodNotAllowed" in body
    assert credentials.calls == 0


def test_other_paths_get_404_after_authorization(
    endpoint: CredentialsEndpoint, credentials: Credentials
) -> None:
    assert request(endpoint, path="/")[0] == 404
    assert request(endpoint, path="/", headers=[])[0] == 401
    assert request(endpoint, path=DEFAULT_PATH + "?x=1")[0] == 200
    assert credentials.calls == 1


def test_unavailable_credentials_are_a_500_with_the_packages_message(
    endpoint: CredentialsEndpoint, credentials: Credentials
) -> None:
    credentials.error = CredentialsUnavailable("AssumeRoleWithWebIdentity failed: AccessDenied")
    status, _, body = request(endpoint)
    assert status == 500
    assert json.loads(body)["message"] == "AssumeRoleWithWebIdentity failed: AccessDenied"
    credentials.error = ValueError("text that may quote a request: TOPSECRET")
    status, _, body = request(endpoint)
    assert status == 500
    assert "ValueError" in body
    assert "TOPSECRET" not in body


def _raw(endpoint: CredentialsEndpoint, data: bytes) -> bytes:
    with socket.create_connection((endpoint.host, endpoint.port), timeout=10) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_oversized_requests_are_refused(
    endpoint: CredentialsEndpoint, credentials: Credentials
) -> None:
    long_line = b"GET /" + b"a" * 20000 + b" HTTP/1.0\r\n\r\n"
    one_long_header = b"GET / HTTP/1.0\r\nX-Filler: " + b"b" * 20000 + b"\r\n\r\n"
    many_headers = b"".join(b"X-%d: %s\r\n" % (i, b"c" * 100) for i in range(200))
    for data in (long_line, one_long_header, b"GET / HTTP/1.0\r\n" + many_headers + b"\r\n"):
        assert _raw(endpoint, data).startswith(b"HTTP/1.0 431")
    assert credentials.calls == 0
    assert request(endpoint)[0] == 200  # still serving


def test_connections_beyond_the_cap_get_503_at_once(endpoint: CredentialsEndpoint) -> None:
    idle = [socket.create_connection((endpoint.host, endpoint.port)) for _ in range(2)]
    try:
        time.sleep(0.3)  # both are accepted and their handlers wait for a request line
        started = time.monotonic()
        answer = _raw(endpoint, b"GET / HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 503")
        assert time.monotonic() - started < 1.5
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while request(endpoint)[0] != 200:  # slots free again once the idle clients left
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_silent_clients_are_dropped_after_the_timeout(endpoint: CredentialsEndpoint) -> None:
    with socket.create_connection((endpoint.host, endpoint.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, nothing sent
        assert 1.0 < time.monotonic() - started < 8.0


def test_nothing_secret_is_logged(
    endpoint: CredentialsEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request(endpoint)
    request(endpoint, headers=[("Authorization", "wrong-" + TOKEN)])
    request(endpoint, path=DEFAULT_PATH + "?token=" + TOKEN)
    _raw(endpoint, b"NONSENSE\r\n\r\n")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "endpoint: GET /v1/credentials -> 200" in text
    for secret in (TOKEN, *DOCUMENT.values()):
        assert secret not in text


def test_concurrent_requests_all_succeed(credentials: Credentials) -> None:
    with CredentialsEndpoint(
        credentials, authorization_token=TOKEN, max_connections=16
    ) as endpoint:
        results: list[int] = []

        def worker() -> None:
            results.append(request(endpoint)[0])

        threads = [threading.Thread(target=worker) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [200] * 12


def test_a_port_in_use_is_refused(credentials: Credentials) -> None:
    with CredentialsEndpoint(credentials, authorization_token=TOKEN) as first:
        with pytest.raises(OSError) as raised:
            CredentialsEndpoint(credentials, authorization_token=TOKEN, port=first.port)
        assert raised.value.errno == errno.EADDRINUSE


def test_empty_token_is_refused(credentials: Credentials) -> None:
    with pytest.raises(ValueError, match="empty"):
        CredentialsEndpoint(credentials, authorization_token="")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("169.254.170.2", False),
        ("name.invalid", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback here")
def test_ipv6_loopback_url_is_bracketed(credentials: Credentials) -> None:
    with CredentialsEndpoint(credentials, authorization_token=TOKEN, host="::1") as endpoint:
        assert endpoint.url == f"http://[::1]:{endpoint.port}{DEFAULT_PATH}"
        assert request(endpoint)[0] == 200

"""A container-credentials HTTP endpoint: what ECS and EKS Pod Identity serve, on loopback.

Every AWS SDK and the aws CLI read ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` plus
``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (or ``..._TOKEN_FILE``), send ``GET`` with the token as
the ``Authorization`` header, and refresh through the endpoint on their own schedule. This
module serves that protocol for ``webid-provider exec`` and ``webid-provider serve``; the
credentials come from a callable (the package's refresher and host cache, with the consumer
margin, see :mod:`webid_provider._cli._consumer`).

Protocol, as botocore's ``ContainerProvider``/``ContainerMetadataFetcher`` read it: ``200``
with a JSON object holding ``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration``
(and ``AccountId``); any other status is an error whose body the SDK may show, so bodies are
short JSON messages. botocore accepts plain HTTP only from loopback addresses (and a few
link-local ECS/EKS addresses), which is why the endpoint binds loopback by default.

Security:

* ``Authorization`` is compared in constant time (``hmac.compare_digest``); no header: 401,
  a wrong one: 403; methods other than ``GET``: 405 (before looking at credentials);
* requests are bounded (request line and headers together at most ``MAX_REQUEST_BYTES``, a
  socket timeout per connection) and so is concurrency (``max_connections`` handler threads;
  further connections get 503 at once);
* nothing is logged but the method, the path without its query, and the status, at DEBUG:
  never a header, a credential or the authorization token.
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import io
import ipaddress
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)

DEFAULT_PATH = "/v1/credentials"
DEFAULT_MAX_CONNECTIONS = 16
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_REQUEST_BYTES = 16 * 1024
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 57\r\nConnection: close\r\n\r\n"
    b'{"code":"Busy","message":"too many concurrent requests"}\n'
)

CredentialsCallable = Callable[[], Mapping[str, Any]]


class CredentialsUnavailable(Exception):
    """Raised by the credentials callable when none can be had; its text is safe to send."""


def is_loopback_host(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    )


class CredentialsEndpoint:
    """The HTTP endpoint; binds on construction, serves after :meth:`start`.

    :param credentials: returns the response document; raises :class:`CredentialsUnavailable`
        (or any exception: its type name only is sent) when there is none
    :param authorization_token: the exact ``Authorization`` header value clients must send
    :param host: address to bind; the caller checks it is loopback unless told otherwise
    :param port: port to bind; 0 lets the OS choose (see :attr:`port`)
    :raises OSError: when the address cannot be bound (``EADDRINUSE`` for a port in use)
    """

    def __init__(
        self,
        credentials: CredentialsCallable,
        *,
        authorization_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = DEFAULT_PATH,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not authorization_token:
            raise ValueError("the authorization token is empty")
        family, address = _resolve(host, port)
        self.path = path
        self._server = _Server(
            address,
            family,
            credentials=credentials,
            expected=authorization_token.encode("utf-8"),
            path=path,
            max_connections=max_connections,
            timeout_seconds=timeout_seconds,
        )
        self._thread: Optional[threading.Thread] = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` for this endpoint."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.path}"

    def start(self) -> CredentialsEndpoint:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webid-endpoint", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the socket; requests in progress finish on their own threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> CredentialsEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    infos = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        *,
        credentials: CredentialsCallable,
        expected: bytes,
        path: str,
        max_connections: int,
        timeout_seconds: float,
    ) -> None:
        self.address_family = family
        self.credentials = credentials
        self.expected = expected
        self.path = path
        self.timeout_seconds = timeout_seconds
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a reverse DNS lookup that can stall
        # for seconds); the name is only used in CGI environments.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr, which could quote request data.
        logger.debug("endpoint: a request failed")


class _BoundedReader:
    """The request stream, limited to ``MAX_REQUEST_BYTES`` for request line and headers."""

    def __init__(self, stream: io.BufferedIOBase, limit: int) -> None:
        self._stream = stream
        self._left = limit

    def readline(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise http.client.LineTooLong("request")
        allowed = self._left if size < 0 else min(size, self._left)
        line = self._stream.readline(allowed)
        self._left -= len(line)
        if self._left <= 0 and not line.endswith(b"\n"):
            raise http.client.LineTooLong("request")
        return line

    def read(self, size: int = -1) -> bytes:
        return b""  # a credentials GET has no body; never read one

    def close(self) -> None:
        self._stream.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "webid-provider"
    sys_version = ""
    protocol_version = "HTTP/1.0"

    def setup(self) -> None:
        self.request.settimeout(self.server.timeout_seconds)
        super().setup()
        self.rfile = _BoundedReader(self.rfile, MAX_REQUEST_BYTES)  # type: ignore[assignment]  # duck-typed stream

    def handle_one_request(self) -> None:
        """One request per connection (HTTP/1.0): parse, then answer by our rules."""
        self.close_connection = True
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_BYTES)
        except http.client.LineTooLong:
            self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
            self._send_json(431, "RequestTooLarge", "the request is too large")
            return
        except OSError:  # timeout or reset: nothing to answer
            return
        if not self.raw_requestline or not self.parse_request():
            return
        try:
            self._answer()
        except OSError:
            return

    def _answer(self) -> None:
        if self.command != "GET":
            self._send_json(405, "MethodNotAllowed", "only GET is supported", allow=True)
            return
        supplied = self.headers.get_all("Authorization") or []
        if not supplied:
            self._send_json(401, "Unauthorized", "the Authorization header is missing")
            return
        given = supplied[0].strip().encode("latin-1", "replace")
        matches = hmac.compare_digest(given, self.server.expected)
        if len(supplied) != 1 or not matches:
            self._send_json(403, "Forbidden", "the Authorization header is wrong")
            return
        if self.path.split("?", 1)[0] != self.server.path:
            self._send_json(404, "NotFound", f"credentials are served at {self.server.path}")
            return
        try:
            document = dict(self.server.credentials())
        except CredentialsUnavailable as exc:
            self._send_json(500, "CredentialsUnavailable", " ".join(str(exc).split()))
            return
        except Exception as exc:  # its text may quote a request: send the type only
            logger.debug("endpoint: credentials failed with %s", type(exc).__name__)
            self._send_json(500, "CredentialsUnavailable", f"unexpected {type(exc).__name__}")
            return
        self._send(200, json.dumps(document).encode("utf-8") + b"\n")

    def _send_json(self, status: int, code: str, message: str, *, allow: bool = False) -> None:
        body = json.dumps({"code": code, "message": message}).encode("utf-8") + b"\n"
        self._send(status, body, allow=allow)

    def _send(self, status: int, body: bytes, *, allow: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", "GET")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = (getattr(self, "path", "") or "").split("?", 1)[0]
        logger.debug("endpoint: %s %s -> %s", getattr(self, "command", ""), path, code)

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug("endpoint: bad request")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("endpoint: request handled")

"""The HTTP front of the STS emulator: route, answer or forward to moto, or drop.

The front is a ``ThreadingHTTPServer`` bound to 127.0.0.1. It speaks just enough of the AWS
query protocol to recognise AssumeRoleWithWebIdentity (form body or query string) and hands
those requests to the emulator; every other request (GetCallerIdentity, S3, ...) is checked
for an expired emulator-issued access key and otherwise forwarded verbatim to the moto server
behind it with ``http.client``. Each connection serves one request (``Connection: close``),
so no handler thread outlives its request and ``stop()`` can join them all.

The front can also *drop* a request: read it fully, then close the connection without a
byte of response, which botocore reports as a connection error.

Security: request lines and bodies are never logged (a GET AssumeRoleWithWebIdentity carries
the token in its query string); the debug log shows the method and the path without query.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Protocol, Tuple, cast
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

logger = logging.getLogger(__name__)

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
_BACKEND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Reply:
    """An answer to send, or ``drop=True`` to close the connection without one."""

    status: int = 200
    body: bytes = b""
    headers: Tuple[Tuple[str, str], ...] = ()
    drop: bool = False


class FrontApp(Protocol):
    """What the front needs from the emulator. Called from many threads at once."""

    def handle_web_identity(self, params: Mapping[str, Sequence[str]]) -> Reply:
        """Answer one AssumeRoleWithWebIdentity request."""

    def check_signed(self, access_key_id: str, *, json_protocol: bool) -> Optional[Reply]:
        """Record a signed request; return a reply to refuse it, ``None`` to forward it."""


def request_id() -> str:
    """A fresh request id in the shape AWS uses."""
    return str(uuid.uuid4())


def xml_reply(status: int, body: str, rid: str) -> Reply:
    """A ``text/xml`` reply carrying ``x-amzn-RequestId``."""
    return Reply(
        status=status,
        body=body.encode("utf-8"),
        headers=(("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)),
    )


def sts_error(code: str, message: str, status: int = 400) -> Reply:
    """The query-protocol error document botocore parses into ``ClientError``."""
    rid = request_id()
    kind = "Sender" if status < 500 else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}">'
        f"<Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{rid}</RequestId></ErrorResponse>"
    )
    return xml_reply(status, body, rid)


def json_error(code: str, message: str, status: int = 400) -> Reply:
    """The JSON-protocol error document (``X-Amz-Target`` services)."""
    rid = request_id()
    body = json.dumps({"__type": code, "message": message})
    return Reply(
        status=status,
        body=body.encode("utf-8"),
        headers=(("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", rid)),
    )


def forward(
    address: Tuple[str, int],
    method: str,
    target: str,
    headers: Sequence[Tuple[str, str]],
    body: bytes,
) -> Reply:
    """Send one request to the moto server and return its answer, fully read."""
    connection = http.client.HTTPConnection(
        address[0], address[1], timeout=_BACKEND_TIMEOUT_SECONDS
    )
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        has_host = False
        for name, value in headers:
            if name.lower() in _HOP_BY_HOP:
                continue
            has_host = has_host or name.lower() == "host"
            connection.putheader(name, value)
        if not has_host:
            connection.putheader("Host", f"{address[0]}:{address[1]}")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        kept = tuple(
            (name, value)
            for name, value in response.getheaders()
            if (name.lower() not in _HOP_BY_HOP or _is_head_length(method, name))
            and name.lower() not in ("server", "date")
        )
        return Reply(status=response.status, body=data, headers=kept)
    finally:
        connection.close()


def _is_head_length(method: str, header: str) -> bool:
    """A HEAD answer has no body, so its Content-Length is the object's size, not the body's:
    pass it on (s3fs and pandas size an S3 object by HEAD before reading it)."""
    return method == "HEAD" and header.lower() == "content-length"


class FrontServer(ThreadingHTTPServer):
    """The front's listening server; handler threads are joined by ``server_close()``."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, app: FrontApp, backend: Tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app
        self.backend = backend

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server_address[1])

    def handle_error(self, request: object, client_address: object) -> None:
        # The default prints a traceback to stderr, e.g. when a client hangs up mid-answer.
        logger.debug("sts emulator: connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that "Expect: 100-continue" (botocore sends it for S3 uploads) is answered
    # at once instead of after botocore's one-second wait; every reply still closes.
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        # The default writes the request line to stderr; it may carry a token.
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.close_connection = True
        server = cast(FrontServer, self.server)
        split = urlsplit(self.path)
        try:
            body = self._read_body()
            reply = self._route(server, split.query, body)
        except Exception:
            logger.exception("sts emulator: %s %s failed", self.command, split.path)
            reply = sts_error("InternalFailure", "The emulator failed to handle the request.", 500)
        logger.debug(
            "sts emulator: %s %s -> %s",
            self.command,
            split.path,
            "dropped" if reply.drop else reply.status,
        )
        if reply.drop:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(reply)

    def _route(self, server: FrontServer, query: str, body: bytes) -> Reply:
        params: Dict[str, List[str]] = {}
        if self.command in ("GET", "POST"):
            params = parse_qs(query, keep_blank_values=True)
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("application/x-www-form-urlencoded") and body:
                for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                    params.setdefault(key, []).extend(values)
        if params.get("Action", [""])[0] == "AssumeRoleWithWebIdentity":
            return server.app.handle_web_identity(params)
        access_key_id = self._access_key_id(params)
        if access_key_id is not None:
            refusal = server.app.check_signed(
                access_key_id, json_protocol="X-Amz-Target" in self.headers
            )
            if refusal is not None:
                return refusal
        return forward(server.backend, self.command, self.path, list(self.headers.items()), body)

    def _access_key_id(self, params: Mapping[str, Sequence[str]]) -> Optional[str]:
        match = _CREDENTIAL.search(self.headers.get("Authorization", ""))
        if match:
            return match.group(1)
        credential = params.get("X-Amz-Credential")
        if credential:
            return credential[0].split("/", 1)[0] or None
        return None

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: List[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in reply.headers):
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

"""The emulator's checks as WSGI middleware in front of moto, on moto's own werkzeug server.

moto's server is a WSGI application (``DomainDispatcherApplication``) that werkzeug serves.
:func:`start_server` serves :class:`StsMiddleware` wrapped around that application on
127.0.0.1, threaded, exactly as moto's ``ThreadedMotoServer`` does but with our layer in the
call chain, so one server and one port answer everything:

- ``/.well-known/...`` and ``/_emulator/...`` (the issuer's discovery document and JWKS, the
  admin endpoint) are answered by the emulator (:meth:`EmulatorApp.handle_local`);
- AssumeRoleWithWebIdentity (form body or query string) is answered by the emulator;
- a request signed with an access key the emulator issued and has declared expired is
  refused by the emulator;
- everything else goes to moto unchanged. werkzeug has already de-chunked the body; the
  middleware buffers only ``application/x-www-form-urlencoded`` bodies (AWS query protocol,
  small) to read their ``Action`` and hands moto the same bytes.

A *drop* shuts the socket down after the request was read and raises ``ConnectionAbortedError``,
which werkzeug treats as a connection closed by the client: no answer is written.

Security: request lines, query strings and bodies are never logged (a GET
AssumeRoleWithWebIdentity carries the token in its query string); werkzeug's access log is
switched off and the debug log shows the method and path only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple
from urllib.parse import parse_qs

from webid_provider.testing._wire import Reply, sts_error

__all__ = ["EmulatorApp", "StsMiddleware", "moto_application", "start_server"]

logger = logging.getLogger(__name__)

WsgiApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
_FORM = "application/x-www-form-urlencoded"
_LOCAL_PREFIXES = ("/.well-known/", "/_emulator/")
# A query-protocol body is a few kilobytes at most (token <= 20000 characters).
_MAX_FORM_BYTES = 1 << 20


class EmulatorApp(Protocol):
    """What the middleware needs from the emulator. Called from many threads at once."""

    def handle_web_identity(self, params: Mapping[str, Sequence[str]]) -> Reply:
        """Answer one AssumeRoleWithWebIdentity request."""

    def check_signed(self, access_key_id: str, *, json_protocol: bool) -> Optional[Reply]:
        """Record a signed request; return a reply to refuse it, ``None`` to pass it to moto."""

    def handle_local(
        self, method: str, path: str, params: Mapping[str, Sequence[str]]
    ) -> Optional[Reply]:
        """Answer a discovery or admin request; ``None`` when the path is unknown."""


class StsMiddleware:
    """WSGI middleware: the emulator's routes and checks, then moto."""

    def __init__(self, emulator: EmulatorApp, moto_app: WsgiApp) -> None:
        self._emulator = emulator
        self._moto = moto_app

    def __call__(
        self, environ: Dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        try:
            reply = self._route(environ, method, path)
        except Exception:
            logger.exception("sts emulator: %s %s failed", method, path)
            reply = sts_error("InternalFailure", "The emulator failed to handle the request.", 500)
        if reply is None:
            return self._moto(environ, _logging_start_response(start_response, method, path))
        logger.debug(
            "sts emulator: %s %s -> %s", method, path, "dropped" if reply.drop else reply.status
        )
        if reply.drop:
            _drop(environ)
        headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
        start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers)
        return [] if method == "HEAD" else [reply.body]

    def _route(self, environ: Dict[str, Any], method: str, path: str) -> Optional[Reply]:
        params = _params(environ)
        if path.startswith(_LOCAL_PREFIXES):
            return self._emulator.handle_local(method, path, params)
        if params.get("Action", [""])[0] == "AssumeRoleWithWebIdentity":
            return self._emulator.handle_web_identity(params)
        access_key_id = _access_key_id(environ, params)
        if access_key_id is None:
            return None
        return self._emulator.check_signed(
            access_key_id, json_protocol="HTTP_X_AMZ_TARGET" in environ
        )


def _params(environ: Dict[str, Any]) -> Dict[str, List[str]]:
    """Query string and form body members; the form body is put back for moto to read."""
    params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not environ.get("CONTENT_TYPE", "").startswith(_FORM):
        return params
    from werkzeug.wsgi import get_input_stream

    body = get_input_stream(environ, max_content_length=_MAX_FORM_BYTES).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input_terminated"] = False
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    for key, values in form.items():
        params.setdefault(key, []).extend(values)
    return params


def _access_key_id(
    environ: Mapping[str, Any], params: Mapping[str, Sequence[str]]
) -> Optional[str]:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    credential = params.get("X-Amz-Credential")
    if credential:
        return credential[0].split("/", 1)[0] or None
    return None


def _drop(environ: Mapping[str, Any]) -> None:
    """Close the connection without an answer (werkzeug reads this as a client hang-up)."""
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("dropped by the STS emulator")


def _logging_start_response(
    start_response: Callable[..., Any], method: str, path: str
) -> Callable[..., Any]:
    def logged(status: str, headers: List[Tuple[str, str]], *args: Any) -> Any:
        logger.debug("sts emulator: %s %s -> %s (moto)", method, path, status.split(" ", 1)[0])
        return start_response(status, headers, *args)

    return logged


def moto_application() -> WsgiApp:
    """moto's WSGI application: every service, dispatched by host, signature or action."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    return app


def start_server(app: WsgiApp, port: int = 0) -> Tuple[Any, threading.Thread]:
    """Serve ``app`` on 127.0.0.1:``port`` (0: chosen by the OS) in a daemon thread.

    :returns: the werkzeug server (``server_address``, ``shutdown()``, ``server_close()``) and
        its serving thread
    :raises OSError: when the port cannot be bound
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    class QuietRequestHandler(MotoRequestHandler):
        # werkzeug logs every request line (which may carry a token) and prints tracebacks.
        def log_request(self, code: object = "-", size: object = "-") -> None:
            return

        def log(self, type: str, message: str, *args: Any) -> None:
            logger.debug("sts emulator: werkzeug %s message suppressed", type)

    # Bind here: werkzeug prints to stderr and calls sys.exit(1) when it cannot bind itself.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        # werkzeug duplicates the descriptor (socket.fromfd); ours closes on leaving.
        server = make_server(
            "127.0.0.1",
            port,
            app,
            threaded=True,
            request_handler=QuietRequestHandler,
            fd=listener.fileno(),
        )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="webid-sts-emulator",
        daemon=True,
    )
    try:
        thread.start()
    except BaseException:
        server.server_close()
        raise
    return server, thread

"""The answers the STS emulator sends: STS's XML documents, AWS JSON errors, and drops.

STS speaks the AWS query protocol: a ``text/xml`` document per answer, errors as an
``ErrorResponse`` whose ``Type`` is ``Sender`` below HTTP 500 and ``Receiver`` otherwise, and
the request id in both the document and ``x-amzn-RequestId``. Services that use the JSON
protocol (``X-Amz-Target``) get ``{"__type": ..., "message": ...}``. A :class:`Reply` can
also be a *drop*: the connection is closed without a byte of answer, which botocore reports
as a connection error.

Security: nothing here logs; callers never put a token into a message.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Tuple
from xml.sax.saxutils import escape

__all__ = [
    "STS_NAMESPACE",
    "Reply",
    "json_error",
    "json_reply",
    "request_id",
    "sts_error",
    "xml_reply",
]

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass(frozen=True)
class Reply:
    """An answer to send, or ``drop=True`` to close the connection without one."""

    status: int = 200
    body: bytes = b""
    headers: Tuple[Tuple[str, str], ...] = ()
    drop: bool = False


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


def json_reply(document: object, status: int = 200) -> Reply:
    """A plain ``application/json`` answer (discovery document, JWKS, admin endpoint)."""
    body = json.dumps(document, indent=2, sort_keys=True) + "\n"
    return Reply(
        status=status,
        body=body.encode("utf-8"),
        headers=(("Content-Type", "application/json"),),
    )

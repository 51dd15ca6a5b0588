"""The emulator's own HTTP routes: the issuer's discovery document and JWKS, and an admin API.

Tests written in Go, Java, JavaScript or shell drive the emulator over HTTP on the same port
as STS (``webid-provider emulator`` prints it). Parameters come as a form body or a query
string; answers are JSON; a bad parameter answers 400 with ``{"error": "..."}``.

=====  =================================  ===================================================
GET    /.well-known/openid-configuration  the issuer's OIDC discovery document
GET    /.well-known/jwks.json             the issuer's public keys
POST   /_emulator/token                   mint a token: ``sub``, ``aud``, ``ttl`` (seconds)
POST   /_emulator/fail_next               ``code``, ``message``, ``status``, ``count``
POST   /_emulator/drop_next               ``count``
POST   /_emulator/outage                  ``seconds``, ``code``, ``status``, ``mode``, ``message``
POST   /_emulator/settings                ``lifetime_seconds`` (``none``: off), ``latency_seconds``
POST   /_emulator/reset                   forget calls and faults, restore the start settings
GET    /_emulator/calls                   every AssumeRoleWithWebIdentity call, oldest first
=====  =================================  ===================================================

The fault routes take the arguments of the Python methods of the same name
(:meth:`StsEmulator.fail_next`, ...), with their defaults.

Security: loopback only, like the rest of the emulator; call records carry the token's
SHA-256, never the token. ``/_emulator/token`` hands out test tokens signed by the emulator's
throw-away keys, nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from webid_provider.testing._records import StsCall
from webid_provider.testing._wire import Reply, json_reply

if TYPE_CHECKING:
    from webid_provider.testing.emulator import StsEmulator

__all__ = ["JWKS_PATH", "handle"]

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"

_Params = Mapping[str, Sequence[str]]


class _BadParameter(ValueError):
    pass


def handle(emulator: StsEmulator, method: str, path: str, params: _Params) -> Optional[Reply]:
    """Answer one request to a route above; ``None`` for a path that is not one of them."""
    route = _GET.get(path) if method in ("GET", "HEAD") else _POST.get(path)
    if route is None:
        if path in _GET or path in _POST:
            return json_reply({"error": f"{method} is not allowed on {path}"}, 405)
        return json_reply({"error": f"unknown path {path}"}, 404) if _is_ours(path) else None
    try:
        return json_reply(route(emulator, params))
    except _BadParameter as exc:
        return json_reply({"error": str(exc)}, 400)


def _is_ours(path: str) -> bool:
    return path.startswith("/_emulator/") or path in (DISCOVERY_PATH, JWKS_PATH)


# -- parameters -------------------------------------------------------------------------


def _text(params: _Params, name: str, default: Optional[str] = None) -> Optional[str]:
    values = params.get(name)
    return values[0] if values else default


def _number(params: _Params, name: str, default: Any, kind: Callable[[str], Any]) -> Any:
    text = _text(params, name)
    if text is None:
        return default
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise _BadParameter(f"{name} must be {noun}, not {text!r}") from None


def _required(params: _Params, name: str) -> str:
    text = _text(params, name)
    if not text:
        raise _BadParameter(f"{name} is required")
    return text


# -- routes -----------------------------------------------------------------------------


def _discovery(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    document = emulator.issuer.openid_configuration()
    document["jwks_uri"] = emulator.endpoint_url + JWKS_PATH
    return document


def _jwks(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    return dict(emulator.issuer.jwks())


def _token(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    sub = _text(params, "sub", "system:serviceaccount:default:app") or ""
    aud = params.get("aud") or ["sts.amazonaws.com"]
    ttl = _number(params, "ttl", 3600, int)
    return {"token": emulator.issuer.mint(sub=sub, aud=aud[0] if len(aud) == 1 else aud, ttl=ttl)}


def _fail_next(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    emulator.fail_next(
        _required(params, "code"),
        _text(params, "message"),
        status=_number(params, "status", 400, int),
        count=_number(params, "count", 1, int),
    )
    return {"ok": True}


def _drop_next(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    emulator.drop_next(_number(params, "count", 1, int))
    return {"ok": True}


def _outage(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    seconds = _number(params, "seconds", None, float)
    if seconds is None:
        raise _BadParameter("seconds is required")
    try:
        emulator.outage(
            seconds,
            code=_text(params, "code", "ServiceUnavailable") or "ServiceUnavailable",
            status=_number(params, "status", 503, int),
            mode=_text(params, "mode", "error") or "error",
            message=_text(params, "message"),
        )
    except ValueError as exc:
        raise _BadParameter(str(exc)) from None
    return {"ok": True}


def _settings(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    try:
        if "lifetime_seconds" in params:
            cleared = _text(params, "lifetime_seconds") in (None, "", "none")
            lifetime = None if cleared else _number(params, "lifetime_seconds", 0, int)
            emulator.lifetime_seconds = lifetime
        if "latency_seconds" in params:
            emulator.latency_seconds = _number(params, "latency_seconds", 0.0, float)
    except ValueError as exc:
        raise _BadParameter(str(exc)) from None
    return {
        "lifetime_seconds": emulator.lifetime_seconds,
        "latency_seconds": emulator.latency_seconds,
    }


def _reset(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    emulator.reset()
    return {"ok": True}


def _calls(emulator: StsEmulator, params: _Params) -> Dict[str, Any]:
    return {"calls": [_call_document(call) for call in emulator.calls]}


def _call_document(call: StsCall) -> Dict[str, Any]:
    document: Dict[str, Any] = dataclasses.asdict(call)
    for name in ("at", "expiration"):
        stamp = document[name]
        document[name] = stamp.isoformat() if stamp is not None else None
    document["policy_arns"] = list(call.policy_arns)
    return document


_Route = Callable[["StsEmulator", _Params], Dict[str, Any]]
_GET: Dict[str, _Route] = {
    DISCOVERY_PATH: _discovery,
    JWKS_PATH: _jwks,
    "/_emulator/calls": _calls,
}
_POST: Dict[str, _Route] = {
    "/_emulator/token": _token,
    "/_emulator/fail_next": _fail_next,
    "/_emulator/drop_next": _drop_next,
    "/_emulator/outage": _outage,
    "/_emulator/settings": _settings,
    "/_emulator/reset": _reset,
}

"""``webid-provider inspect``: what the provider would do now, and why, without calling STS.

It resolves the settings as the provider does and shows each value with its origin
(argument, environment variable, profile key), reads the token once to show its source, type
and claims (issuer, subject, audience, issued-at, expiry and time left), computes the cache key
and shows the cache entry's state (expiration, when a new process would refresh it per
:class:`~webid_provider._policy.RefreshPolicy`, when it stops being used), and says what the next
credential request would do: serve from the cache, call STS (and why), or fail (and why).

Exit status: 0 when the next request can succeed as far as can be told locally; 2 when it
cannot (the token cannot be read, has expired with no fresh cache entry, or conflicts with
``--provider-id``); 2 for invalid settings, as for every command.

Security: the token is read (a token command is run) but never printed, nor any part of it;
claims are shown because they identify the workload, not authenticate it. Cached credentials
are never printed: only their expiration and the assumed-role ARN.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Optional

from webid_provider._cache import CacheEntry, CredentialCache
from webid_provider._cli._common import (
    add_web_identity_options,
    resolve_settings,
)
from webid_provider._clock import utc_now
from webid_provider._errors import ConfigurationError, TokenSourceError
from webid_provider._margin import STS_DEFAULT_DURATION_SECONDS
from webid_provider._policy import RefreshPolicy
from webid_provider._provider import WebIdentityProvider
from webid_provider._settings import WebIdentitySettings
from webid_provider._sts_client import create_sts_client
from webid_provider._tokens import TokenClaims, peek_claims


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "inspect",
        parents=parents,
        help="show resolved settings, token claims and cache state (no STS call)",
        description=(
            "Show the resolved settings and where each came from, the token's source and "
            "claims (never the token), the cache entry's state and what the next credential "
            "request would do. Makes no STS call. Exits 2 when that request would fail."
        ),
    )
    add_web_identity_options(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def human_seconds(seconds: float) -> str:
    """``3h 2m``, ``4m 5s``, ``12s``."""
    total = int(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _relative(when: datetime, now: datetime) -> str:
    delta = (when - now).total_seconds()
    return f"in {human_seconds(delta)}" if delta >= 0 else f"{human_seconds(delta)} ago"


def _stamp(when: Optional[datetime]) -> Optional[str]:
    return None if when is None else when.isoformat()


def _with_relative(stamp: Optional[str], now: datetime) -> str:
    if not stamp:
        return "-"
    return f"{stamp} ({_relative(datetime.fromisoformat(stamp), now)})"


def entry_state(entry: CacheEntry, now: datetime, policy: RefreshPolicy) -> str:
    """``fresh``, ``refresh due``, ``unusable`` or ``expired``: the refresher's own judgement
    (:meth:`~webid_provider._policy.RefreshPolicy.phase`, with the entry's stored refresh time)."""
    return policy.phase(entry.result, entry.refresh_at, now).value


def entry_schedule(entry: CacheEntry, now: datetime, policy: RefreshPolicy) -> dict[str, Any]:
    """When the entry was obtained, is refreshed, stops being used, expires."""
    result = entry.result
    refresh_at = entry.refresh_at or result.expiration - timedelta(
        seconds=policy.advisory_seconds(result)
    )
    stop_at = result.expiration - timedelta(seconds=policy.stop_seconds(result))
    return {
        "assumed_role_arn": result.assumed_role_user.arn if result.assumed_role_user else None,
        "obtained_at": _stamp(result.obtained_at),
        "refresh_due_at": _stamp(refresh_at),
        "stop_using_at": _stamp(stop_at),
        "expiration": _stamp(result.expiration),
        "seconds_left": int(result.seconds_left(now)),
    }


def _claims_report(claims: TokenClaims, now: datetime) -> dict[str, Any]:
    seconds_left = None
    if claims.expires_at is not None:
        seconds_left = int((claims.expires_at - now).total_seconds())
    return {
        "iss": claims.issuer,
        "sub": claims.subject,
        "aud": list(claims.audience),
        "iat": _stamp(claims.issued_at),
        "exp": _stamp(claims.expires_at),
        "seconds_left": seconds_left,
    }


def build_report(
    provider: WebIdentityProvider,
    settings: WebIdentitySettings,
    session: Any,
    now: datetime,
    policy: RefreshPolicy,
) -> dict[str, Any]:
    """Everything ``inspect`` shows, as JSON-able data; ``problem`` says the next step fails."""
    origins = settings.origins
    refresher = provider.refresher(settings)
    report: dict[str, Any] = {
        "now": now.isoformat(),
        "profile": settings.profile_name,
        "settings": {},
        "problem": False,
    }

    def setting(name: str, value: Any, default_origin: str) -> None:
        report["settings"][name] = {"value": value, "origin": origins.get(name, default_origin)}

    token_report: dict[str, Any] = {
        "source": settings.token.describe(),
        "origin": origins.get("token", "argument"),
    }
    token: Optional[str] = None
    claims: Optional[TokenClaims] = None
    failure: Optional[str] = None
    try:
        token = refresher.token_source.read_token()
    except TokenSourceError as exc:
        failure = f"cannot read the token: {exc}"
        token_report["error"] = str(exc)
    if token is not None:
        claims = peek_claims(token)
        token_report["type"] = "OAuth 2.0 access token (opaque)" if claims is None else "JWT"
        token_report["length"] = len(token)
        if claims is not None:
            token_report["claims"] = _claims_report(claims, now)
    key = session_name = None
    if token is not None:
        try:
            material = refresher.key_material(token)
        except ConfigurationError as exc:
            failure = str(exc)
        else:
            key, session_name = material.key(), material.role_session_name

    setting("role_arn", settings.role_arn, "argument")
    setting("role_session_name", session_name or settings.role_session_name, "derived from token")
    setting(
        "duration_seconds",
        settings.duration_seconds,
        f"not set: STS default {STS_DEFAULT_DURATION_SECONDS}",
    )
    setting("policy", settings.policy, "not set")
    setting("policy_arns", list(settings.policy_arns), "not set")
    setting("provider_id", settings.provider_id, "not set")
    report["token"] = token_report
    report["sts_endpoint"] = _endpoint(session)
    cache = _cache_report(settings, key, now, policy)
    report["cache"] = cache

    token_expired = (
        claims is not None and claims.expires_at is not None and claims.expires_at <= now
    )
    if failure is not None:
        report["next"] = failure
        report["problem"] = True
    elif cache["state"] == "fresh":
        report["next"] = "served from cache (no STS call)"
        if token_expired:
            report["next"] += "; the token has expired, so the next refresh fails unless it rotates"
    else:
        report["next"] = f"STS call needed: {cache['reason']}"
        if token_expired and claims is not None and claims.expires_at is not None:
            report["next"] += (
                f"; but the token expired at {claims.expires_at.isoformat()}"
                " \u2014 STS will reject it"
            )
            report["problem"] = True
    return report


def _endpoint(session: Any) -> str:
    try:
        client = create_sts_client(session)
    except Exception as exc:  # the report goes on; the real request would fail the same way
        return f"unknown ({type(exc).__name__})"
    region = client.meta.region_name
    if region is None or region == "aws-global":  # botocore's name for "no region: global"
        return f"{client.meta.endpoint_url} (no region set)"
    return f"{client.meta.endpoint_url} (region {region})"


def _cache_report(
    settings: WebIdentitySettings, key: Optional[str], now: datetime, policy: RefreshPolicy
) -> dict[str, Any]:
    directory = settings.cache_dir
    report: dict[str, Any] = {
        "directory": str(directory) if directory is not None else None,
        "origin": settings.origins.get("cache_dir", "default"),
        "key": key,
    }
    if directory is None:
        report.update(state="disabled", reason="the disk cache is disabled (memory only)")
        return report
    if key is None:
        report.update(state="unknown", reason="the cache key needs the token")
        return report
    cache = CredentialCache(directory)
    path = cache.entry_path(key)
    report["entry"] = str(path)
    if not directory.is_dir() or not (path.exists() or path.is_symlink()):
        report.update(state="missing", reason="no cache entry")
        return report
    entry = cache.read(key, now=now)
    if entry is None:
        parsed = cache.entry(key)
        if parsed is None:
            report.update(state="unreadable", reason="the cache entry is unreadable")
            return report
        entry = parsed
    state = entry_state(entry, now, policy)
    report.update(entry_schedule(entry, now, policy))
    report["state"] = state
    if state == "expired":
        report["reason"] = f"the cache entry expired at {entry.result.expiration.isoformat()}"
    elif state == "refresh due":
        report["reason"] = "the cache entry is past its refresh time"
    elif state == "unusable":
        report["reason"] = "the cache entry is too close to its expiration to be used"
    return report


def format_text(report: dict[str, Any]) -> str:
    """The report as aligned ``label  value  (origin)`` lines."""
    now = datetime.fromisoformat(report["now"])
    rows: list[tuple[str, str]] = [("profile", report["profile"] or "-")]
    for name, item in report["settings"].items():
        value = item["value"]
        shown = ", ".join(value) if isinstance(value, list) else value
        rows.append((name, f"{shown if shown not in (None, '') else '-'}  ({item['origin']})"))
    token = report["token"]
    rows.append(("token source", f"{token['source']}  ({token['origin']})"))
    if "error" in token:
        rows.append(("token", f"unreadable: {token['error']}"))
    else:
        rows.append(("token", f"{token['type']}, {token['length']} characters"))
        for claim, value in token.get("claims", {}).items():
            if claim in ("iat", "exp"):
                rows.append((f"  {claim}", _with_relative(value, now)))
            elif claim != "seconds_left":
                shown = ", ".join(value) if isinstance(value, list) else value
                rows.append((f"  {claim}", shown or "-"))
    rows.append(("sts endpoint", report["sts_endpoint"]))
    cache = report["cache"]
    rows.append(("cache directory", f"{cache['directory'] or '-'}  ({cache['origin']})"))
    if cache.get("key"):
        rows.append(("cache key", cache["key"]))
    rows.append(("cache entry", cache["state"]))
    if cache.get("assumed_role_arn"):
        rows.append(("  assumed role", cache["assumed_role_arn"]))
    for field in ("obtained_at", "refresh_due_at", "stop_using_at", "expiration"):
        if cache.get(field):
            rows.append((f"  {field.replace('_', ' ')}", _with_relative(cache[field], now)))
    rows.append(("next", report["next"]))
    width = max(len(label) for label, _ in rows) + 2
    return "".join(f"{label.ljust(width)}{value}\n" for label, value in rows)


def run(args: argparse.Namespace) -> int:
    session, provider, settings = resolve_settings(args)
    report = build_report(provider, settings, session, utc_now(), RefreshPolicy())
    if args.format == "json":
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(format_text(report))
    sys.stdout.flush()
    return 2 if report["problem"] else 0

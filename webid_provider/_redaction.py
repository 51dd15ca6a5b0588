"""Keeping tokens and credentials out of other people's log records and of error excerpts.

Two jobs, one concern (README, "Logging": no token, secret key or session token is logged):

* :func:`install_secret_redaction` puts a filter on the loggers of botocore and urllib3 that
  write request and response details at DEBUG: ``botocore.endpoint`` (every prepared request,
  with its ``X-Amz-Security-Token`` header, and our STS call's body with the web identity
  token), ``botocore.auth`` (canonical requests and strings to sign, which carry the session
  token), ``botocore.parsers`` (response bodies: AssumeRoleWithWebIdentity's carries the new
  secret key and session token), ``urllib3`` (request lines, with presigned query strings).
  The filter rewrites the session tokens and secret keys this process obtained
  (:func:`remember_secrets`) wherever they appear, plus whatever follows a marker that names
  a secret (``X-Amz-Security-Token``, ``WebIdentityToken``, ``SessionToken``,
  ``SecretAccessKey``). It costs nothing unless those loggers are at DEBUG: loggers build a
  record, and so run filters, only for enabled levels.
* :func:`redact_token_shaped` removes anything shaped like a token (JWTs, long base64 or hex
  runs) from text we did not write, such as a failing token command's stderr, before it goes
  into an exception (issue 11, item 8: a ``set -x`` script echoed its JWT to stderr).

Standard library only: the botocore-free ``credential-process`` path may use it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from urllib.parse import quote

REDACTED = "<redacted>"

#: the loggers whose DEBUG records quote requests, responses or URLs
REDACTED_LOGGERS = (
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.httpsession",
    "botocore.parsers",
    "botocore.retries.standard",
    "botocore.retryhandler",
    "botocore.utils",
    "aiobotocore.endpoint",
    "aiobotocore.parsers",
    "urllib3.connectionpool",
    "urllib3.util.retry",
)

_SECRET_NAMES = r"x-amz-security-token|WebIdentityToken|SessionToken|SecretAccessKey|SecretKey"
# ``name: value``, ``'name': b'value'``, ``name=value`` (query strings, form bodies, canonical
# requests, header dict reprs, JSON): the value runs to the next quote, separator or space.
_NAMED_VALUE = re.compile(
    rf"((?:{_SECRET_NAMES})['\"]?\s*[:=]\s*b?['\"]?)[^'\"&\s,;}}<]+", re.IGNORECASE
)
_XML_VALUE = re.compile(rf"(<(?:{_SECRET_NAMES})>)[^<]+", re.IGNORECASE)
#: the names above, lower-cased: a message that holds none of them (nor a remembered value)
#: is returned without running the regular expressions
_MARKERS = tuple(_SECRET_NAMES.lower().split("|"))
_REMEMBERED_LIMIT = 64

# JWS/JWE compact serialisations: base64url segments separated by dots; a JWT header is JSON,
# so its base64url starts with "eyJ" (or "ewo" when pretty-printed).
_JWT = re.compile(
    r"(?<![A-Za-z0-9_-])(?:eyJ|ewo)[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}"
    r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{8,}"
)
_LONG_RUN = re.compile(r"[A-Za-z0-9+/_-]{32,}=*")
_HEX = re.compile(r"[0-9a-fA-F]+")


def redact_token_shaped(text: str) -> str:
    """``text`` with every token-shaped part replaced by ``<redacted>``.

    Token-shaped: a JWT (three or more base64url segments joined by dots); a run of 32 or more
    base64/base64url characters mixing upper case, lower case and digits (session tokens,
    secret keys, opaque bearer tokens); 32 or more hex digits; any such run of 64 or more
    characters holding both letters and digits. Paths, words and short identifiers survive, so
    the excerpt still says what went wrong.
    """
    text = _JWT.sub(REDACTED, text)
    return _LONG_RUN.sub(_redact_run, text)


def _redact_run(match: re.Match[str]) -> str:
    run = match.group(0)
    letters = any(c.isalpha() for c in run)
    digits = any(c.isdigit() for c in run)
    mixed_case = any(c.isupper() for c in run) and any(c.islower() for c in run)
    if (mixed_case and digits) or _HEX.fullmatch(run) or (len(run) >= 64 and letters and digits):
        return REDACTED
    return run


class _SecretRedactionFilter(logging.Filter):
    """Rewrites log records that quote a remembered secret or a named secret value.

    Never drops a record: the point is that DEBUG logging keeps working, minus the secrets.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed record is not ours to break
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True


_lock = threading.Lock()
_installed = False
# value -> None, oldest first; also holds each value's URL-encoded form
_remembered: OrderedDict[str, None] = OrderedDict()


def redact_secrets(message: str) -> str:
    """``message`` with remembered secrets and named secret values redacted."""
    with _lock:
        known = [value for value in _remembered if value in message]
    lowered = message.lower()
    if not known and not any(marker in lowered for marker in _MARKERS):
        return message
    for value in sorted(known, key=len, reverse=True):
        message = message.replace(value, REDACTED)
    message = _NAMED_VALUE.sub(rf"\1{REDACTED}", message)
    return _XML_VALUE.sub(rf"\1{REDACTED}", message)


def remember_secrets(*values: str) -> None:
    """Redact these values (session tokens, secret keys) from the loggers from now on.

    Called for every set of credentials this process obtains, from STS or from the cache.
    Keeps the most recent few dozen values; installs the filter if it is not there yet.
    """
    install_secret_redaction()
    with _lock:
        for value in values:
            if len(value) < 16:  # too short to be a secret worth matching, too common to try
                continue
            for form in (value, quote(value, safe=""), quote(value, safe="/")):
                _remembered.pop(form, None)
                _remembered[form] = None
        while len(_remembered) > _REMEMBERED_LIMIT * 3:
            _remembered.popitem(last=False)


def install_secret_redaction() -> None:
    """Attach the filter to :data:`REDACTED_LOGGERS` once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(_SecretRedactionFilter())
        _installed = True

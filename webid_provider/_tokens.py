"""Token sources, and what a token's unverified claims decide before any STS call.

A token is fetched again for every STS call and never cached: Kubernetes rotates projected
service-account tokens by swapping a ``..data`` symlink, CI tokens are minted per job, and an
IdP SDK refreshes its own. Sources:

* file: opened anew each time (following symlinks, since the kubelet swaps ``..data``),
  regular files only (a FIFO, device or directory is refused by name, never waited on),
  size-capped, whitespace stripped; a missing or empty file is retried briefly because the
  kubelet's swap and some writers leave a short window (aws-sdk-php#2164);
* string: fixed; it cannot outlive its own ``exp``;
* callable: any zero-argument function returning ``str`` or ``bytes``; the caller does not
  cache its result, so the function may return a fresh token each time;
* command: an argv run without a shell, with a timeout; stdout is the token. At most
  :data:`MAX_COMMAND_STDOUT_BYTES` of stdout is read (a command printing more is stopped at
  once) and only the last few KiB of stderr are kept, so memory stays bounded whatever the
  command prints (issue 11, item 7).

Claims are read *without verifying the signature* (STS verifies the token) by
:mod:`webid_provider._jwt`, which this module re-exports (``TokenClaims``, ``peek_claims``,
``token_identity``, ``default_session_name``); we only use claims for cache keys, default
session names, and to refuse locally what STS would refuse: a JWT past its ``exp``
(:func:`refuse_expired`) and ``provider_id`` with a JWT (:func:`refuse_provider_id_with_jwt`),
for the refresher and ``assume-role-with-web-identity`` alike. Sources are named in messages
by :func:`webid_provider._token_spec.describe_token_source`.

Security: no token, stdout or token fragment ever reaches a log line or an exception. A
command's stderr excerpt is included in errors because that is how users debug it, but a
``set -x`` script or a chatty client prints its token there too, so everything token-shaped is
redacted from the excerpt first (:func:`webid_provider._redaction.redact_token_shaped`).
"""

from __future__ import annotations

import errno
import time
from datetime import datetime, timedelta
from typing import Optional, Protocol

from webid_provider._errors import ConfigurationError, TokenSourceError
from webid_provider._files import UnsafeFileError, read_private_file
from webid_provider._jwt import MAX_TOKEN_CHARS, MAX_TOKEN_FILE_BYTES, MIN_TOKEN_CHARS

# Re-exported: callers import these from here (the ``as`` form marks them as re-exports).
from webid_provider._jwt import TokenClaims as TokenClaims
from webid_provider._jwt import default_session_name as default_session_name
from webid_provider._jwt import peek_claims as peek_claims
from webid_provider._jwt import token_identity as token_identity
from webid_provider._token_spec import TokenSpec, describe_token_source

DEFAULT_COMMAND_TIMEOUT_SECONDS = 30.0
_FILE_RETRY_DELAYS_SECONDS = (0.05, 0.1)
#: a token is at most 20000 characters; the rest of the cap leaves room for whitespace
MAX_COMMAND_STDOUT_BYTES = 64 * 1024
_STDERR_EXCERPT_CHARS = 300
_STDERR_KEPT_BYTES = 4096
#: errors from starting a command that say "try again later", not "fix the command"
_TRANSIENT_START_ERRNOS = frozenset({errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE})


class TokenSource(Protocol):
    """Supplies a web identity token on demand.

    Contract: ``read_token`` is called once per STS call and its result is never cached by
    the caller. It returns a stripped token within STS's length limits, or raises
    :class:`~webid_provider._errors.TokenSourceError`; it raises nothing else. Implementations
    are called from whichever thread refreshes, one call at a time per credentials object.
    """

    @property
    def description(self) -> str:
        """Where the token comes from, safe to show (never the token)."""

    def read_token(self) -> str:
        """Return the current token."""


class FileTokenSource:
    """Reads the token file anew on every call."""

    def __init__(self, path: object) -> None:
        self.path = str(path)

    @property
    def description(self) -> str:
        return describe_token_source("file", file=self.path)

    def read_token(self) -> str:
        for delay in (*_FILE_RETRY_DELAYS_SECONDS, None):
            try:
                # The kubelet's files are root's: no owner check; symlinks are its ..data swap.
                data = read_private_file(
                    self.path,
                    max_bytes=MAX_TOKEN_FILE_BYTES,
                    require_owner=False,
                    follow_symlinks=True,
                )
            except FileNotFoundError as exc:
                if delay is not None:
                    time.sleep(delay)
                    continue
                raise TokenSourceError(
                    f"token file {self.path} does not exist", path=self.path
                ) from exc
            except UnsafeFileError as exc:
                raise TokenSourceError(
                    f"token file {exc}; a token file is a regular file of at most "
                    f"{MAX_TOKEN_FILE_BYTES} bytes, it is not a web identity token",
                    path=self.path,
                ) from exc
            except OSError as exc:
                raise TokenSourceError(
                    f"token file {self.path} cannot be read: {exc.strerror or exc}",
                    path=self.path,
                ) from exc
            except ValueError as exc:  # a NUL byte in the path
                raise TokenSourceError(
                    f"token file {self.path!r} is not a valid path", path=self.path
                ) from exc
            if not data.strip() and delay is not None:
                time.sleep(delay)
                continue
            return check_token(
                _decode(data, self.description, path=self.path), self.description, path=self.path
            )
        raise AssertionError("unreachable")  # pragma: no cover


class StringTokenSource:
    """A fixed token: fine for one exchange, useless after the token's own expiry."""

    def __init__(self, token: str) -> None:
        self._token = token

    @property
    def description(self) -> str:
        return describe_token_source("string")

    def read_token(self) -> str:
        return check_token(self._token, self.description)

    def __repr__(self) -> str:
        return "StringTokenSource(<redacted>)"


class CallableTokenSource:
    """Calls a user function each time; its errors become :class:`TokenSourceError`."""

    def __init__(self, function: object, description: Optional[str] = None) -> None:
        self._function = function
        self._description = description or describe_token_source("callable", function=function)

    @property
    def description(self) -> str:
        return self._description

    def read_token(self) -> str:
        try:
            value = self._function()  # type: ignore[operator]  # checked callable by settings
        except Exception as exc:
            raise TokenSourceError(f"{self._description} raised {type(exc).__name__}") from exc
        if isinstance(value, bytes):
            value = _decode(value, self._description)
        if not isinstance(value, str):
            raise TokenSourceError(
                f"{self._description} returned {type(value).__name__}, not a token string"
            )
        return check_token(value, self._description)


class CommandTokenSource:
    """Runs an argv (never through a shell) and takes its stdout as the token."""

    def __init__(
        self, argv: tuple[str, ...], *, timeout_seconds: float = DEFAULT_COMMAND_TIMEOUT_SECONDS
    ) -> None:
        self.argv = argv
        self.timeout_seconds = timeout_seconds

    @property
    def description(self) -> str:
        return describe_token_source("command", command=self.argv, with_arguments=False)

    def read_token(self) -> str:
        try:
            from webid_provider._command import run_bounded  # only command sources need it

            completed = run_bounded(
                self.argv,
                timeout_seconds=self.timeout_seconds,
                stdout_cap_bytes=MAX_COMMAND_STDOUT_BYTES,
                stderr_kept_bytes=_STDERR_KEPT_BYTES,
            )
        except FileNotFoundError as exc:
            raise TokenSourceError(f"{self.description} was not found") from exc
        except PermissionError as exc:
            raise TokenSourceError(f"{self.description} is not executable") from exc
        except OSError as exc:
            raise TokenSourceError(
                f"{self.description} could not start: {exc.strerror or exc}",
                retryable=exc.errno in _TRANSIENT_START_ERRNOS,
            ) from exc
        except ValueError as exc:  # a NUL byte in an argument
            raise TokenSourceError(f"{self.description} has an invalid argument") from exc
        if completed.stdout_overflowed:
            raise TokenSourceError(
                f"{self.description} printed more than {MAX_COMMAND_STDOUT_BYTES} bytes and was "
                f"stopped; a web identity token has at most {MAX_TOKEN_CHARS} characters",
                retryable=True,
            )
        if completed.timed_out:
            raise TokenSourceError(
                f"{self.description} did not finish within {self.timeout_seconds:g} s",
                retryable=True,
            )
        if completed.returncode != 0:
            if completed.returncode < 0:
                status = f"was killed by signal {-completed.returncode}"
            else:
                status = f"exited with status {completed.returncode}"
            raise TokenSourceError(
                f"{self.description} {status}: {completed.stderr_excerpt(_STDERR_EXCERPT_CHARS)}",
                retryable=True,
            )
        try:
            return check_token(_decode(completed.stdout, self.description), self.description)
        except TokenSourceError as exc:
            raise TokenSourceError(exc.message, retryable=True) from None


def token_source_from_spec(spec: TokenSpec) -> TokenSource:
    """Build the source a :class:`~webid_provider._settings.TokenSpec` describes."""
    if spec.kind == "file":
        return FileTokenSource(spec.file)
    if spec.kind == "command":
        return CommandTokenSource(spec.command)
    if spec.kind == "callable":
        return CallableTokenSource(spec.function)
    return StringTokenSource(spec.string or "")


def refuse_provider_id_with_jwt(
    provider_id: Optional[str],
    claims: Optional[TokenClaims],
    *,
    description: str,
    option: str = "provider_id",
) -> None:
    """STS takes ``ProviderId`` only with OAuth 2.0 access tokens: refuse it with a JWT locally.

    :param description: the token's source, as messages name it
    :param option: how the caller spells the setting (``--provider-id`` on the command line)
    :raises ConfigurationError: when ``provider_id`` is set and the token is an OIDC JWT
    """
    if provider_id is not None and claims is not None:
        raise ConfigurationError(
            f"provider_id is only for OAuth 2.0 access tokens, but the {description} holds an "
            f"OpenID Connect JWT; remove {option}",
            field="provider_id",
        )


def refuse_expired(
    claims: Optional[TokenClaims],
    now: datetime,
    *,
    description: str,
    leeway_seconds: float,
    path: Optional[str] = None,
) -> None:
    """STS refuses a JWT past its ``exp``: say so locally instead of calling it.

    :param leeway_seconds: how far past ``exp`` by ``now`` a token must be to be refused (the
        refresher keeps a host whose clock runs a few minutes fast working, as STS would)
    :raises TokenSourceError: naming the source and when the token expired
    """
    if claims is None or claims.expires_at is None:
        return
    if claims.expires_at + timedelta(seconds=leeway_seconds) <= now:
        seconds = (now - claims.expires_at).total_seconds()
        raise TokenSourceError(
            f"{description} holds a token that expired at {claims.expires_at.isoformat()} "
            f"({seconds:.0f} s ago by this host's clock); STS would refuse it",
            path=path,
        )


def check_token(token: str, description: str, *, path: Optional[str] = None) -> str:
    """Strip and check STS's length limits before anything is sent.

    :raises TokenSourceError: for an empty token or one outside 4-20000 characters
    """
    stripped = token.strip()
    if not stripped:
        raise TokenSourceError(f"{description} is empty", path=path)
    if not MIN_TOKEN_CHARS <= len(stripped) <= MAX_TOKEN_CHARS:
        raise TokenSourceError(
            f"{description} holds {len(stripped)} characters; a web identity token has "
            f"{MIN_TOKEN_CHARS}-{MAX_TOKEN_CHARS}",
            path=path,
        )
    return stripped


def _decode(data: bytes, description: str, *, path: Optional[str] = None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenSourceError(f"{description} is not UTF-8 text", path=path) from exc

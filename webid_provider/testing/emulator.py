"""A strict STS emulator for AssumeRoleWithWebIdentity: moto behind a checking front.

moto's STS accepts any web identity token, any role ARN and durations up to 50000 seconds,
never fails, and returns none of the identity output fields (research notes, section H).
Tests of a credential provider need the opposite: real validation, real error codes,
faults on demand, short credential lifetimes and a record of every call. So
:class:`StsEmulator` runs moto's ``ThreadedMotoServer`` on a loopback port and puts an HTTP
front before it (``_front``):

- AssumeRoleWithWebIdentity requests go through injected faults (``_faults``: outage,
  dropped connections, queued errors; latency applies to every answer), then the checks real STS
  makes (``_validate``: member constraints, role maximum duration, policy JSON; ``_token``:
  signature against the :class:`~webid_provider.testing.OidcIssuer` JWKS, issuer, audience,
  expiry, registered OAuth 2.0 tokens). A valid request is forwarded to moto, so the keys
  it mints work with moto's other APIs, and the answer is rewritten with the fields moto
  leaves out or gets wrong: ``Expiration`` (optionally overridden to a short lifetime),
  ``AssumedRoleUser``, ``SubjectFromWebIdentityToken``, ``Audience``, ``Provider``,
  ``SourceIdentity`` and ``PackedPolicySize``.
- Every other request is forwarded verbatim, unless it is signed with an access key the
  emulator issued and whose emulated ``Expiration`` has passed: that one is refused with
  ``ExpiredToken`` as AWS would, and counted.

Everything binds 127.0.0.1. ``moto`` is imported in :meth:`StsEmulator.start`, never at
import time, because the pytest plugin imports this package in every environment.

Security: the web identity token is never logged, stored or sent to moto (moto receives a
placeholder); call records keep its SHA-256 hex only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type

from webid_provider.testing._answers import mint_with_moto, render_success
from webid_provider.testing._faults import Fault, FaultPlan
from webid_provider.testing._records import DROPPED, SignedRequest, StsCall, call_record
from webid_provider.testing._server import StsMiddleware, moto_application, start_server
from webid_provider.testing._token import Identity, OpaqueToken, verify_token
from webid_provider.testing._validate import (
    DEFAULT_MAX_SESSION_DURATION,
    StsFault,
    WebIdentityRequest,
    check_parameters,
    packed_policy_size,
    parse_request,
)
from webid_provider.testing._wire import Reply, json_error, request_id, sts_error, xml_reply

if TYPE_CHECKING:
    from webid_provider.testing.issuer import OidcIssuer

__all__ = ["SignedRequest", "StsCall", "StsEmulator"]

logger = logging.getLogger(__name__)

_DEFAULT_DURATION_SECONDS = 3600


class StsEmulator:
    """moto's STS behind a strict front on 127.0.0.1; start it, then point
    ``AWS_ENDPOINT_URL_STS`` at :attr:`endpoint_url`.

    All methods and properties are thread-safe; one lock guards the state.

    :param issuer: the only identity provider the emulated account trusts
    :param lifetime_seconds: when set, every ``Expiration`` is now + this (may be < 900)
    :param latency_seconds: delay before answering each AssumeRoleWithWebIdentity call
    :param audiences: the client IDs registered for the provider (accepted ``aud`` values)
    """

    #: The message of the one transient ``InvalidIdentityToken`` (STS could not fetch the
    #: JWKS); pass it to :meth:`fail_next` to test retries.
    VERIFICATION_KEY_MESSAGE = (
        "Couldn't retrieve verification key from your identity provider,  please reference "
        "AssumeRoleWithWebIdentity documentation for requirements"
    )

    def __init__(
        self,
        issuer: OidcIssuer,
        lifetime_seconds: Optional[int] = None,
        latency_seconds: float = 0.0,
        audiences: Sequence[str] = ("sts.amazonaws.com",),
    ) -> None:
        self._issuer = issuer
        self._initial = (lifetime_seconds, latency_seconds, tuple(audiences))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._lifetime_seconds = lifetime_seconds
        self._latency_seconds = latency_seconds
        self._audiences: Tuple[str, ...] = tuple(audiences)
        self._roles: Dict[str, int] = {}
        self._opaque: Dict[str, OpaqueToken] = {}
        self._faults = FaultPlan()
        self._calls: List[StsCall] = []
        self._signed: List[SignedRequest] = []
        self._issued: Dict[str, datetime] = {}
        self._moto_app: Any = None
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> StsEmulator:
        """Start the server (moto's application behind our middleware); returns ``self``.

        :raises RuntimeError: when already started
        """
        if self._server is not None:
            raise RuntimeError("the STS emulator is already running")
        moto_app = moto_application()
        self._stopping.clear()
        self._moto_app = moto_app
        self._server, self._thread = start_server(StsMiddleware(self, moto_app))
        logger.debug("sts emulator listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop the server and its thread. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> StsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the front.

        :raises RuntimeError: before :meth:`start`
        """
        server = self._server
        if server is None:
            raise RuntimeError("the STS emulator is not running; call start() first")
        return f"http://127.0.0.1:{server.server_port}"

    @property
    def issuer(self) -> OidcIssuer:
        """The trusted identity provider."""
        return self._issuer

    # -- configuration -----------------------------------------------------------------

    @property
    def lifetime_seconds(self) -> Optional[int]:
        """When set, ``Expiration`` is now + this many seconds, whatever was requested."""
        with self._lock:
            return self._lifetime_seconds

    @lifetime_seconds.setter
    def lifetime_seconds(self, value: Optional[int]) -> None:
        if value is not None and value < 0:
            raise ValueError("lifetime_seconds must be >= 0 or None")
        with self._lock:
            self._lifetime_seconds = value

    @property
    def latency_seconds(self) -> float:
        """Delay before every AssumeRoleWithWebIdentity answer (faults included)."""
        with self._lock:
            return self._latency_seconds

    @latency_seconds.setter
    def latency_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_seconds must be >= 0")
        with self._lock:
            self._latency_seconds = value

    @property
    def audiences(self) -> Tuple[str, ...]:
        """Accepted ``aud`` values."""
        with self._lock:
            return self._audiences

    @audiences.setter
    def audiences(self, value: Sequence[str]) -> None:
        with self._lock:
            self._audiences = tuple(value)

    def add_role(self, role_arn: str, max_session_duration: int = 3600) -> None:
        """Declare a role and its MaxSessionDuration (roles not added allow 43200).

        :raises ValueError: when the maximum is outside IAM's 3600-43200 range
        """
        if not 3600 <= max_session_duration <= 43200:
            raise ValueError("max_session_duration must be between 3600 and 43200 seconds")
        with self._lock:
            self._roles[role_arn] = max_session_duration

    def allow_opaque_token(
        self,
        token: str,
        provider_id: str = "www.amazon.com",
        sub: str = "amzn1.account.X",
        aud: str = "client.123",
    ) -> None:
        """Accept the OAuth 2.0 (non-JWT) ``token`` when passed with ``ProviderId=provider_id``.

        Only the token's SHA-256 is kept.
        """
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        with self._lock:
            self._opaque[digest] = OpaqueToken(provider_id=provider_id, subject=sub, audience=aud)

    # -- faults ------------------------------------------------------------------------

    def fail_next(
        self, code: str, message: Optional[str] = None, status: int = 400, count: int = 1
    ) -> None:
        """Answer the next ``count`` AssumeRoleWithWebIdentity calls with this STS error.

        Queued after any earlier ``fail_next``. ``Type`` is ``Sender`` below 500,
        ``Receiver`` otherwise; ``message`` defaults to STS's text for well-known codes.
        """
        with self._lock:
            self._faults.fail_next(Fault.error(code, message, status), count)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection without answering the next ``count`` calls."""
        with self._lock:
            self._faults.drop_next(count)

    def outage(
        self,
        seconds: float,
        code: str = "ServiceUnavailable",
        status: int = 503,
        mode: str = "error",
        message: Optional[str] = None,
    ) -> None:
        """Fail every AssumeRoleWithWebIdentity call arriving in the next ``seconds``.

        :param mode: ``"error"`` answers ``code``/``status``; ``"drop"`` closes connections
        :raises ValueError: on an unknown mode
        """
        if mode not in ("error", "drop"):
            raise ValueError("mode must be 'error' or 'drop'")
        fault = Fault.error(code, message, status)
        if mode == "drop":
            fault = Fault(DROPPED, "", 0, drop=True)
        with self._lock:
            self._faults.outage(seconds, fault)

    def reset(self) -> None:
        """Forget calls, faults, roles and opaque tokens; restore constructor settings.

        Access keys issued earlier stay known, so their expiry is still enforced.
        """
        with self._lock:
            lifetime, latency, audiences = self._initial
            self._lifetime_seconds, self._latency_seconds = lifetime, latency
            self._audiences = audiences
            self._roles.clear()
            self._opaque.clear()
            self._faults.clear()
            self._calls.clear()
            self._signed.clear()

    # -- records -----------------------------------------------------------------------

    @property
    def calls(self) -> List[StsCall]:
        """Every AssumeRoleWithWebIdentity request answered so far, by arrival time."""
        with self._lock:
            return sorted(self._calls, key=lambda call: call.at)

    @property
    def assume_count(self) -> int:
        """``len(calls)``."""
        with self._lock:
            return len(self._calls)

    @property
    def successful_calls(self) -> List[StsCall]:
        """The calls that returned credentials."""
        return [call for call in self.calls if call.error_code is None]

    @property
    def signed_requests(self) -> List[SignedRequest]:
        """Every signed non-AssumeRoleWithWebIdentity request, forwarded or refused."""
        with self._lock:
            return list(self._signed)

    @property
    def expired_credential_uses(self) -> int:
        """Signed requests refused because their emulator-issued key had expired."""
        with self._lock:
            return sum(1 for request in self._signed if request.expired)

    # -- middleware callbacks (called from request threads) -----------------------------

    def handle_local(
        self, method: str, path: str, params: Mapping[str, Sequence[str]]
    ) -> Optional[Reply]:
        """Nothing yet: every path goes to moto."""
        return None

    def check_signed(self, access_key_id: str, *, json_protocol: bool) -> Optional[Reply]:
        """Record a signed request; refuse it when its emulator-issued key has expired."""
        now = datetime.now(timezone.utc)
        with self._lock:
            expiration = self._issued.get(access_key_id)
            expired = expiration is not None and now >= expiration
            self._signed.append(SignedRequest(access_key_id=access_key_id, at=now, expired=expired))
        if not expired:
            return None
        message = "The security token included in the request is expired"
        if json_protocol:
            return json_error("ExpiredTokenException", message)
        return sts_error("ExpiredToken", message)

    def handle_web_identity(self, params: Mapping[str, Sequence[str]]) -> Reply:
        """Fault, validate, mint through moto, rewrite; record the call either way."""
        arrived = datetime.now(timezone.utc)
        request = parse_request(params)
        with self._lock:
            fault = self._faults.take()
            latency = self._latency_seconds
            max_duration = self._roles.get(request.role_arn or "", DEFAULT_MAX_SESSION_DURATION)
            audiences = self._audiences
            opaque = dict(self._opaque)
        if latency > 0:
            self._stopping.wait(latency)
        if fault is not None:
            self._record(arrived, request, DROPPED if fault.drop else fault.code)
            if fault.drop:
                return Reply(drop=True)
            return sts_error(fault.code, fault.message, fault.status)
        try:
            check_parameters(request, max_duration)
            identity = verify_token(
                request,
                issuer=self._issuer.issuer,
                jwks=self._issuer.jwks(),
                audiences=audiences,
                opaque=opaque,
            )
            packed = packed_policy_size(request)
        except StsFault as refusal:
            self._record(arrived, request, refusal.code)
            return sts_error(refusal.code, refusal.message, refusal.status)
        return self._mint(arrived, request, identity, packed)

    # -- internals ---------------------------------------------------------------------

    def _record(
        self,
        arrived: datetime,
        request: WebIdentityRequest,
        error_code: Optional[str],
        access_key_id: Optional[str] = None,
        expiration: Optional[datetime] = None,
    ) -> None:
        call = call_record(arrived, request, error_code, access_key_id, expiration)
        with self._lock:
            self._calls.append(call)

    def _mint(
        self,
        arrived: datetime,
        request: WebIdentityRequest,
        identity: Identity,
        packed: Optional[int],
    ) -> Reply:
        assert request.role_arn is not None
        assert request.role_session_name is not None
        duration = request.duration_seconds or _DEFAULT_DURATION_SECONDS
        moto_app = self._moto_app
        if moto_app is None:
            return sts_error("ServiceUnavailable", "The emulator is stopping.", 503)
        status, keys = mint_with_moto(moto_app, request, duration)
        if keys is None:
            self._record(arrived, request, "InternalFailure")
            logger.warning("sts emulator: moto answered %s to AssumeRoleWithWebIdentity", status)
            return sts_error("InternalFailure", "moto failed to mint credentials.", 500)
        access_key_id, secret_access_key, session_token = keys
        lifetime = self.lifetime_seconds
        now = datetime.now(timezone.utc).replace(microsecond=0)
        expiration = now + timedelta(seconds=lifetime if lifetime is not None else duration)
        with self._lock:
            self._issued[access_key_id] = expiration
        self._record(arrived, request, None, access_key_id, expiration)
        rid = request_id()
        body = render_success(
            request,
            identity,
            packed,
            rid,
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
        )
        return xml_reply(200, body, rid)

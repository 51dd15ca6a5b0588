"""A strict STS emulator for AssumeRoleWithWebIdentity: moto with the checks real STS makes.

moto's STS accepts any token, any role ARN and durations up to 50000 seconds, never fails,
and returns none of the identity output fields (research notes, section H). Tests need real
validation and error codes, trust policies, faults, short lifetimes and a record of every
call. So :class:`StsEmulator` serves moto's WSGI application on a loopback port behind WSGI
middleware (``_server``), one werkzeug server for both:

- AssumeRoleWithWebIdentity goes through injected faults (``_faults``), then the checks of
  ``_admission`` (parameters, token, IAM OIDC provider, trust policy). moto mints the keys of
  a valid request, so they work with moto's other APIs, and the answer is rewritten with the
  fields moto leaves out or gets wrong (``_answers``), ``Expiration`` optionally shortened.
- Every other request goes to moto unchanged, unless it is signed with an access key the
  emulator issued and whose emulated ``Expiration`` has passed: that one is refused with
  ``ExpiredToken`` as AWS would, and counted.
- ``/.well-known/...`` serves the issuer's discovery document and JWKS, ``/_emulator/...``
  an admin API for tests in other languages (``_admin``).

Everything binds 127.0.0.1. ``moto`` is imported by :meth:`StsEmulator.start`, not at import.

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

from webid_provider.testing import _admin
from webid_provider.testing._admission import Admitted, Rules, admit
from webid_provider.testing._answers import mint_with_moto, render_success
from webid_provider.testing._faults import Fault, FaultPlan
from webid_provider.testing._iam import reset_iam
from webid_provider.testing._records import (
    DROPPED,
    CallLog,
    SignedRequest,
    StsCall,
    call_record,
)
from webid_provider.testing._server import StsMiddleware, moto_application, start_server
from webid_provider.testing._token import OpaqueToken
from webid_provider.testing._validate import StsFault, WebIdentityRequest, parse_request
from webid_provider.testing._wire import Reply, json_error, request_id, sts_error, xml_reply

if TYPE_CHECKING:
    from webid_provider.testing.issuer import OidcIssuer

__all__ = ["SignedRequest", "StsCall", "StsEmulator"]

logger = logging.getLogger(__name__)

_DEFAULT_DURATION_SECONDS = 3600


class StsEmulator:
    """moto's STS with STS's own checks on 127.0.0.1; start it, then point
    ``AWS_ENDPOINT_URL_STS`` at :attr:`endpoint_url`.

    All methods and properties are thread-safe; one lock guards the state.

    :param issuer: the only identity provider whose tokens can be verified
    :param lifetime_seconds: when set, every ``Expiration`` is now + this (may be < 900)
    :param latency_seconds: delay before answering each AssumeRoleWithWebIdentity call
    :param audiences: the accepted ``aud`` values for roles that are not in moto's IAM (for
        roles in IAM, the client IDs of the IAM OIDC provider decide)
    :param strict_roles: refuse roles that do not exist in moto's IAM with ``AccessDenied``
    :param port: the port to listen on; 0 lets the OS choose
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
        *,
        strict_roles: bool = False,
        port: int = 0,
    ) -> None:
        self._issuer = issuer
        self._strict_roles = strict_roles
        self._port = port
        self._initial = (lifetime_seconds, latency_seconds, tuple(audiences))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._lifetime_seconds = lifetime_seconds
        self._latency_seconds = latency_seconds
        self._audiences: Tuple[str, ...] = tuple(audiences)
        self._roles: Dict[str, int] = {}
        self._opaque: Dict[str, OpaqueToken] = {}
        self._faults = FaultPlan()
        self._log = CallLog()
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
        self._server, self._thread = start_server(StsMiddleware(self, moto_app), self._port)
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
        """``http://127.0.0.1:<port>``. :raises RuntimeError: before :meth:`start`"""
        server = self._server
        if server is None:
            raise RuntimeError("the STS emulator is not running; call start() first")
        return f"http://127.0.0.1:{server.server_address[1]}"

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

    @property
    def strict_roles(self) -> bool:
        """Whether roles that do not exist in moto's IAM are refused."""
        return self._strict_roles

    def add_role(self, role_arn: str, max_session_duration: int = 3600) -> None:
        """Set the MaxSessionDuration of a role that is not in moto's IAM.

        Roles neither in IAM nor added allow 3600 seconds, IAM's default. A role in IAM
        takes its maximum from IAM (``create_role(MaxSessionDuration=...)``).

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
        fault = Fault.for_mode(mode, code, message, status)
        with self._lock:
            self._faults.outage(seconds, fault)

    def reset(self, *, iam: bool = False) -> None:
        """Forget calls, faults, added roles and opaque tokens; restore constructor settings.

        Access keys issued earlier stay known, so their expiry is still enforced.

        :param iam: also empty moto's IAM (roles, OIDC providers), which is shared by every
            emulator of the process; the ``sts_emulator`` fixture does this between tests
        """
        if iam:
            reset_iam()
        with self._lock:
            lifetime, latency, audiences = self._initial
            self._lifetime_seconds, self._latency_seconds = lifetime, latency
            self._audiences = audiences
            self._roles.clear()
            self._opaque.clear()
            self._faults.clear()
        self._log.clear()

    # -- records -----------------------------------------------------------------------

    @property
    def calls(self) -> List[StsCall]:
        """Every AssumeRoleWithWebIdentity request answered so far, by arrival time."""
        return self._log.calls()

    @property
    def assume_count(self) -> int:
        """``len(calls)``."""
        return len(self._log.calls())

    @property
    def successful_calls(self) -> List[StsCall]:
        """The calls that returned credentials."""
        return [call for call in self.calls if call.error_code is None]

    @property
    def signed_requests(self) -> List[SignedRequest]:
        """Every signed non-AssumeRoleWithWebIdentity request, passed to moto or refused."""
        return self._log.signed_requests()

    @property
    def expired_credential_uses(self) -> int:
        """Signed requests refused because their emulator-issued key had expired."""
        return sum(1 for request in self._log.signed_requests() if request.expired)

    # -- middleware callbacks (called from request threads) -----------------------------

    def handle_local(
        self, method: str, path: str, params: Mapping[str, Sequence[str]]
    ) -> Optional[Reply]:
        """The discovery document, the JWKS and the admin endpoint (see ``_admin``)."""
        return _admin.handle(self, method, path, params)

    def check_signed(self, access_key_id: str, *, json_protocol: bool) -> Optional[Reply]:
        """Record a signed request; refuse it when its emulator-issued key has expired."""
        if not self._log.add_signed(access_key_id, datetime.now(timezone.utc)):
            return None
        message = "The security token included in the request is expired"
        if json_protocol:
            return json_error("ExpiredTokenException", message)
        return sts_error("ExpiredToken", message)

    def handle_web_identity(self, params: Mapping[str, Sequence[str]]) -> Reply:
        """Fault, check, mint through moto, rewrite; record the call either way."""
        arrived = datetime.now(timezone.utc)
        request = parse_request(params)
        with self._lock:
            fault = self._faults.take()
            latency = self._latency_seconds
            rules = Rules(
                issuer=self._issuer.issuer,
                jwks=self._issuer.jwks(),
                audiences=self._audiences,
                opaque=dict(self._opaque),
                added_roles=dict(self._roles),
                strict_roles=self._strict_roles,
            )
        if latency > 0:
            self._stopping.wait(latency)
        if fault is not None:
            self._record(arrived, request, DROPPED if fault.drop else fault.code)
            if fault.drop:
                return Reply(drop=True)
            return sts_error(fault.code, fault.message, fault.status)
        try:
            admitted = admit(request, rules)
        except StsFault as refusal:
            self._record(arrived, request, refusal.code)
            return sts_error(refusal.code, refusal.message, refusal.status)
        return self._mint(arrived, request, admitted)

    # -- internals ---------------------------------------------------------------------

    def _record(
        self,
        arrived: datetime,
        request: WebIdentityRequest,
        error_code: Optional[str],
        access_key_id: Optional[str] = None,
        expiration: Optional[datetime] = None,
    ) -> None:
        self._log.add_call(call_record(arrived, request, error_code, access_key_id, expiration))

    def _mint(self, arrived: datetime, request: WebIdentityRequest, admitted: Admitted) -> Reply:
        assert request.role_arn is not None
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
        self._record(arrived, request, None, access_key_id, expiration)
        rid = request_id()
        body = render_success(
            request,
            admitted.identity,
            admitted.packed_policy_size,
            rid,
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
        )
        return xml_reply(200, body, rid)

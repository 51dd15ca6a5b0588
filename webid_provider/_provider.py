"""The botocore credential provider, its chain placement, and register/install/session.

Placement: our provider sits just before ``assume-role``. It must precede ``assume-role``
because a profile that carries ``role_arn`` with only our keys (``web_identity_token_command``)
would otherwise make botocore's AssumeRoleProvider raise "missing source_profile". Every other
source (env keys, SSO, ``credential_process``, container, IMDS) stays where botocore put it;
when no web identity setting exists ``load()`` returns ``None`` and the chain goes on.
Exception: a token source passed in code (``install(session, web_identity_token=...)``) puts
the provider first, ahead of environment keys, because the caller asked for web identity
explicitly. A profile that is an assume-role profile (``source_profile``/
``credential_source``) and names no token source is left to botocore, as before.

botocore's own ``assume-role-with-web-identity`` provider stays in the chain, after ours
(issue 10): awscli and other code look it up by name (``get_provider``, ``insert_before``,
``insert_after``) and fail when it is missing. It never answers in our place: ours returns
``None`` only when no token source is configured (botocore's would find none either) or for an
assume-role profile, which ``assume-role`` claims before botocore's provider is reached. So
nothing loads twice and no second STS call happens.

Role chaining: the ``assume-role`` provider is rebuilt from botocore's public constructor
arguments with a profile provider builder that puts ours first, so a ``source_profile`` that is
a web identity profile gets its credentials from us (host cache, every profile key of ours);
the ``AssumeRole`` hop on top is botocore's, unchanged.

``register()`` uses botocore's public ``register_initializer`` and registers the resolver
lazily, so a profile set afterwards (``boto3.Session(profile_name=...)`` sets it after the
initializer ran) is respected. The region of the STS client is fixed when the resolver is
built, as botocore fixes its own.

Security: configuration comes from arguments, the environment and ``~/.aws/config`` only.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional

import botocore
import botocore.credentials
import botocore.session
from botocore.credentials import (
    AssumeRoleProvider,
    CanonicalNameCredentialSourcer,
    CredentialProvider,
    EnvProvider,
    ProfileProviderBuilder,
)
from botocore.exceptions import ProfileNotFound, UnknownCredentialError

from webid_provider._aio import build_aio_resolver, is_aio_session
from webid_provider._botocore import (
    WebIdentityAwareAssumeRoleProvider,
    botocore_session_of,
    credential_client_creator,
    first_client_region,
)
from webid_provider._cache import CredentialCache
from webid_provider._clock import Clock, utc_now
from webid_provider._credentials import METHOD, WebIdentityCredentials
from webid_provider._errors import ConfigurationError
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh import WebIdentityRefresher
from webid_provider._settings import (
    PROFILE_TOKEN_OPTIONS,
    TOKEN_OPTIONS,
    WebIdentitySettings,
    resolve_settings,
)
from webid_provider._sts import RetryPolicy, StsEndpoint, create_sts_client, resolve_sts_endpoint
from webid_provider._tokens import token_source_from_spec

logger = logging.getLogger(__name__)

BUILTIN_WEB_IDENTITY = "assume-role-with-web-identity"
ASSUME_ROLE = "assume-role"


class WebIdentityProvider(CredentialProvider):
    """Loads web identity credentials for one botocore session.

    ``load()`` returns :class:`~webid_provider._refresh.WebIdentityCredentials` or ``None`` (no
    token source configured); it makes no network call and reads no token.

    :param session: the botocore session whose profile, region and endpoint settings apply
    :param options: the options of :func:`webid_provider.register`
    :param region_name: the region of the STS client; default: the region of the session's
        first client as of now (what botocore's own resolver is built with), else the
        session's region
    :param profile_name: read this profile instead of the session's active one (a
        ``source_profile``); the STS endpoint still follows the session, as in botocore
    :param disable_env_vars: ignore ``AWS_ROLE_ARN`` & co.; default: when the session's
        profile was set explicitly, as botocore does
    """

    METHOD = METHOD
    CANONICAL_NAME = "custom-webid-provider"

    def __init__(
        self,
        session: botocore.session.Session,
        options: Optional[Mapping[str, Any]] = None,
        *,
        clock: Clock = utc_now,
        policy: Optional[RefreshPolicy] = None,
        retry_policy: Optional[RetryPolicy] = None,
        environ: Optional[Mapping[str, str]] = None,
        region_name: Optional[str] = None,
        profile_name: Optional[str] = None,
        disable_env_vars: Optional[bool] = None,
    ) -> None:
        super().__init__(session=session)
        self._session = session
        self._options = dict(options or {})
        self._clock = clock
        self._policy = policy or RefreshPolicy()
        self._retry_policy = retry_policy or RetryPolicy()
        self._environ = environ
        # Fixed now, not at the first STS call: later clients in other regions must not move
        # the STS call (botocore builds its resolver with this region too).
        self._region_name = region_name or first_client_region(session)
        self._profile_name = profile_name
        self._disable_env_vars = disable_env_vars
        self._clients: dict[StsEndpoint, Any] = {}
        self._clients_pid = os.getpid()

    def resolve(self) -> Optional[WebIdentitySettings]:
        """The settings for this session, or ``None`` when web identity is not configured.

        :raises ConfigurationError: for invalid settings
        """
        profile_name, profile, use_environment = self._profile()
        if not any(self._options.get(name) for name in TOKEN_OPTIONS) and _is_assume_role_profile(
            profile
        ):
            return None
        return resolve_settings(
            self._options,
            environ=self._environment(),
            profile_name=profile_name,
            profile=profile,
            use_environment=use_environment,
        )

    def load(self) -> Optional[WebIdentityCredentials]:
        settings = self.resolve()
        if settings is None:
            return None
        logger.debug(
            "web identity configured: role %s, %s", settings.role_arn, settings.token.describe()
        )
        return WebIdentityCredentials(self.refresher(settings))

    def refresher(self, settings: WebIdentitySettings) -> WebIdentityRefresher:
        """The refresh callable for ``settings`` on this session."""
        endpoint = self.sts_endpoint()
        return WebIdentityRefresher(
            settings,
            token_source_from_spec(settings.token),
            sts_client=lambda: self._sts_client(endpoint),
            endpoint=endpoint.identity(),
            cache=CredentialCache(settings.cache_dir),
            clock=self._clock,
            policy=self._policy,
            retry_policy=self._retry_policy,
        )

    def sts_endpoint(self) -> StsEndpoint:
        """Where this session's STS calls go, resolved now by botocore's rules."""
        return resolve_sts_endpoint(
            self._session, region_name=self._region_name, environ=self._environment()
        )

    def _environment(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _profile(self) -> tuple[Optional[str], Mapping[str, Any], bool]:
        """The profile's name and keys, and whether the environment applies."""
        if self._profile_name is None:
            name, profile = _active_profile(self._session)
            explicit = self._session.instance_variables().get("profile") is not None
            disabled = explicit if self._disable_env_vars is None else self._disable_env_vars
            return name, profile, not disabled
        profiles = self._session.full_config.get("profiles", {})
        profile = profiles.get(self._profile_name)
        if profile is None:
            raise ProfileNotFound(profile=self._profile_name)
        return self._profile_name, profile, not self._disable_env_vars

    def _sts_client(self, endpoint: StsEndpoint) -> Any:
        """The STS client for ``endpoint``, built on first need (a cache hit never pays for it).

        No lock: two threads racing here both build one and one wins, which costs little; a
        lock could be held by a thread of the parent at fork time and never be released in the
        child. A forked child builds its own clients: the parent's share its sockets.
        """
        if self._clients_pid != os.getpid():
            self._clients, self._clients_pid = {}, os.getpid()
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients.setdefault(
                endpoint, create_sts_client(self._session, endpoint=endpoint)
            )
        return client


def _active_profile(session: botocore.session.Session) -> tuple[Optional[str], Mapping[str, Any]]:
    name = session.get_config_variable("profile")
    try:
        profile = session.get_scoped_config()
    except ProfileNotFound:
        if name is None:
            return None, {}
        raise
    return name, profile


def _is_assume_role_profile(profile: Mapping[str, Any]) -> bool:
    has_token_key = any(profile.get(k) for k in PROFILE_TOKEN_OPTIONS)
    chained = profile.get("source_profile") or profile.get("credential_source")
    return bool(profile.get("role_arn") and chained and not has_token_key)


class _SourceProfileProviders(ProfileProviderBuilder):
    """botocore's providers for a ``source_profile``, with ours first.

    ``AssumeRoleProvider`` resolves a source profile that is not itself an assume-role
    profile through ``providers()``; ours in front serves web identity source profiles.
    Of the options passed in code only ``cache_dir`` applies there: the source profile's own
    keys describe its exchange.
    """

    def __init__(
        self,
        session: botocore.session.Session,
        *,
        cache: Any,
        region_name: Optional[str],
        options: Mapping[str, Any],
    ) -> None:
        super().__init__(session, cache=cache, region_name=region_name)
        self._webid_session = session
        self._webid_region_name = region_name
        self._webid_options = {k: v for k, v in options.items() if k == "cache_dir"}

    def providers(self, profile_name: str, disable_env_vars: bool = False) -> list[Any]:
        ours = WebIdentityProvider(
            self._webid_session,
            self._webid_options,
            region_name=self._webid_region_name,
            profile_name=profile_name,
            disable_env_vars=disable_env_vars,
        )
        return [ours, *super().providers(profile_name, disable_env_vars=disable_env_vars)]


def _serve_source_profiles(
    resolver: Any,
    session: botocore.session.Session,
    options: Mapping[str, Any],
    region_name: Optional[str],
) -> None:
    """Replace ``assume-role`` with the same provider whose source profiles can be ours.

    The replacement gets what ``create_credential_resolver`` gives botocore's (config,
    client factory, cache, profile, credential sourcer) plus our builder. A provider that is
    not botocore's own class (a wrapped ``create_credential_resolver`` put it there) is left
    alone.
    """
    try:
        original = resolver.get_provider(ASSUME_ROLE)
        container = resolver.get_provider("container-role")
        instance_metadata = resolver.get_provider("iam-role")
    except UnknownCredentialError:
        logger.debug("credential chain without botocore's providers; source profiles unchanged")
        return
    if type(original) is not AssumeRoleProvider:
        return
    try:
        env = resolver.get_provider("env")
    except UnknownCredentialError:  # removed because the profile was set explicitly
        env = EnvProvider()
    replacement = WebIdentityAwareAssumeRoleProvider(
        load_config=lambda: session.full_config,
        client_creator=credential_client_creator(session, region_name),
        cache=original.cache,
        profile_name=session.get_config_variable("profile") or "default",
        credential_sourcer=CanonicalNameCredentialSourcer([env, container, instance_metadata]),
        profile_provider_builder=_SourceProfileProviders(
            session, cache=original.cache, region_name=region_name, options=options
        ),
        web_identity_keys=PROFILE_TOKEN_OPTIONS,
    )
    resolver.providers[resolver.providers.index(original)] = replacement


def _build_resolver(session: botocore.session.Session, options: Mapping[str, Any]) -> Any:
    if is_aio_session(session):  # aiobotocore: its own async chain (webid_provider._aio_glue)
        return build_aio_resolver(session, options)
    # The region botocore builds its own resolver with: the first client's, read now.
    region_name = first_client_region(session)
    # Looked up through the module at call time, so code that wraps or patches it applies.
    resolver = botocore.credentials.create_credential_resolver(session, region_name=region_name)
    provider = WebIdentityProvider(session, options, region_name=region_name)
    _serve_source_profiles(resolver, session, options, region_name)
    names = [p.METHOD for p in resolver.providers]
    if any(options.get(name) is not None for name in TOKEN_OPTIONS):
        # A token source passed in code is an explicit request for web identity: it must not
        # lose silently to AWS_ACCESS_KEY_ID left in the environment.
        position = 0
    else:
        position = names.index(ASSUME_ROLE) if ASSUME_ROLE in names else 0
    resolver.providers.insert(position, provider)
    return resolver


def _check_options(options: Mapping[str, Any]) -> None:
    """Validate option names and values now, so ``register(duration_seconds=5)`` fails at once.

    Values missing here may come from the environment or a profile later, so placeholders
    stand in for them; only what the caller passed is judged.
    """
    given = {name: value for name, value in options.items() if value is not None}
    if not any(name in given for name in TOKEN_OPTIONS):
        given["web_identity_token"] = _PLACEHOLDER_TOKEN
    given.setdefault("role_arn", _PLACEHOLDER_ROLE)
    resolve_settings(given, environ={}, profile={})


_PLACEHOLDER_TOKEN = "placeholder"
_PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/placeholder"


def install(session: Any, **options: Any) -> Any:
    """Make one boto3 or botocore session use web identity credentials from this package.

    Call it before the session's first client or ``get_credentials()``: botocore keeps the
    credentials it resolved first.

    :param session: a ``boto3.Session`` or ``botocore.session.Session``, or aiobotocore's
        ``AioSession`` or an ``aioboto3.Session``
    :param options: see the README's option table
    :returns: ``session``
    :raises ConfigurationError: for unknown options or invalid values
    """
    _check_options(options)
    botocore_session = _botocore_session(session)
    botocore_session.lazy_register_component(
        "credential_provider", lambda: _build_resolver(botocore_session, options)
    )
    return session


_registered: Optional[Callable[[botocore.session.Session], None]] = None
_register_lock = threading.Lock()


def register(**options: Any) -> None:
    """Make every botocore/boto3 session created from now on use this package's provider.

    Calling it again replaces the previous registration.

    :raises ConfigurationError: for unknown options or invalid values
    """
    global _registered
    _check_options(options)

    def initializer(session: botocore.session.Session) -> None:
        session.lazy_register_component(
            "credential_provider", lambda: _build_resolver(session, options)
        )

    with _register_lock:
        if _registered is not None:
            botocore.unregister_initializer(_registered)
        botocore.register_initializer(initializer)
        _registered = initializer


def unregister() -> None:
    """Undo :func:`register` for sessions created from now on."""
    global _registered
    with _register_lock:
        if _registered is not None:
            botocore.unregister_initializer(_registered)
            _registered = None


def session(
    *, profile_name: Optional[str] = None, region_name: Optional[str] = None, **options: Any
) -> Any:
    """A new ``boto3.Session`` that uses this package's provider.

    :param profile_name: as for ``boto3.Session``
    :param region_name: as for ``boto3.Session``
    :raises ConfigurationError: for unknown options or invalid values
    """
    import boto3

    _check_options(options)
    botocore_session = botocore.session.Session()
    install(botocore_session, **options)
    return boto3.Session(
        botocore_session=botocore_session, profile_name=profile_name, region_name=region_name
    )


def _botocore_session(session: Any) -> botocore.session.Session:
    inner = botocore_session_of(session)
    if inner is None:
        raise ConfigurationError(
            f"install() needs a boto3.Session or botocore Session, not {type(session).__name__}",
            field="session",
        )
    return inner

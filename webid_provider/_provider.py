"""The botocore credential provider: settings for one session, and a refresher for them.

``load()`` resolves the settings of its session (call options, the environment unless the
profile was set explicitly, the profile's keys) and returns credentials fed by a
:class:`~webid_provider._refresh.WebIdentityRefresher`, or ``None`` when no token source is
configured (the credential chain then moves on). A profile that is an assume-role profile
(``source_profile``/``credential_source``) and names no token source is left to botocore. The
provider reads no token and makes no network call until the credentials are first used.

The STS client goes where botocore's own would: the region of the session's first client,
fixed when the provider is built, and the endpoint botocore's rules resolve for the session.
Where the provider sits in the chain is :mod:`webid_provider._chain`'s business.

Security: configuration comes from arguments, the environment and ``~/.aws/config`` only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Optional

import botocore.session
from botocore.credentials import CredentialProvider
from botocore.exceptions import ProfileNotFound

from webid_provider._botocore import first_client_region
from webid_provider._cache import CredentialCache
from webid_provider._clock import Clock, utc_now
from webid_provider._credentials import METHOD, WebIdentityCredentials
from webid_provider._policy import RefreshPolicy
from webid_provider._refresh import WebIdentityRefresher
from webid_provider._settings import (
    PROFILE_TOKEN_OPTIONS,
    TOKEN_OPTIONS,
    WebIdentitySettings,
    resolve_settings,
)
from webid_provider._sts import RetryPolicy
from webid_provider._sts_client import StsEndpoint, create_sts_client, resolve_sts_endpoint
from webid_provider._tokens import token_source_from_spec

logger = logging.getLogger(__name__)


class WebIdentityProvider(CredentialProvider):
    """Loads web identity credentials for one botocore session.

    ``load()`` returns :class:`~webid_provider._credentials.WebIdentityCredentials` or ``None`` (no
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

"""Where our provider sits in botocore's credential chain, and role chaining through it.

Placement: our provider sits just before ``assume-role``. It must precede ``assume-role``
because a profile that carries ``role_arn`` with only our keys (``web_identity_token_command``)
would otherwise make botocore's AssumeRoleProvider raise "missing source_profile". Every other
source (env keys, SSO, ``credential_process``, container, IMDS) stays where botocore put it;
when no web identity setting exists ``load()`` returns ``None`` and the chain goes on.
Exception: a token source passed in code (``install(session, web_identity_token=...)``) puts
the provider first, ahead of environment keys, because the caller asked for web identity
explicitly. The async chain (:mod:`webid_provider._aio_glue`) places its provider by the same
rule (:func:`chain_position`).

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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import botocore.credentials
import botocore.session
from botocore.credentials import (
    AssumeRoleProvider,
    CanonicalNameCredentialSourcer,
    EnvProvider,
    ProfileProviderBuilder,
)
from botocore.exceptions import UnknownCredentialError

from webid_provider._aio import build_aio_resolver, is_aio_session
from webid_provider._botocore import (
    WebIdentityAwareAssumeRoleProvider,
    credential_client_creator,
    first_client_region,
)
from webid_provider._provider import WebIdentityProvider
from webid_provider._settings import PROFILE_TOKEN_OPTIONS, TOKEN_OPTIONS

logger = logging.getLogger(__name__)

BUILTIN_WEB_IDENTITY = "assume-role-with-web-identity"
ASSUME_ROLE = "assume-role"


def chain_position(providers: Sequence[Any], options: Mapping[str, Any]) -> int:
    """Where our provider goes in ``providers`` (a resolver's, before insertion)."""
    if any(options.get(name) is not None for name in TOKEN_OPTIONS):
        # A token source passed in code is an explicit request for web identity: it must not
        # lose silently to AWS_ACCESS_KEY_ID left in the environment.
        return 0
    names = [provider.METHOD for provider in providers]
    return names.index(ASSUME_ROLE) if ASSUME_ROLE in names else 0


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


def build_resolver(session: botocore.session.Session, options: Mapping[str, Any]) -> Any:
    """The credential resolver ``session`` would build, with our provider placed in it."""
    if is_aio_session(session):  # aiobotocore: its own async chain (webid_provider._aio_glue)
        return build_aio_resolver(session, options)
    # The region botocore builds its own resolver with: the first client's, read now.
    region_name = first_client_region(session)
    # Looked up through the module at call time, so code that wraps or patches it applies.
    resolver = botocore.credentials.create_credential_resolver(session, region_name=region_name)
    provider = WebIdentityProvider(session, options, region_name=region_name)
    _serve_source_profiles(resolver, session, options, region_name)
    resolver.providers.insert(chain_position(resolver.providers, options), provider)
    return resolver

"""The one place that touches botocore and boto3 private names, each with the reason.

botocore offers no public way to (1) give ``DeferredRefreshableCredentials`` refresh windows,
(2) learn the region botocore's own resolver would use, (3) reach the botocore session
inside a ``boto3.Session``, (4) ask which endpoint URL the session configures for a service
without building a client, (5) get the client factory botocore gives its credential
providers, (6) tell ``AssumeRoleProvider`` that a profile with our token keys is a web
identity profile, or (7) free a credentials object's refresh lock in a forked child. Keeping
these reads/overrides here means a botocore release that renames them breaks one small module,
and its tests say so.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional

import botocore.credentials
import botocore.session
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.credentials import (
    AssumeRoleProvider,
    DeferredRefreshableCredentials,
    RefreshableCredentials,
)

#: botocore asks ``refresh_using`` when fewer than this many seconds are left before the expiry
#: we report...
BOTOCORE_ADVISORY_SECONDS = 2.0
#: ...and blocks every thread when fewer than this many are left.
BOTOCORE_MANDATORY_SECONDS = 1.0


class WindowedDeferredCredentials(DeferredRefreshableCredentials):
    """``DeferredRefreshableCredentials`` with small, fixed botocore windows.

    ``DeferredRefreshableCredentials.__init__`` takes no window arguments; botocore reads the
    windows from these class attributes, which is the override point its own subclasses use.
    The refresher reports an effective expiry relative to them (see :mod:`webid_provider._refresh`).
    """

    _advisory_refresh_timeout = BOTOCORE_ADVISORY_SECONDS
    _mandatory_refresh_timeout = BOTOCORE_MANDATORY_SECONDS


def first_client_region(session: botocore.session.Session) -> Optional[str]:
    """The region of the client whose creation first needed credentials.

    botocore builds its own credential resolver with this region and keeps it only in a private
    attribute; we read it (never write it) so our STS client goes where botocore's would.
    """
    region = getattr(session, "_last_client_region_used", None)
    return region if isinstance(region, str) else None


def botocore_session_of(session: Any) -> Optional[botocore.session.Session]:
    """The botocore session behind a ``boto3.Session`` (or the session itself).

    boto3 has no public accessor; ``_session`` has held it since boto3 1.0.
    """
    if isinstance(session, botocore.session.Session):
        return session
    inner = getattr(session, "_session", None)
    return inner if isinstance(inner, botocore.session.Session) else None


def configured_endpoint_url(
    session: botocore.session.Session, service_name: str, environ: Mapping[str, str]
) -> Optional[str]:
    """The endpoint URL the session configures for ``service_name``, as botocore finds it.

    ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, the profile's ``[services]``
    section, the profile's ``endpoint_url``, in botocore's order. botocore computes this in
    ``create_client`` with ``ConfiguredEndpointProvider`` (documented as private); building a
    client just to read the URL costs ~100 ms per session, this ~20 us. Whether configured
    URLs are ignored is decided by the caller (a public config variable).
    """
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config,
        scoped_config=session.get_scoped_config(),
        client_name=service_name,
        environ=environ,
    )
    url = provider.provide()
    return url if isinstance(url, str) and url else None


def credential_client_creator(
    session: botocore.session.Session, region_name: Optional[str]
) -> Callable[..., Any]:
    """The client factory botocore's ``create_credential_resolver`` gives its providers.

    ``_get_client_creator`` pins the resolver's region and creates nested clients (no client
    plugins inside credential providers); using botocore's own keeps our rebuilt
    ``AssumeRoleProvider`` identical to the one it replaces.
    """
    # private, so not in botocore-stubs
    get_creator = botocore.credentials._get_client_creator  # type: ignore[attr-defined]
    creator: Callable[..., Any] = get_creator(session, region_name)
    return creator


class WebIdentityAwareAssumeRoleProvider(AssumeRoleProvider):
    """botocore's ``AssumeRoleProvider`` that treats profiles with our token keys as web identity.

    botocore decides "this profile is web identity, not assume-role" by the presence of
    ``web_identity_token_file`` alone, in the private ``_has_assume_role_config_vars``. A
    ``source_profile`` that carries ``role_arn`` and ``web_identity_token_command`` would
    otherwise be assumed with ``AssumeRole`` and fail with ``PartialCredentialsError``
    instead of reaching the web identity providers of the source profile chain (issue 10).

    :param web_identity_keys: profile keys that, like ``web_identity_token_file``, make a
        profile a web identity profile
    """

    def __init__(self, *args: Any, web_identity_keys: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._webid_token_keys = web_identity_keys

    def _has_assume_role_config_vars(self, profile: Any) -> bool:
        if any(key in profile for key in self._webid_token_keys):
            return False
        # private, so not in botocore-stubs
        return bool(super()._has_assume_role_config_vars(profile))  # type: ignore[misc]


def reset_refresh_lock(credentials: RefreshableCredentials) -> None:
    """Give ``credentials`` a new, free refresh lock (in a forked child only).

    ``RefreshableCredentials`` guards refreshes with a private ``threading.Lock``,
    ``_refresh_lock``. A thread of the parent that was refreshing at fork time holds it in the
    child too, where that thread does not exist: the child's first blocking refresh would wait
    forever. botocore offers no reset, so the at-fork hook replaces the lock.
    """
    credentials._refresh_lock = threading.Lock()  # type: ignore[attr-defined]  # private, see above

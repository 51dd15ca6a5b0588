"""``register()``, ``install()``, ``session()``: putting the provider into botocore sessions.

``register()`` uses botocore's public ``register_initializer`` and registers the resolver
lazily, so a profile set afterwards (``boto3.Session(profile_name=...)`` sets it after the
initializer ran) is respected. The region of the STS client is fixed when the resolver is
built, as botocore fixes its own. Every entry point judges its options at once
(:func:`~webid_provider._settings.check_options`): ``register(duration_seconds=5)`` fails
where it is called, not at the first request.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import botocore
import botocore.session

from webid_provider._botocore import botocore_session_of
from webid_provider._chain import build_resolver
from webid_provider._errors import ConfigurationError
from webid_provider._settings import check_options


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
    check_options(options)
    botocore_session = _botocore_session(session)
    botocore_session.lazy_register_component(
        "credential_provider", lambda: build_resolver(botocore_session, options)
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
    check_options(options)

    def initializer(session: botocore.session.Session) -> None:
        session.lazy_register_component(
            "credential_provider", lambda: build_resolver(session, options)
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

    check_options(options)
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

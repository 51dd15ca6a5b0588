"""Entry points to the async glue that import neither aiobotocore nor aiohttp.

``import webid_provider`` must stay cheap and work without the ``aio`` extra, yet
``register()``/``install()`` must recognise an aiobotocore session and the STS client factory
must build an async client for one. So detection looks at ``sys.modules`` (a session of a
class from a module nobody imported cannot exist), and the glue itself
(:mod:`webid_provider._aio_glue`, which imports aiobotocore) is imported only when an
aiobotocore session is actually in hand.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Optional

AIOBOTO3_INSTALL_HINT = "pip install 'webid-provider[aioboto3]'"


def is_aio_session(session: object) -> bool:
    """Whether ``session`` is an aiobotocore ``AioSession`` (without importing aiobotocore)."""
    module = sys.modules.get("aiobotocore.session")
    aio_session = getattr(module, "AioSession", None)
    return isinstance(aio_session, type) and isinstance(session, aio_session)


def build_aio_resolver(session: Any, options: Mapping[str, Any]) -> Any:
    """aiobotocore's own credential resolver for ``session``, with our provider placed in it."""
    from webid_provider._aio_glue import build_resolver

    return build_resolver(session, options)


def create_aio_sts_client(
    session: Any,
    *,
    region_name: Optional[str],
    endpoint_url: Optional[str],
    config_options: Mapping[str, Any],
) -> Any:
    """The STS client the refresher's jobs call for an aiobotocore session."""
    from webid_provider._aio_glue import OffLoopStsClient

    return OffLoopStsClient(
        session, region_name=region_name, endpoint_url=endpoint_url, config_options=config_options
    )


def aioboto3_session(
    *, profile_name: Optional[str] = None, region_name: Optional[str] = None, **options: Any
) -> Any:
    """A new ``aioboto3.Session`` that uses this package's provider.

    :param profile_name: as for ``aioboto3.Session``
    :param region_name: as for ``aioboto3.Session``
    :param options: see the README's option table
    :raises ImportError: when aioboto3 is not installed (the ``aioboto3`` extra)
    :raises ConfigurationError: for unknown options or invalid values
    """
    try:
        import aioboto3
        from aiobotocore.session import AioSession
    except ImportError as exc:
        raise ImportError(
            f"aioboto3_session() needs aioboto3, which is not installed: {AIOBOTO3_INSTALL_HINT}"
        ) from exc
    from webid_provider._register import install

    botocore_session = AioSession()
    install(botocore_session, **options)
    return aioboto3.Session(
        botocore_session=botocore_session, profile_name=profile_name, region_name=region_name
    )

"""The STS client: where AssumeRoleWithWebIdentity goes, and how it is sent.

The client is created from the user's botocore session so region, ``AWS_ENDPOINT_URL_STS``,
``sts_regional_endpoints``, proxies and CA bundle apply. It is unsigned (the operation needs no
credentials, and signing would recurse into the credential chain) and makes exactly one attempt
per call (:func:`single_attempt_options`, which the ``assume-role-with-web-identity`` command
uses too): retries are the refresher's alone (:mod:`webid_provider._sts`), so botocore's and
ours never multiply (aws/aws-cli#7194, hashicorp/aws-sdk-go-base#342).

:class:`StsEndpoint` holds every input botocore's endpoint rules use, resolved without building a
client: the cache key binds it, and the client is pinned to it.

Security: botocore's DEBUG records of the call quote the token and the new credentials; they
are redacted (:mod:`webid_provider._redaction`) from the moment a client is created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from botocore import UNSIGNED
from botocore.config import Config

from webid_provider._aio import create_aio_sts_client, is_aio_session
from webid_provider._botocore import configured_endpoint_url
from webid_provider._redaction import install_secret_redaction


def single_attempt_options(
    *, connect_timeout: Optional[float], read_timeout: Optional[float], **pinned: Any
) -> dict[str, Any]:
    """botocore ``Config`` options for an unsigned STS client that makes one attempt per call.

    :param pinned: further ``Config`` options (FIPS and dual-stack settings)
    """
    return dict(
        signature_version=UNSIGNED,
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        **pinned,
    )


@dataclass(frozen=True)
class StsEndpoint:
    """Every input botocore's endpoint rules use to choose the STS URL for one session.

    Resolved with botocore's own pieces (:func:`resolve_sts_endpoint`), without building a
    client. Equal values give the same URL, so the cache key binds :meth:`identity` and the
    STS client is built from these exact values: credentials one endpoint minted are never
    served to a session whose calls would go to another.

    :param region_name: the client region (fixed when the credential resolver is built)
    :param endpoint_url: the configured URL (``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL``,
        the profile's ``[services]`` section or ``endpoint_url``), ``None`` when unset or
        ignored (``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``)
    """

    region_name: Optional[str] = None
    endpoint_url: Optional[str] = None
    use_fips_endpoint: Optional[bool] = None
    use_dualstack_endpoint: Optional[bool] = None
    sts_regional_endpoints: Optional[str] = None

    def identity(self) -> str:
        """The string the cache key binds."""
        return "|".join(
            _text(value)
            for value in (
                self.region_name,
                self.endpoint_url,
                self.use_fips_endpoint,
                self.use_dualstack_endpoint,
                self.sts_regional_endpoints,
            )
        )


def _text(value: object) -> str:
    return "" if value is None else str(value)


def resolve_sts_endpoint(
    session: Any,
    *,
    region_name: Optional[str] = None,
    environ: Mapping[str, str] = os.environ,
) -> StsEndpoint:
    """Where an STS client created now from ``session`` would send its calls, as inputs.

    Follows ``Session.create_client``: the session's default client config wins over config
    variables, a configured endpoint URL is looked up by botocore's
    ``ConfiguredEndpointProvider`` unless ``ignore_configured_endpoint_urls`` is set.

    :param session: a ``botocore.session.Session``
    :param region_name: the region the client is created with; ``None``: the session's
    :param environ: the environment for the endpoint URL variables
    :raises InvalidConfigError: (botocore's) when the profile names a missing ``[services]``
        section, as botocore raises when it creates a client
    """
    defaults = session.get_default_client_config()

    def setting(config_name: str, variable: str) -> Any:
        value = getattr(defaults, config_name, None) if defaults is not None else None
        return value if value is not None else session.get_config_variable(variable)

    region = region_name or setting("region_name", "region")
    ignore = setting("ignore_configured_endpoint_urls", "ignore_configured_endpoint_urls")
    return StsEndpoint(
        region_name=region or None,
        endpoint_url=None if ignore else configured_endpoint_url(session, "sts", environ),
        use_fips_endpoint=setting("use_fips_endpoint", "use_fips_endpoint"),
        use_dualstack_endpoint=setting("use_dualstack_endpoint", "use_dualstack_endpoint"),
        sts_regional_endpoints=session.get_config_variable("sts_regional_endpoints"),
    )


def create_sts_client(
    session: Any,
    *,
    endpoint: Optional[StsEndpoint] = None,
    connect_timeout_seconds: float = 5.0,
    read_timeout_seconds: float = 10.0,
) -> Any:
    """An unsigned, single-attempt STS client built from a botocore session.

    :param session: a ``botocore.session.Session``; for an aiobotocore ``AioSession``, a
        synchronous face over aiobotocore's async client (:mod:`webid_provider._aio_glue`)
    :param endpoint: the resolved endpoint (resolved from ``session`` now when not given);
        the client is pinned to it, so the URL it calls is the one the cache key names even
        if the environment changes later
    """
    # botocore's DEBUG records of this client quote the token and the new credentials.
    install_secret_redaction()
    if endpoint is None:
        endpoint = resolve_sts_endpoint(session)
    pinned: dict[str, Any] = {}
    if endpoint.use_fips_endpoint is not None:
        pinned["use_fips_endpoint"] = endpoint.use_fips_endpoint
    if endpoint.use_dualstack_endpoint is not None:
        pinned["use_dualstack_endpoint"] = endpoint.use_dualstack_endpoint
    options = single_attempt_options(
        connect_timeout=connect_timeout_seconds, read_timeout=read_timeout_seconds, **pinned
    )
    if is_aio_session(session):  # aiobotocore's async client, run off the caller's event loop
        return create_aio_sts_client(
            session,
            region_name=endpoint.region_name,
            endpoint_url=endpoint.endpoint_url,
            config_options=options,
        )
    kwargs: dict[str, Any] = {
        "region_name": endpoint.region_name,
        "endpoint_url": endpoint.endpoint_url,
        "config": Config(**options),
    }
    try:  # botocore >= 1.40: keeps client plugins out of credential-provider clients
        from botocore.utils import create_nested_client
    except ImportError:  # pragma: no cover - older botocore
        return session.create_client("sts", **kwargs)
    return create_nested_client(session, "sts", **kwargs)

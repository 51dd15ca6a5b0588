"""Whether one AssumeRoleWithWebIdentity request gets credentials: the checks, in STS's order.

1. Parameters (``_validate``), with the role's ``MaxSessionDuration``: from IAM when moto's IAM
   has the role, else from :meth:`StsEmulator.add_role`, else IAM's default of 3600 seconds.
2. The token (``_token``): signature against the issuer's JWKS, expiry, and, for a role in
   IAM, an IAM OIDC provider registered for the token's ``iss`` in the role's account whose
   client IDs hold its ``aud`` (otherwise ``InvalidIdentityToken`` "No OpenIDConnect provider
   found in your account for ..." or "Incorrect token audience", as STS answers). For roles
   outside IAM the emulator's own ``audiences`` apply.
3. The packed policy size.
4. The role's trust policy (``_trust``) when the role is in IAM; a role outside IAM is let in,
   unless the emulator is strict (``strict_roles=True``). A refusal is ``AccessDenied``
   "Not authorized to perform sts:AssumeRoleWithWebIdentity" (HTTP 403), as in AWS.

Security: works on the request in memory; messages never contain the token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from webid_provider.testing._iam import (
    IamRole,
    OidcProvider,
    find_oidc_provider,
    find_role,
    issuer_key,
)
from webid_provider.testing._token import Identity, OpaqueToken, verify_token
from webid_provider.testing._trust import UnsupportedPolicy, allows
from webid_provider.testing._validate import (
    DEFAULT_MAX_SESSION_DURATION,
    StsFault,
    WebIdentityRequest,
    check_parameters,
    packed_policy_size,
)

__all__ = ["ACCESS_DENIED", "Admitted", "Rules", "admit"]

logger = logging.getLogger(__name__)

#: STS's answer when the trust policy does not let the caller in.
ACCESS_DENIED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


@dataclass(frozen=True)
class Rules:
    """The emulator's settings for one call (a snapshot taken under its lock)."""

    issuer: str
    jwks: Mapping[str, Any]
    audiences: Tuple[str, ...]
    opaque: Mapping[str, OpaqueToken]
    added_roles: Mapping[str, int]
    strict_roles: bool


@dataclass(frozen=True)
class Admitted:
    """What a successful check established."""

    identity: Identity
    packed_policy_size: Optional[int]


def admit(request: WebIdentityRequest, rules: Rules) -> Admitted:
    """Run every check on ``request``.

    :raises StsFault: the STS error to answer
    """
    role = find_role(request.role_arn) if request.role_arn else None
    check_parameters(request, _max_session_duration(request, role, rules))
    provider = find_oidc_provider(role, rules.issuer) if role is not None else None
    identity = verify_token(
        request,
        issuer=rules.issuer,
        jwks=rules.jwks,
        audiences=_audiences(role, provider, rules),
        opaque=rules.opaque,
    )
    packed = packed_policy_size(request)
    if role is not None:
        _check_trust(role, provider, identity, rules.issuer)
    elif rules.strict_roles:
        raise StsFault("AccessDenied", ACCESS_DENIED, 403)
    return Admitted(identity=identity, packed_policy_size=packed)


def _max_session_duration(
    request: WebIdentityRequest, role: Optional[IamRole], rules: Rules
) -> int:
    if role is not None:
        return role.max_session_duration
    return rules.added_roles.get(request.role_arn or "", DEFAULT_MAX_SESSION_DURATION)


def _audiences(
    role: Optional[IamRole], provider: Optional[OidcProvider], rules: Rules
) -> Optional[Sequence[str]]:
    """The accepted ``aud`` values; ``None`` when the role's account has no provider for
    the issuer."""
    if role is None:
        return rules.audiences
    return None if provider is None else provider.client_ids


def _check_trust(
    role: IamRole, provider: Optional[OidcProvider], identity: Identity, issuer: str
) -> None:
    """:param provider: the role account's OIDC provider for ``issuer``, if any"""
    if identity.provider == issuer:
        principal = provider.arn if provider is not None else ""
    else:  # an OAuth 2.0 token: the principal is the provider id (www.amazon.com, ...)
        principal = identity.provider
    try:
        allowed = allows(role.trust_policy, principal, _condition_context(identity))
    except UnsupportedPolicy as exc:
        logger.warning(
            "sts emulator: the trust policy of %s cannot be evaluated: %s", role.arn, exc
        )
        allowed = False
    if not allowed:
        raise StsFault("AccessDenied", ACCESS_DENIED, 403)


def _condition_context(identity: Identity) -> Dict[str, List[str]]:
    prefix = issuer_key(identity.provider)
    context = {f"{prefix}:sub": [identity.subject], f"{prefix}:aud": [identity.audience]}
    if identity.amr:
        context[f"{prefix}:amr"] = list(identity.amr)
    return context

"""The STS endpoint the cache key binds is the one botocore's own provider would call.

Each case configures a session (environment, profile, ``[services]`` section, ignore switch,
FIPS, dual-stack, regional setting, resolver region) and compares three things: the URL
botocore's own web identity fetcher would call (its client, built the way botocore builds it),
the URL our pinned client calls, and :meth:`StsEndpoint.identity`. The request is stopped in
``before-send``, so no socket is opened.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import InvalidConfigError
from botocore.utils import create_nested_client

from webid_provider._sts_client import StsEndpoint, create_sts_client, resolve_sts_endpoint

ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_DEFAULT_REGION",
)

SERVICES = """
[services local-sts]
sts =
  endpoint_url = http://127.0.0.1:2
"""


@dataclass(frozen=True)
class Case:
    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""  # keys of [default]
    region_name: Optional[str] = None  # the resolver's region (first client's)
    client_defaults: Optional[Config] = None


CASES = [
    Case("region", env={"AWS_DEFAULT_REGION": "us-east-1"}),
    Case("other region", env={"AWS_DEFAULT_REGION": "eu-west-1"}),
    Case("china", env={"AWS_DEFAULT_REGION": "cn-north-1"}),
    Case("profile region", profile="region = ap-south-1\n"),
    Case("resolver region", env={"AWS_DEFAULT_REGION": "us-east-1"}, region_name="eu-central-1"),
    Case(
        "legacy global",
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_STS_REGIONAL_ENDPOINTS": "legacy"},
    ),
    Case("fips", env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_USE_FIPS_ENDPOINT": "true"}),
    Case("fips in profile", profile="region = us-east-1\nuse_fips_endpoint = true\n"),
    Case(
        "dualstack", env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_USE_DUALSTACK_ENDPOINT": "true"}
    ),
    Case(
        "fips in client defaults",
        env={"AWS_DEFAULT_REGION": "us-east-1"},
        client_defaults=Config(use_fips_endpoint=True),
    ),
    Case("profile endpoint_url", profile="region = us-east-1\nendpoint_url = http://127.0.0.1:1\n"),
    Case("services section", profile="region = us-east-1\nservices = local-sts\n"),
    Case(
        "services section over profile endpoint_url",
        profile="region = us-east-1\nendpoint_url = http://127.0.0.1:1\nservices = local-sts\n",
    ),
    Case(
        "AWS_ENDPOINT_URL_STS over the profile",
        env={"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:3"},
        profile="region = us-east-1\nservices = local-sts\n",
    ),
    Case(
        "AWS_ENDPOINT_URL",
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:4", "AWS_DEFAULT_REGION": "us-east-1"},
    ),
    Case(
        "ignore switch in the environment",
        env={"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_ENDPOINT_URL_STS": "http://x:3"},
        profile="region = us-east-1\nendpoint_url = http://127.0.0.1:1\nservices = local-sts\n",
    ),
    Case(
        "ignore switch in the profile",
        profile="region = us-east-1\nendpoint_url = http://127.0.0.1:1\n"
        "ignore_configured_endpoint_urls = true\n",
    ),
    Case(
        "ignore switch in client defaults",
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:4", "AWS_DEFAULT_REGION": "us-east-1"},
        # missing from botocore-stubs
        client_defaults=Config(ignore_configured_endpoint_urls=True),  # type: ignore[call-arg]
    ),
]


class _Sent(Exception):
    """Raised in ``before-send`` once the URL is known: nothing leaves the process."""


def _session(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / f"config-{abs(hash(case.name))}"
    config.write_text(f"[default]\n{case.profile}{SERVICES}")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    session = botocore.session.Session()
    if case.client_defaults is not None:
        session.set_default_client_config(case.client_defaults)
    return session


def _called_url(session: Any, client: Any) -> str:
    urls: list[str] = []

    def record(request: Any, **_: Any) -> None:
        urls.append(request.url)
        raise _Sent

    client.meta.events.register("before-send.sts.AssumeRoleWithWebIdentity", record)
    with pytest.raises(_Sent):
        client.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::123456789012:role/r",
            RoleSessionName="s1",
            WebIdentityToken="token-token",
        )
    client.close()
    return urls[0].rstrip("/")


def _botocore_url(session: Any, case: Case) -> str:
    # What AssumeRoleWithWebIdentityCredentialFetcher builds: the resolver's client creator
    # (region pinned) with an unsigned config.
    client = create_nested_client(
        session, "sts", region_name=case.region_name, config=Config(signature_version=UNSIGNED)
    )
    return _called_url(session, client)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str, str]]:
    """Per case: botocore's URL, our pinned client's URL, our identity string."""
    results: dict[str, tuple[str, str, str]] = {}
    tmp_path = tmp_path_factory.mktemp("endpoints")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for case in CASES:
            session = _session(case, tmp_path, monkeypatch)
            endpoint = resolve_sts_endpoint(session, region_name=case.region_name)
            ours = _called_url(session, create_sts_client(session, endpoint=endpoint))
            theirs = _botocore_url(_session(case, tmp_path, monkeypatch), case)
            results[case.name] = (theirs, ours, endpoint.identity())
    return results


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_our_client_calls_the_url_botocores_provider_would_call(
    case: Case, observed: dict[str, tuple[str, str, str]]
) -> None:
    theirs, ours, _ = observed[case.name]
    assert ours == theirs


def test_different_urls_never_share_an_identity(
    observed: dict[str, tuple[str, str, str]],
) -> None:
    for (name_a, (url_a, _, id_a)), (name_b, (url_b, _, id_b)) in itertools.combinations(
        observed.items(), 2
    ):
        if url_a != url_b:
            assert id_a != id_b, (name_a, name_b)


def test_the_cases_cover_distinct_urls(observed: dict[str, tuple[str, str, str]]) -> None:
    urls = {url for url, _, _ in observed.values()}
    assert {
        "https://sts.us-east-1.amazonaws.com",
        "https://sts.amazonaws.com",
        "https://sts.cn-north-1.amazonaws.com.cn",
        "https://sts-fips.us-east-1.amazonaws.com",
        "https://sts.us-east-1.api.aws",
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        "http://127.0.0.1:3",
        "http://127.0.0.1:4",
        "https://sts.eu-central-1.amazonaws.com",
    } <= urls


def test_services_section_and_profile_endpoint_are_resolved_without_a_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(CASES[11], tmp_path, monkeypatch)
    assert resolve_sts_endpoint(session) == StsEndpoint(
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:2",
        sts_regional_endpoints="regional",
    )


def test_missing_services_section_raises_botocores_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(Case("x", profile="services = nowhere\n"), tmp_path, monkeypatch)
    with pytest.raises(InvalidConfigError, match="nowhere"):
        resolve_sts_endpoint(session)


def test_identity_is_stable_and_names_every_input() -> None:
    endpoint = StsEndpoint("eu-west-1", "http://127.0.0.1:9", True, False, "legacy")
    assert endpoint.identity() == "eu-west-1|http://127.0.0.1:9|True|False|legacy"
    assert StsEndpoint().identity() == "||||"

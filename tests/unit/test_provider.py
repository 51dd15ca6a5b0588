"""The credential chain after ``register()``: what botocore users look up by name still works.

No sockets: configurations are written to the per-test config file, and the only STS request
(the region test) is stopped in ``before-send``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

import botocore.credentials
import botocore.session
import pytest
from botocore.credentials import (
    AssumeRoleProvider,
    AssumeRoleWithWebIdentityProvider,
    CredentialProvider,
    Credentials,
)
from botocore.exceptions import InvalidConfigError, UnknownCredentialError

import webid_provider
from webid_provider._chain import BUILTIN_WEB_IDENTITY
from webid_provider._provider import WebIdentityProvider

ROLE = "arn:aws:iam::123456789012:role/webid-test"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("opaque-token-for-unit-tests")
    return path


def _config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))


def _resolver(profile: Optional[str] = None) -> Any:
    return botocore.session.Session(profile=profile).get_component("credential_provider")


def _methods(resolver: Any) -> list[str]:
    return [provider.METHOD for provider in resolver.providers]


class Marker(CredentialProvider):
    METHOD = "custom-marker"
    CANONICAL_NAME = "custom-marker"

    def load(self) -> Optional[Credentials]:
        return None


# -- item 1: botocore's web identity provider stays resolvable -----------------------------------


@pytest.mark.parametrize("profile", [None, "dev"])
def test_builtin_provider_stays_in_the_chain_after_ours(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, profile: Optional[str]
) -> None:
    _config(monkeypatch, tmp_path, "[profile dev]\nregion = us-east-1\n")
    alone = _methods(_resolver(profile))
    webid_provider.register()
    registered = _methods(_resolver(profile))

    assert "webid-provider" not in alone
    assert [m for m in registered if m != "webid-provider"] == alone
    assert registered.index("webid-provider") < registered.index("assume-role")
    assert registered.index("assume-role") < registered.index(BUILTIN_WEB_IDENTITY)


def test_lookups_by_name_work_as_with_botocore_alone() -> None:
    webid_provider.register()
    resolver = _resolver()
    builtin = resolver.get_provider(BUILTIN_WEB_IDENTITY)
    assert isinstance(builtin, AssumeRoleWithWebIdentityProvider)
    assert isinstance(resolver.get_provider("webid-provider"), WebIdentityProvider)

    resolver.insert_before(BUILTIN_WEB_IDENTITY, Marker())
    methods = _methods(resolver)
    assert methods[methods.index(BUILTIN_WEB_IDENTITY) - 1] == "custom-marker"
    resolver.remove("custom-marker")
    resolver.insert_after(BUILTIN_WEB_IDENTITY, Marker())
    methods = _methods(resolver)
    assert methods[methods.index(BUILTIN_WEB_IDENTITY) + 1] == "custom-marker"
    # awscli's session-initialized handler does exactly this:
    builtin.cache = {}
    resolver.get_provider("assume-role").cache = {}


def test_a_token_source_in_code_goes_first_and_keeps_the_builtin() -> None:
    webid_provider.register(web_identity_token="opaque-token-for-unit-tests", role_arn=ROLE)
    methods = _methods(_resolver())
    assert methods[0] == "webid-provider"
    assert BUILTIN_WEB_IDENTITY in methods


def _spy_on_builtin(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    results: list[object] = []
    original = AssumeRoleWithWebIdentityProvider.load

    def load(self: AssumeRoleWithWebIdentityProvider) -> Any:
        result = original(self)
        results.append(result)
        return result

    monkeypatch.setattr(AssumeRoleWithWebIdentityProvider, "load", load)
    return results


SCENARIOS: list[tuple[str, dict[str, str], str, Optional[str], Optional[str]]] = [
    # name, environment, config, explicit profile, method with botocore alone
    ("nothing configured", {}, "", None, None),
    (
        "env keys",
        {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"},
        "",
        None,
        "env",
    ),
    (
        "irsa env",
        {"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": "{token}"},
        "",
        None,
        BUILTIN_WEB_IDENTITY,
    ),
    (
        "profile token file",
        {"AWS_PROFILE": "web"},
        "[profile web]\nrole_arn = {role}\nweb_identity_token_file = {token}\n",
        None,
        BUILTIN_WEB_IDENTITY,
    ),
    (
        "explicit profile over irsa env",
        {"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": "{token}"},
        "[profile keys]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = x\n",
        "keys",
        "config-file",
    ),
    (
        "assume-role profile with irsa env",
        {"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": "{token}", "AWS_PROFILE": "chain"},
        "[profile chain]\nrole_arn = {role}\nsource_profile = keys\n"
        "[profile keys]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = x\n",
        None,
        "assume-role",
    ),
    (
        "credential_process profile",
        {"AWS_PROFILE": "proc"},
        "[profile proc]\ncredential_process = {process}\n",
        None,
        "custom-process",
    ),
]


@pytest.mark.parametrize(
    ("environment", "config", "profile", "botocore_method"),
    [scenario[1:] for scenario in SCENARIOS],
    ids=[scenario[0] for scenario in SCENARIOS],
)
def test_the_builtin_never_answers_and_every_other_outcome_is_botocores(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    token_file: Path,
    environment: dict[str, str],
    config: str,
    profile: Optional[str],
    botocore_method: Optional[str],
) -> None:
    """botocore alone, then registered: same provider wins, except web identity is ours."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(token=token_file))
    script = tmp_path / "process.py"
    script.write_text(
        'print(\'{"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "x"}\')'
    )
    process = f"{sys.executable} {script}"
    _config(monkeypatch, tmp_path, config.format(role=ROLE, token=token_file, process=process))

    def method() -> Optional[str]:
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        return None if credentials is None else str(credentials.method)

    alone = method()
    webid_provider.register(cache_dir=None)
    results = _spy_on_builtin(monkeypatch)
    registered = method()

    assert alone == botocore_method
    expected = "webid-provider" if alone == BUILTIN_WEB_IDENTITY else alone
    assert registered == expected
    assert all(result is None for result in results)


# -- item 6: create_credential_resolver is looked up at call time --------------------------------


def test_a_wrapped_create_credential_resolver_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Optional[str]] = []
    original: Callable[..., Any] = botocore.credentials.create_credential_resolver

    def wrapped(session: Any, cache: Any = None, region_name: Optional[str] = None) -> Any:
        calls.append(region_name)
        resolver = original(session, cache=cache, region_name=region_name)
        resolver.providers.append(Marker())
        return resolver

    webid_provider.register()
    monkeypatch.setattr(botocore.credentials, "create_credential_resolver", wrapped)
    resolver = _resolver()
    assert calls == [None]
    assert resolver.get_provider("custom-marker").METHOD == "custom-marker"
    assert resolver.get_provider("webid-provider").METHOD == "webid-provider"


def _no_client(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("no client is created in this test")


def test_an_assume_role_provider_from_a_wrapper_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class CustomAssumeRole(AssumeRoleProvider):
        pass

    original: Callable[..., Any] = botocore.credentials.create_credential_resolver

    def wrapped(session: Any, cache: Any = None, region_name: Optional[str] = None) -> Any:
        resolver = original(session, cache=cache, region_name=region_name)
        mine = CustomAssumeRole(lambda: {}, _no_client, {}, "default")
        position = _methods(resolver).index("assume-role")
        resolver.providers[position] = mine
        return resolver

    monkeypatch.setattr(botocore.credentials, "create_credential_resolver", wrapped)
    webid_provider.register()
    assert type(_resolver().get_provider("assume-role")) is CustomAssumeRole


def test_a_chain_without_botocores_providers_still_gets_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def minimal(session: Any, cache: Any = None, region_name: Optional[str] = None) -> Any:
        return botocore.credentials.CredentialResolver(providers=[Marker()])

    monkeypatch.setattr(botocore.credentials, "create_credential_resolver", minimal)
    webid_provider.register()
    assert _methods(_resolver()) == ["webid-provider", "custom-marker"]


# -- item 7: source profiles reach our provider -------------------------------------------------


def test_source_profile_credentials_come_from_our_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token_file: Path
) -> None:
    _config(
        monkeypatch,
        tmp_path,
        f"[profile chain]\nrole_arn = {ROLE}\nsource_profile = web\n"
        f"[profile web]\nrole_arn = {ROLE}\nweb_identity_token_command = cat {token_file}\n"
        "duration_seconds = 1800\n",
    )
    loaded: list[Any] = []
    original = WebIdentityProvider.load

    def load(self: WebIdentityProvider) -> Any:
        loaded.append(self.resolve())
        return original(self)

    monkeypatch.setattr(WebIdentityProvider, "load", load)
    webid_provider.register(cache_dir=None, duration_seconds=3600)
    resolver = _resolver("chain")
    assume_role = resolver.get_provider("assume-role")
    assert isinstance(assume_role, AssumeRoleProvider)

    credentials = botocore.session.Session(profile="chain").get_credentials()

    assert credentials is not None
    assert credentials.method == "assume-role"
    # First ours for "chain" (an assume-role profile: None), then ours for the source profile,
    # with the source profile's own keys; of the registered options only cache_dir applies.
    assert loaded[0] is None
    source = loaded[1]
    assert source.profile_name == "web"
    assert source.token.kind == "command"
    assert source.duration_seconds == 1800
    assert source.cache_dir is None


def test_source_profile_without_role_arn_is_botocores_invalid_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token_file: Path
) -> None:
    _config(
        monkeypatch,
        tmp_path,
        f"[profile chain]\nrole_arn = {ROLE}\nsource_profile = web\n"
        f"[profile web]\nweb_identity_token_command = cat {token_file}\n",
    )
    webid_provider.register()
    with pytest.raises(InvalidConfigError, match="role_arn"):
        botocore.session.Session(profile="chain").get_credentials()


def test_a_missing_source_profile_is_still_botocores_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _config(monkeypatch, tmp_path, f"[profile chain]\nrole_arn = {ROLE}\nsource_profile = gone\n")
    webid_provider.register()
    with pytest.raises(InvalidConfigError, match="gone"):
        botocore.session.Session(profile="chain").get_credentials()


# -- item 4: the STS region is fixed when the resolver is built ----------------------------------


class _Sent(Exception):
    """Stops the STS request in ``before-send``: nothing leaves the process."""


@pytest.mark.parametrize("registered", [False, True], ids=["botocore", "registered"])
def test_sts_goes_to_the_first_clients_region(
    monkeypatch: pytest.MonkeyPatch, token_file: Path, registered: bool
) -> None:
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    if registered:
        webid_provider.register(cache_dir=None)
    session = botocore.session.Session()
    urls: list[str] = []

    def record(**kwargs: Any) -> None:
        urls.append(kwargs["request"].url)
        raise _Sent

    session.register("before-send.sts.AssumeRoleWithWebIdentity", record)
    first: Any = session.create_client("s3", region_name="eu-west-1")
    session.create_client("s3", region_name="ap-south-1")
    # botocore lets the handler's exception through; ours reports it as an StsError.
    with pytest.raises((_Sent, webid_provider.StsError)):
        first.list_buckets()

    assert urls == ["https://sts.eu-west-1.amazonaws.com/"]


def test_provider_built_directly_fixes_its_region_at_construction(token_file: Path) -> None:
    session = botocore.session.Session()
    session.create_client("s3", region_name="eu-west-1")
    provider = WebIdentityProvider(
        session, {"role_arn": ROLE, "web_identity_token_file": token_file}
    )
    session.create_client("s3", region_name="ap-south-1")
    assert provider.sts_endpoint().region_name == "eu-west-1"


def test_missing_profile_for_a_named_provider_is_profile_not_found() -> None:
    from botocore.exceptions import ProfileNotFound

    provider = WebIdentityProvider(botocore.session.Session(), profile_name="absent")
    with pytest.raises(ProfileNotFound):
        provider.resolve()


def test_unknown_name_still_raises_botocores_error() -> None:
    webid_provider.register()
    with pytest.raises(UnknownCredentialError):
        _resolver().get_provider("no-such-provider")

"""The ``webid-provider`` command in-process: parsing, formatters against awscli, exit codes.

STS answers come from recorded responses fed to botocore through its ``before-send`` event,
so botocore parses real wire XML and no socket is opened. awscli (a test dependency) renders
the same parsed response; the outputs must be identical.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import sys
import time
import types
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

import botocore.loaders
import botocore.session
import jwt
import pytest
import yaml
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.parsers import QueryParser

from webid_provider._cli import (
    _assume,
    _credentials,
    _layouts,
    _main,
    _skeletons,
    _yaml,
    main,
)
from webid_provider._cli._common import UsageError, parse_policy_arns
from webid_provider._refresh_state import clear_memory_state
from webid_provider._result import AssumedRoleUser, WebIdentityResult

ROLE = "arn:aws:iam::123456789012:role/webid-test"
ENDPOINT = "https://sts.unit.test"
OPERATION = "AssumeRoleWithWebIdentity"

# Members deliberately out of model order: the CLI must print in the model's order, as awscli.
RECORDED = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/webid-test/app-session</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app-session</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>FQoGZXIvYXdzEXAMPLE/session+token//EXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE=</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2026-01-01T13:00:00Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <SourceIdentity>alice</SourceIdentity>
    <Provider>https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE</Provider>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:app</SubjectFromWebIdentityToken>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""

# Fewer fields, short values, a fractional timestamp and a wide-character subject.
RECORDED_SHORT = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE12345</AccessKeyId>
      <SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>tok</SessionToken>
      <Expiration>2026-01-01T13:00:00.123Z</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>ユーザー</SubjectFromWebIdentityToken>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""

ACCESS_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code>
  <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error>
  <RequestId>req-403</RequestId>
</ErrorResponse>"""


def make_jwt(ttl: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": "https://issuer.test",
        "sub": "app",
        "aud": "sts.amazonaws.com",
    }
    payload.update(iat=now, exp=now + ttl, **claims)
    return jwt.encode(payload, "k" * 32, algorithm="HS256")


_LOADER = botocore.loaders.create_loader()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FakeSts:
    """Answers AssumeRoleWithWebIdentity from a queue of (status, body); records requests."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []
        self.requests: list[dict[str, list[str]]] = []

    def handler(self, request: Any, **_: Any) -> AWSResponse:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        self.requests.append(parse_qs(body))
        status, text = self.answers.pop(0) if self.answers else (200, RECORDED)
        return AWSResponse(request.url, status, HTTPHeaders(), _Raw(text.encode("utf-8")))

    def session(self, profile: Optional[str] = None, region: Optional[str] = None) -> Any:
        session = botocore.session.Session(profile=profile)
        session.register_component("data_loader", _LOADER)  # parsed models, shared across tests
        if region:
            session.set_config_variable("region", region)
        if profile is not None:
            session.get_scoped_config()
        session.register(
            "before-send.sts.AssumeRoleWithWebIdentity",
            self.handler,  # type: ignore[arg-type]  # stubs type handlers as returning None
        )
        return session


@pytest.fixture
def fake_sts(monkeypatch: pytest.MonkeyPatch) -> FakeSts:
    fake = FakeSts()
    monkeypatch.setattr(_assume, "new_session", fake.session)
    monkeypatch.setattr(_credentials, "new_session", fake.session)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return fake


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def assume(*extra: str, token: Optional[str] = None) -> list[str]:
    return [
        "assume-role-with-web-identity",
        "--role-arn",
        ROLE,
        "--role-session-name",
        "app-session",
        "--web-identity-token",
        token or make_jwt(),
        "--endpoint-url",
        ENDPOINT,
        *extra,
    ]


def awscli_parsed(xml: str) -> dict[str, Any]:
    """What awscli's client returns for ``xml``: botocore's parser with raw timestamps."""
    model = botocore.session.get_session().get_service_model("sts")
    shape = model.operation_model(OPERATION).output_shape
    assert shape is not None
    parsed: dict[str, Any] = QueryParser(timestamp_parser=lambda value: value).parse(
        {"body": xml.encode("utf-8"), "headers": {}, "status_code": 200}, shape
    )
    return parsed


@pytest.fixture(scope="module")
def awscli_render() -> Callable[[str, dict[str, Any], Optional[str]], str]:
    """awscli's own formatters, imported without letting awscli rewire later imports."""
    import jmespath
    import s3transfer  # noqa: F401  # imported first: awscli aliases it to its vendored copy

    saved_meta_path = list(sys.meta_path)
    saved_data_path = os.environ.get("AWS_DATA_PATH")
    from awscli.formatter import get_formatter

    sys.meta_path[:] = saved_meta_path
    if saved_data_path is None:
        os.environ.pop("AWS_DATA_PATH", None)
    else:
        os.environ["AWS_DATA_PATH"] = saved_data_path

    def render(fmt: str, response: dict[str, Any], query: Optional[str]) -> str:
        args = argparse.Namespace(query=jmespath.compile(query) if query else None, color="off")
        stream = io.StringIO()
        get_formatter(fmt, args)(OPERATION, copy.deepcopy(response), stream)
        return stream.getvalue()

    return render


# -- output parity with the aws CLI ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "text", "table"])
@pytest.mark.parametrize(
    "query",
    [
        None,
        "Credentials",
        "Credentials.Expiration",
        "[Credentials.AccessKeyId, PackedPolicySize]",
        "{role: AssumedRoleUser.Arn, size: PackedPolicySize}",
        "Missing",
    ],
)
@pytest.mark.parametrize("recorded", [RECORDED, RECORDED_SHORT], ids=["full", "short"])
def test_output_is_identical_to_awscli(
    fake_sts: FakeSts,
    run: Run,
    awscli_render: Callable[[str, dict[str, Any], Optional[str]], str],
    fmt: str,
    query: Optional[str],
    recorded: str,
) -> None:
    fake_sts.answers.append((200, recorded))
    code, out, err = run(*assume("--output", fmt, *(["--query", query] if query else [])))
    assert (code, err) == (0, "")
    assert out == awscli_render(fmt, awscli_parsed(recorded), query)


@pytest.mark.parametrize("width", [40, 1000])
def test_table_at_other_terminal_widths_is_identical_to_awscli(
    fake_sts: FakeSts,
    run: Run,
    awscli_render: Callable[[str, dict[str, Any], Optional[str]], str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    import awscli.table

    monkeypatch.setattr(awscli.table, "determine_terminal_width", lambda default_width=80: width)
    monkeypatch.setattr(_layouts, "terminal_width", lambda stream=None, default=80: width)
    code, out, _ = run(*assume("--output", "table"))
    assert code == 0
    assert out == awscli_render("table", awscli_parsed(RECORDED), None)


def test_json_keeps_model_order_and_the_wire_timestamp(fake_sts: FakeSts, run: Run) -> None:
    code, out, _ = run(*assume())
    assert code == 0
    document = json.loads(out)
    assert list(document) == [
        "Credentials",
        "SubjectFromWebIdentityToken",
        "AssumedRoleUser",
        "PackedPolicySize",
        "Provider",
        "Audience",
        "SourceIdentity",
    ]
    assert document["Credentials"]["Expiration"] == "2026-01-01T13:00:00Z"
    assert out.startswith('{\n    "Credentials": {\n        "AccessKeyId"')


def test_iso8601_timestamp_format_from_the_profile(
    fake_sts: FakeSts, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile iso]\ncli_timestamp_format = iso8601\noutput = text\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    code, out, _ = run(*assume("--profile", "iso", "--query", "Credentials.Expiration"))
    assert (code, out) == (0, "2026-01-01T13:00:00+00:00\n")


def test_request_carries_every_parameter(fake_sts: FakeSts, run: Run, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"Version": "2012-10-17", "Statement": []}\n')
    code, _, _ = run(
        *assume(
            "--policy",
            f"file://{policy}",
            "--policy-arns",
            "arn=arn:aws:iam::123456789012:policy/a",
            "arn=arn:aws:iam::aws:policy/ReadOnlyAccess",
            "--duration-seconds",
            "900",
        )
    )
    assert code == 0
    sent = fake_sts.requests[0]
    assert sent["RoleArn"] == [ROLE]
    assert sent["DurationSeconds"] == ["900"]
    assert sent["Policy"] == ['{"Version": "2012-10-17", "Statement": []}']
    assert sent["PolicyArns.member.1.arn"] == ["arn:aws:iam::123456789012:policy/a"]
    assert sent["PolicyArns.member.2.arn"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]


def test_cli_input_json_with_command_line_override(
    fake_sts: FakeSts, run: Run, tmp_path: Path
) -> None:
    document = {
        "RoleArn": ROLE,
        "RoleSessionName": "from-json",
        "WebIdentityToken": make_jwt(),
        "PolicyArns": [{"arn": "arn:aws:iam::123456789012:policy/a"}],
        "DurationSeconds": 1800,
    }
    path = tmp_path / "input.json"
    path.write_text(json.dumps(document))
    code, _, err = run(
        "assume-role-with-web-identity",
        "--cli-input-json",
        f"file://{path}",
        "--role-session-name",
        "from-flag",
        "--endpoint-url",
        ENDPOINT,
    )
    assert (code, err) == (0, "")
    sent = fake_sts.requests[0]
    assert sent["RoleSessionName"] == ["from-flag"]
    assert sent["DurationSeconds"] == ["1800"]
    assert sent["PolicyArns.member.1.arn"] == ["arn:aws:iam::123456789012:policy/a"]


def test_cli_input_yaml(fake_sts: FakeSts, run: Run) -> None:
    text = f"RoleArn: {ROLE}\nRoleSessionName: yaml-session\nWebIdentityToken: {make_jwt()}\n"
    code, _, _ = run(
        "assume-role-with-web-identity", "--cli-input-yaml", text, "--endpoint-url", ENDPOINT
    )
    assert code == 0
    assert fake_sts.requests[0]["RoleSessionName"] == ["yaml-session"]


def test_skeletons(run: Run) -> None:
    code, out, _ = run("assume-role-with-web-identity", "--generate-cli-skeleton")
    assert code == 0
    assert json.loads(out) == _skeletons.INPUT_SKELETON
    assert list(json.loads(out)) == list(_skeletons.INPUT_KEYS)
    code, out, _ = run("assume-role-with-web-identity", "--generate-cli-skeleton", "yaml-input")
    assert code == 0
    loaded = yaml.safe_load(out)
    assert loaded == _skeletons.INPUT_SKELETON


def test_output_skeleton_validates_and_makes_no_call(fake_sts: FakeSts, run: Run) -> None:
    code, out, _ = run(*assume("--generate-cli-skeleton", "output"))
    assert code == 0
    document = json.loads(out)
    assert document["Credentials"]["Expiration"] == "1970-01-01T00:00:00"
    assert fake_sts.requests == []
    code, _, err = run(*assume("--generate-cli-skeleton", "output", "--duration-seconds", "5"))
    assert code == 2
    assert "duration_seconds" in err


# -- bad input: exit status, one line, no traceback, no call ---------------------------------


def _assert_one_line_error(err: str, *needles: str) -> None:
    assert err.startswith("webid-provider: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--duration-seconds", "60"], "duration_seconds"),
        (["--duration-seconds", "abc"], "duration_seconds"),
        (["--role-session-name", "a b"], "role_session_name"),
        (["--role-arn", "arn:aws:iam::1:user/x"], "role_arn"),
        (["--policy", "{not json"], "policy is not valid JSON"),
        (["--policy", "file:///nonexistent/policy.json"], "/nonexistent/policy.json"),
        (["--policy-arns", "arn=not-an-arn"], "policy_arns"),
        (["--policy-arns", "[{bad"], "--policy-arns: invalid JSON"),
        (["--provider-id", "www.amazon.com"], "provider_id"),
        (["--cli-input-json", "{oops"], "--cli-input-json: invalid JSON"),
        (["--cli-input-json", '{"Foo": 1}'], "unknown parameter 'Foo'"),
        (["--cli-input-json", '{"DurationSeconds": "x"}'], "DurationSeconds must be an integer"),
        (["--cli-input-yaml", "a: [unclosed"], "--cli-input-yaml: invalid YAML"),
        (["--output", "xml"], "--output"),
        (["--query", "[["], "--query"),
        (["--endpoint-url", "localhost:1"], "--endpoint-url"),
        (["--cli-read-timeout", "x"], "--cli-read-timeout"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_input_exits_2_without_calling_sts(
    fake_sts: FakeSts, run: Run, extra: list[str], needle: str
) -> None:
    code, out, err = run(*assume(*extra))
    assert (code, out) == (2, "")
    _assert_one_line_error(err, needle)
    assert fake_sts.requests == []


def test_bad_tokens_exit_2(fake_sts: FakeSts, run: Run, tmp_path: Path) -> None:
    secret = make_jwt(ttl=-60)
    code, _, err = run(*assume(token=secret))
    assert code == 2
    _assert_one_line_error(err, "expired")
    assert secret not in err
    code, _, err = run(*assume(token="x"))
    assert code == 2
    _assert_one_line_error(err, "--web-identity-token", "characters")
    base = assume()[:-4]
    for path, needle in ((tmp_path / "missing", "does not exist"), (tmp_path, "is a directory")):
        code, _, err = run(*base, "--web-identity-token-file", str(path))
        assert code == 2
        _assert_one_line_error(err, str(path), needle)
    assert fake_sts.requests == []


def test_missing_required_arguments(run: Run) -> None:
    code, _, err = run("assume-role-with-web-identity", "--role-arn", ROLE)
    assert code == 2
    _assert_one_line_error(err, "--role-session-name", "--web-identity-token")


def test_sts_error_exits_1_with_code_and_request_id(fake_sts: FakeSts, run: Run) -> None:
    token = make_jwt()
    fake_sts.answers.append((403, ACCESS_DENIED))
    code, out, err = run(*assume(token=token))
    assert (code, out) == (1, "")
    _assert_one_line_error(err, "AccessDenied", "req-403")
    assert token not in err


def test_debug_shows_the_traceback(fake_sts: FakeSts, run: Run) -> None:
    fake_sts.answers.append((403, ACCESS_DENIED))
    code, _, err = run(*assume("--debug"))
    assert code == 1
    assert "Traceback" in err
    assert err.splitlines()[-1].startswith("webid-provider: error: ")


def test_unknown_profile_exits_2(run: Run) -> None:
    code, _, err = run(*assume("--profile", "nope"))
    assert code == 2
    _assert_one_line_error(err, "'nope'")


def test_help_version_and_no_command(run: Run) -> None:
    for argv in (["--help"], ["cache", "list", "--help"], ["env", "--version"], ["--version"]):
        code, out, _ = run(*argv)
        assert code == 0
        assert out
    code, _, err = run()
    assert code == 2
    _assert_one_line_error(err, "COMMAND")


def test_keyboard_interrupt_exits_130(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_assume, "run", interrupted)
    code, _, err = run(*assume())
    assert (code, err) == (130, "")


def test_unexpected_errors_show_only_their_type(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("secret-material")

    monkeypatch.setattr(_assume, "run", broken)
    code, _, err = run(*assume())
    assert code == 1
    _assert_one_line_error(err, "RuntimeError")
    assert "secret-material" not in err


# -- --policy-arns parsing, as the aws CLI takes it ------------------------------------------


A = "arn:aws:iam::123456789012:policy/a"
B = "arn:aws:iam::123456789012:policy/q=b"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([f"arn={A}"], [A]),
        ([f"arn={A}", f"arn={B}"], [A, B]),
        ([f"arn = {A}"], [A]),
        ([f'arn="{A}"'], [A]),
        ([json.dumps([{"arn": A}, {"arn": B}])], [A, B]),
        ([json.dumps({"arn": A}), json.dumps({"arn": B})], [A, B]),
    ],
)
def test_policy_arns_forms(values: list[str], expected: list[str]) -> None:
    assert parse_policy_arns(values) == expected


@pytest.mark.parametrize(
    "values", [[f"arn={A},arn={B}"], [f"{A},{B}"], ["name=x"], ['[{"arn": 1}]'], ["[1]"]]
)
def test_policy_arns_rejects_what_the_aws_cli_rejects(values: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_policy_arns(values)


def test_policy_arns_from_file(tmp_path: Path) -> None:
    path = tmp_path / "arns.json"
    path.write_text(json.dumps([{"arn": A}]))
    assert parse_policy_arns([f"file://{path}"]) == [A]


# -- yaml ---------------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", [RECORDED, RECORDED_SHORT])
def test_yaml_matches_pyyaml_for_responses(recorded: str) -> None:
    data = awscli_parsed(recorded)
    data.pop("ResponseMetadata")
    expected = yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)
    assert _yaml.dump(data) == expected
    assert _yaml.dump([data]) == yaml.safe_dump(
        [data], default_flow_style=False, sort_keys=True, allow_unicode=True
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yes",
        "No",
        "null",
        "~",
        "123",
        "0x1f",
        "1.5",
        ".inf",
        "2026-01-01",
        "2026-01-01T13:00:00Z",
        "a: b",
        "a:b",
        "- x",
        "-x",
        "# c",
        "x #c",
        "x#c",
        "'q'",
        '"dq"',
        " lead",
        "trail ",
        "line\nbreak",
        "tab\there",
        "{a}",
        "[1]",
        "@at",
        "%p",
        "---",
        "é ü ユ",
        "ctrl\x07",
        "ends:",
        "?",
        "?x",
    ],
)
def test_yaml_strings_round_trip(value: str) -> None:
    data = {"k": value, "l": [value, {"n": value}], "e": [], "d": {}, "i": 5, "b": True, "z": None}
    assert yaml.safe_load(_yaml.dump(data)) == data
    assert yaml.safe_load(_yaml.dump(value)) == value


def test_yaml_nested_lists_match_pyyaml() -> None:
    data: Any = {"a": [[1, 2], [{"x": 1, "y": [3]}]], "b": {"c": {"d": "e"}}}
    expected = yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
    assert _yaml.dump(data) == expected
    assert _yaml.dump("plain") == yaml.safe_dump("plain")
    assert _yaml.dump(None) == yaml.safe_dump(None)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--output", "yaml"], "--output yaml needs PyYAML"),
        (["--output", "yaml-stream"], "--output yaml-stream needs PyYAML"),
        (["--cli-input-yaml", "RoleArn: x"], "--cli-input-yaml needs PyYAML"),
    ],
)
def test_yaml_without_pyyaml_names_the_extra_before_calling_sts(
    fake_sts: FakeSts, run: Run, monkeypatch: pytest.MonkeyPatch, extra: list[str], needle: str
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # ``import yaml`` raises ImportError
    code, out, err = run(*assume(*extra))
    assert (code, out) == (2, "")
    _assert_one_line_error(err, needle, "pip install 'webid-provider[cli]'")
    assert fake_sts.requests == []


def test_yaml_output_through_the_command(fake_sts: FakeSts, run: Run) -> None:
    code, out, _ = run(*assume("--output", "yaml"))
    assert code == 0
    loaded = yaml.safe_load(out)
    assert loaded["Credentials"]["Expiration"] == "2026-01-01T13:00:00Z"
    code, out, _ = run(*assume("--output", "yaml-stream", "--query", "Provider"))
    assert yaml.safe_load(out) == ["https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"]


def test_text_formatter_edge_cases() -> None:
    stream = io.StringIO()
    _layouts.format_text({"L": [{"a": 1}, {"b": 2, "c": [3, [4]]}], "s": [1, 2]}, stream)
    assert stream.getvalue() == "L\t1\t\nL\t\t2\nC\t3\nC\t4\nS\t1\nS\t2\n"


# -- credential-process, env ----------------------------------------------------------------


def _result(arn: str = "arn:aws:sts::123456789012:assumed-role/r/s") -> WebIdentityResult:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    return WebIdentityResult(
        access_key_id="ASIAEXAMPLE",
        secret_access_key="se/cr+et=",
        session_token="to'ken",
        expiration=now + timedelta(hours=1),
        obtained_at=now,
        assumed_role_user=AssumedRoleUser(arn=arn, assumed_role_id="AROA:s"),
    )


def test_credential_process_document() -> None:
    assert _credentials.credential_process_document(_result()) == {
        "Version": 1,
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": "se/cr+et=",
        "SessionToken": "to'ken",
        "Expiration": "2026-01-01T13:00:00+00:00",
        "AccountId": "123456789012",
    }
    assert "AccountId" not in _credentials.credential_process_document(_result(arn="weird"))


@pytest.mark.parametrize("fmt", _credentials.ENV_FORMATS)
def test_env_formats_quote_safely(fmt: str) -> None:
    variables = _credentials.environment_variables(_result())
    text = _credentials.format_environment(variables, fmt)
    if fmt == "json":
        assert json.loads(text) == variables
    elif fmt == "shell":
        assert "export AWS_SESSION_TOKEN='to'\"'\"'ken'\n" in text
        assert "export AWS_SECRET_ACCESS_KEY=se/cr+et=\n" in text
    else:
        assert 'AWS_SESSION_TOKEN="to\'ken"\n' in text
        assert "AWS_CREDENTIAL_EXPIRATION=2026-01-01T13:00:00+00:00\n" in text


def test_credential_process_without_settings_exits_2(run: Run, tmp_path: Path) -> None:
    code, out, err = run("credential-process", "--no-cache")
    assert (code, out) == (2, "")
    _assert_one_line_error(err, "no web identity settings found")
    config = Path(os.environ["AWS_CONFIG_FILE"])
    config.write_text("[profile plain]\nregion = us-east-1\n")
    code, _, err = run("credential-process", "--profile", "plain")
    assert code == 2
    _assert_one_line_error(err, "no web identity settings found for profile plain")
    code, _, err = run("env", "--profile", "absent")
    assert code == 2
    _assert_one_line_error(err, "'absent'")


def test_credential_process_through_the_provider(
    fake_sts: FakeSts, run: Run, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(make_jwt())
    expiration = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0)
    wire = expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
    fake_sts.answers.append((200, RECORDED.replace("2026-01-01T13:00:00Z", wire)))
    argv = [
        "credential-process",
        "--role-arn",
        ROLE,
        "--web-identity-token-file",
        str(token_file),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    code, out, err = run(*argv)
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["Version"] == 1
    assert document["AccountId"] == "123456789012"
    assert document["Expiration"] == expiration.isoformat()
    assert len(fake_sts.requests) == 1
    assert fake_sts.requests[0]["RoleSessionName"][0].startswith("webid-")
    clear_memory_state()  # as if in a new process: served from the disk cache
    code, again, _ = run(*argv)
    assert (code, again) == (0, out)
    assert len(fake_sts.requests) == 1


def test_credential_process_bad_duration_exits_2(fake_sts: FakeSts, run: Run) -> None:
    code, _, err = run(
        "credential-process",
        "--role-arn",
        ROLE,
        "--web-identity-token-file",
        "/x",
        "--duration-seconds",
        "5",
    )
    assert code == 2
    _assert_one_line_error(err, "duration_seconds")
    assert fake_sts.requests == []


# -- demo -----------------------------------------------------------------------------------


def test_demo_dispatch(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("webid_provider.testing.demo")
    calls: list[Any] = []

    def run_demo(stream: Any) -> int:
        calls.append(stream)
        stream.write("demo ran\n")
        return 0

    module.run_demo = run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "webid_provider.testing.demo", module)
    assert run("demo") == (0, "demo ran\n", "")

    def needs_moto(stream: Any) -> int:
        raise ModuleNotFoundError("No module named 'moto'", name="moto")

    module.run_demo = needs_moto  # type: ignore[attr-defined]
    code, _, err = run("demo")
    assert code == 2
    _assert_one_line_error(err, "pip install 'webid-provider[testing]'")


def test_demo_missing_module(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "webid_provider.testing.demo", None)
    code, _, err = run("demo")
    assert code == 1
    _assert_one_line_error(err, "demo")


def test_classify_maps_every_family() -> None:
    from botocore.exceptions import NoRegionError, ProfileNotFound

    from webid_provider._errors import CacheError, ConfigurationError, StsError, TokenSourceError

    assert _main.classify(ConfigurationError("x"))[0] == 2
    assert _main.classify(TokenSourceError("x"))[0] == 2
    assert _main.classify(TokenSourceError("command failed", retryable=True))[0] == 1
    assert _main.classify(ProfileNotFound(profile="p"))[0] == 2
    assert _main.classify(NoRegionError())[0] == 2
    assert _main.classify(StsError("x", code="Throttling", retryable=True))[0] == 1
    assert _main.classify(CacheError("x"))[0] == 1


def test_credentials_already_expired_by_the_local_clock_exit_1(
    fake_sts: FakeSts, run: Run, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(make_jwt())
    fake_sts.answers.append((200, RECORDED.replace("2026-01-01T13:00:00Z", "2001-01-01T00:00:00Z")))
    code, out, err = run(
        "credential-process", "--role-arn", ROLE, "--web-identity-token-file", str(token_file)
    )
    assert (code, out) == (1, "")
    _assert_one_line_error(err, "too soon to use", "clock")


# -- cache ----------------------------------------------------------------------------------


def test_cache_list_and_clear_all(run: Run, tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    code, out, _ = run("cache", "list", "--cache-dir", str(directory))
    assert (code, out) == (0, f"no cache entries in {directory}\n")
    directory.mkdir(mode=0o700)
    (directory / "arwwi-garbage.json").write_text("{not json")
    (directory / "arwwi-garbage.lock").write_text("")
    (directory / "arwwi-orphan.lock").write_text("")
    code, out, _ = run("cache", "list", "--cache-dir", str(directory), "--format", "json")
    assert code == 0
    (row,) = json.loads(out)["entries"]
    assert (row["key"], row["state"]) == ("arwwi-garbage", "unreadable")
    code, out, _ = run("cache", "list", "--cache-dir", str(directory))
    assert out.splitlines()[1].split()[-1] == "unreadable"
    code, out, _ = run("cache", "clear", "--all", "--cache-dir", str(directory))
    assert (code, out) == (0, f"removed 1 cache entry from {directory}\n")
    # Lock files stay: another process may hold one (issue 11, item 16).
    assert sorted(path.name for path in directory.iterdir()) == [
        "arwwi-garbage.lock",
        "arwwi-orphan.lock",
    ]


@pytest.mark.timeout(30)
def test_cache_list_and_clear_refuse_a_symlinked_directory_in_one_line(
    run: Run, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    (target / "arwwi-garbage.json").write_text("{not json")
    link = tmp_path / "cache"
    link.symlink_to(target)
    for argv in (("cache", "list"), ("cache", "clear", "--all")):
        code, out, err = run(*argv, "--cache-dir", str(link))
        assert (code, out) == (1, "")
        _assert_one_line_error(err, str(link), "symlink")
    assert (target / "arwwi-garbage.json").exists()


@pytest.mark.timeout(30)
def test_cache_list_shows_a_fifo_entry_as_unreadable_without_blocking(
    run: Run, tmp_path: Path
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    os.mkfifo(directory / ("arwwi-" + "0" * 40 + ".json"))
    code, out, _ = run("cache", "list", "--cache-dir", str(directory), "--format", "json")
    assert code == 0
    (row,) = json.loads(out)["entries"]
    assert row["state"] == "unreadable"


def test_cache_states_follow_the_refresh_policy() -> None:
    from webid_provider._cache import CacheEntry
    from webid_provider._cli._inspect import entry_state, human_seconds
    from webid_provider._policy import RefreshPolicy

    result = _result()  # one hour, obtained at 12:00
    policy = RefreshPolicy()
    at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    entry = CacheEntry(key="k", result=result, role_arn=ROLE, role_session_name="s")
    assert entry_state(entry, at + timedelta(minutes=40), policy) == "fresh"
    assert entry_state(entry, at + timedelta(minutes=50), policy) == "refresh due"
    assert entry_state(entry, at + timedelta(seconds=3600 - 30), policy) == "unusable"
    assert entry_state(entry, at + timedelta(minutes=61), policy) == "expired"
    # A stored (jittered) refresh time wins over the un-jittered window.
    late = CacheEntry(
        key="k",
        result=result,
        role_arn=ROLE,
        role_session_name="s",
        refresh_at=at + timedelta(minutes=48),
    )
    assert entry_state(late, at + timedelta(minutes=47), policy) == "fresh"
    assert entry_state(late, at + timedelta(minutes=48), policy) == "refresh due"
    assert [human_seconds(s) for s in (5, 65, 3725, -65)] == ["5s", "1m 5s", "1h 2m", "1m 5s"]

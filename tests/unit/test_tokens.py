"""Token sources, token limits, and the unverified peek at JWT claims."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Union

import jwt
import pytest

from webid_provider._errors import TokenSourceError
from webid_provider._jwt import MAX_TOKEN_FILE_BYTES
from webid_provider._token_spec import TokenSpec
from webid_provider._tokens import (
    MAX_COMMAND_STDOUT_BYTES,
    CallableTokenSource,
    CommandTokenSource,
    FileTokenSource,
    StringTokenSource,
    check_token,
    default_session_name,
    peek_claims,
    token_identity,
    token_source_from_spec,
)
from webid_provider._validation import SESSION_NAME_PATTERN

HMAC_KEY = "a-test-only-hmac-key-of-at-least-32-bytes"
TOKEN_A = "opaque-token-AAAAAAAAAAAAAAAAAAAAAAAA"
TOKEN_B = "opaque-token-BBBBBBBBBBBBBBBBBBBBBBBB"

PathInput = Callable[[Path], Union[str, Path]]
PATH_TYPES: list[PathInput] = [str, Path]


def make_jwt(**claims: object) -> str:
    """A JWT for peeking: HS256 is fine because nothing here verifies signatures."""
    return jwt.encode(dict(claims), HMAC_KEY, algorithm="HS256")


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the file source's short retry sleeps instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


# -- file ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path_type", PATH_TYPES)
def test_file_is_read_again_on_every_call(tmp_path: Path, path_type: PathInput) -> None:
    path = tmp_path / "token"
    source = FileTokenSource(path_type(path))
    path.write_text(TOKEN_A)
    assert source.read_token() == TOKEN_A
    path.write_text(TOKEN_B)
    assert source.read_token() == TOKEN_B


def test_file_whitespace_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"\n  {TOKEN_A}\r\n\t")
    assert FileTokenSource(path).read_token() == TOKEN_A


def test_file_follows_a_kubelet_style_symlink_swap(tmp_path: Path) -> None:
    """The kubelet writes a new timestamped dir and atomically renames ``..data`` to it."""
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    first = mount / "..2026_01_01_12_00_00.000000001"
    first.mkdir()
    (first / "token").write_text(TOKEN_A)
    (mount / "..data").symlink_to(first.name)
    (mount / "token").symlink_to("..data/token")
    source = FileTokenSource(mount / "token")
    assert source.read_token() == TOKEN_A

    second = mount / "..2026_01_01_13_00_00.000000002"
    second.mkdir()
    (second / "token").write_text(TOKEN_B)
    (mount / "..data_tmp").symlink_to(second.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    for child in first.iterdir():
        child.unlink()
    first.rmdir()
    assert source.read_token() == TOKEN_B


def test_missing_file_names_the_path(tmp_path: Path, no_retry_sleep: list[float]) -> None:
    path = tmp_path / "absent" / "token"
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert str(path) in str(info.value)
    assert "does not exist" in str(info.value)
    assert info.value.path == str(path)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert no_retry_sleep, "a missing file is retried briefly before failing"


def test_missing_file_appearing_during_the_retry_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "token"

    def sleep_then_write(seconds: float) -> None:
        path.write_text(TOKEN_A)

    monkeypatch.setattr(time, "sleep", sleep_then_write)
    assert FileTokenSource(path).read_token() == TOKEN_A


@pytest.mark.parametrize("content", ["", "   \n\t  "])
def test_empty_file_is_an_error(tmp_path: Path, content: str, no_retry_sleep: list[float]) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert "empty" in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


def test_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(tmp_path).read_token()
    assert "directory" in str(info.value)
    assert str(tmp_path) in str(info.value)
    assert info.value.path == str(tmp_path)


@pytest.mark.timeout(10)
def test_fifo_token_file_is_refused_by_name_without_blocking(tmp_path: Path) -> None:
    # Issue 11, item 9: open() of a FIFO waits for a writer, forever.
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(fifo).read_token()
    assert str(info.value).startswith(f"token file {fifo} is a FIFO")
    assert "regular file" in str(info.value)
    assert info.value.path == str(fifo)
    assert info.value.retryable is False


@pytest.mark.timeout(10)
def test_device_token_file_is_refused_without_reading(tmp_path: Path) -> None:
    link = tmp_path / "token"
    link.symlink_to("/dev/zero")
    with pytest.raises(TokenSourceError, match="is a device") as info:
        FileTokenSource(link).read_token()
    assert info.value.path == str(link)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_token_file_of_another_user_is_read(tmp_path: Path) -> None:
    # The kubelet's projected token files belong to root; the pod runs as another uid.
    path = tmp_path / "token"
    path.write_text(TOKEN_A)
    os.chown(path, 65534, 65534)
    assert FileTokenSource(path).read_token() == TOKEN_A


def test_oversized_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    content = "x" * (MAX_TOKEN_FILE_BYTES + 1)
    path.write_text(content)
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert str(path) in str(info.value)
    assert str(MAX_TOKEN_FILE_BYTES) in str(info.value)
    assert content not in str(info.value)
    assert info.value.path == str(path)


def test_non_utf8_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"\xff\xfe" + TOKEN_A.encode())
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert "UTF-8" in str(info.value)
    assert str(path) in str(info.value)
    assert TOKEN_A not in str(info.value)


def test_non_utf8_file_error_carries_the_path_attribute(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"\xff\xfe" + TOKEN_A.encode())
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert info.value.path == str(path)


def test_too_short_token_in_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("abc\n")
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert str(path) in str(info.value)
    assert "abc" not in str(info.value).replace(str(path), "")
    assert info.value.path == str(path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads mode 000")
def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN_A)
    path.chmod(0)
    with pytest.raises(TokenSourceError) as info:
        FileTokenSource(path).read_token()
    assert str(path) in str(info.value)
    assert TOKEN_A not in str(info.value)


def test_file_description_names_the_path(tmp_path: Path) -> None:
    assert str(tmp_path / "t") in FileTokenSource(tmp_path / "t").description


# -- string -------------------------------------------------------------------------------------


def test_string_source_returns_the_stripped_token_and_hides_it() -> None:
    source = StringTokenSource(f"  {TOKEN_A}\n")
    assert source.read_token() == TOKEN_A
    assert source.read_token() == TOKEN_A
    assert TOKEN_A not in repr(source)
    assert TOKEN_A not in source.description


def test_string_source_checks_limits() -> None:
    with pytest.raises(TokenSourceError) as info:
        StringTokenSource("abc").read_token()
    assert "abc" not in str(info.value)


# -- callable -----------------------------------------------------------------------------------


def test_callable_is_called_every_time() -> None:
    tokens = iter([TOKEN_A, TOKEN_B])
    source = CallableTokenSource(lambda: next(tokens), "token callable get")
    assert source.read_token() == TOKEN_A
    assert source.read_token() == TOKEN_B


def test_callable_returning_bytes_is_decoded() -> None:
    source = CallableTokenSource(lambda: f"{TOKEN_A}\n".encode(), "token callable get")
    assert source.read_token() == TOKEN_A


def test_callable_returning_non_utf8_bytes_is_an_error() -> None:
    source = CallableTokenSource(lambda: b"\xff" + TOKEN_A.encode(), "token callable get")
    with pytest.raises(TokenSourceError, match="UTF-8") as info:
        source.read_token()
    assert TOKEN_A not in str(info.value)


@pytest.mark.parametrize("value", [None, 42, ["token"]])
def test_callable_returning_a_non_string_is_an_error(value: object) -> None:
    source = CallableTokenSource(lambda: value, "token callable get")
    with pytest.raises(TokenSourceError) as info:
        source.read_token()
    assert "token callable get" in str(info.value)
    assert type(value).__name__ in str(info.value)


def test_callable_raising_is_chained_without_its_message() -> None:
    secret_message = f"refresh failed for token {TOKEN_A}"
    original = RuntimeError(secret_message)

    def broken() -> str:
        raise original

    with pytest.raises(TokenSourceError) as info:
        CallableTokenSource(broken, "token callable broken").read_token()
    assert info.value.__cause__ is original
    assert "RuntimeError" in str(info.value)
    assert "token callable broken" in str(info.value)
    assert secret_message not in str(info.value)
    assert TOKEN_A not in str(info.value)


def test_callable_returning_too_short_token_is_an_error() -> None:
    with pytest.raises(TokenSourceError, match="characters"):
        CallableTokenSource(lambda: "abc", "token callable get").read_token()


# -- command ------------------------------------------------------------------------------------


def python_command(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


@pytest.mark.timeout(30)
def test_command_stdout_is_the_token() -> None:
    source = CommandTokenSource(python_command(f"print({TOKEN_A!r})"))
    assert source.read_token() == TOKEN_A
    assert TOKEN_A not in source.description


@pytest.mark.timeout(30)
def test_command_non_zero_exit_includes_stderr_excerpt_not_stdout() -> None:
    code = (
        "import sys\n"
        f"print({TOKEN_A!r})\n"
        "sys.stderr.write('x' * 1000 + 'oidc endpoint unreachable')\n"
        "sys.exit(3)\n"
    )
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource(python_command(code)).read_token()
    message = str(info.value)
    assert "status 3" in message
    assert message.endswith("oidc endpoint unreachable")
    assert "x" * 400 not in message  # only an excerpt of stderr
    assert TOKEN_A not in message


@pytest.mark.timeout(60)
def test_command_printing_far_more_than_a_token_is_stopped_with_bounded_memory(
    tmp_path: Path,
) -> None:
    # Issue 11, item 7: 1.5 GB of stdout took the reading process to 2.9 GB RSS. Here 256 MiB
    # is offered; the reader, in its own process so its peak RSS is its own, must stop the
    # command early (it never writes its "finished" marker) and stay far below that.
    finished = tmp_path / "finished"
    writer = (
        "import sys\n"
        "chunk = b'A' * (1 << 20)\n"
        "for _ in range(256):\n"
        "    sys.stdout.buffer.write(chunk)\n"
        "sys.stdout.flush()\n"
        f"open({str(finished)!r}, 'w').close()\n"
    )
    reader = (
        "import resource, sys\n"
        "from webid_provider._errors import TokenSourceError\n"
        "from webid_provider._tokens import CommandTokenSource\n"
        "source = CommandTokenSource((sys.executable, '-c', sys.argv[1]))\n"
        "try:\n"
        "    source.read_token()\n"
        "except TokenSourceError as exc:\n"
        "    print(exc)\n"
        "    print(exc.retryable)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    baseline = subprocess.run(
        [sys.executable, "-c", reader, "print('x' * 40)"],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    completed = subprocess.run(
        [sys.executable, "-c", reader, writer],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    message, retryable, peak_kib = completed.stdout.splitlines()
    assert f"printed more than {MAX_COMMAND_STDOUT_BYTES} bytes" in message
    assert "AAAA" not in message
    assert retryable == "True"
    assert not finished.exists()
    baseline_kib = int(baseline.stdout.splitlines()[-1])
    assert int(peak_kib) - baseline_kib < 32 * 1024  # KiB: nowhere near 256 MiB


@pytest.mark.timeout(30)
def test_command_with_endless_stderr_keeps_only_its_tail() -> None:
    code = (
        "import sys\n"
        "for i in range(20000):\n"
        "    sys.stderr.write('progress line %d of a chatty command\\n' % i)\n"
        "sys.stderr.write('final: issuer unreachable\\n')\n"
        "sys.exit(4)\n"
    )
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource(python_command(code)).read_token()
    message = str(info.value)
    assert "status 4" in message
    assert message.endswith("final: issuer unreachable")
    assert len(message) < 500


@pytest.mark.timeout(30)
def test_command_stderr_excerpt_redacts_a_set_x_traced_jwt(tmp_path: Path) -> None:
    # Issue 11, item 8: a failing ``set -x`` script put its whole JWT into the error.
    token = make_jwt(iss="https://issuer.example", sub="system:serviceaccount:prod:app", exp=1)
    (tmp_path / "jwt").write_text(token)
    script = tmp_path / "get-token"
    script.write_text(
        "#!/bin/sh\n"
        "set -x\n"
        f"TOKEN=$(cat {tmp_path / 'jwt'})\n"
        'echo "exchanging $TOKEN with https://idp.example/token" >/dev/null\n'
        "exit 7\n"
    )
    script.chmod(0o700)
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource((str(script),)).read_token()
    message = str(info.value)
    assert "status 7" in message
    assert "<redacted>" in message
    assert "https://idp.example/token" in message  # what went wrong is still there
    for part in (token, *token.split(".")):
        assert part not in message


@pytest.mark.timeout(30)
def test_command_stderr_excerpt_redacts_other_token_shapes() -> None:
    secrets = [
        "FwoGZXIvYXdzEBYaDH7vR0mWz+2kQ/9sLCKGAXbL3iXq8Yb4y2mJtN1rP0sU5vW6xZ7aB8cD9eF0gH1iJ2kL3m==",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ]
    code = "import sys; sys.stderr.write(' '.join(sys.argv[1:]) + ' rejected'); sys.exit(1)"
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource((*python_command(code), *secrets)).read_token()
    message = str(info.value)
    assert message.endswith("rejected")
    for secret in secrets:
        assert secret not in message
        assert secret[8:24] not in message


@pytest.mark.timeout(30)
def test_command_failures_are_retryable_but_a_missing_command_is_not(tmp_path: Path) -> None:
    failing = CommandTokenSource(python_command("raise SystemExit(1)"))
    with pytest.raises(TokenSourceError) as info:
        failing.read_token()
    assert info.value.retryable is True
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource(python_command("pass")).read_token()  # ran, printed nothing
    assert info.value.retryable is True
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource((str(tmp_path / "absent"),)).read_token()
    assert info.value.retryable is False


@pytest.mark.timeout(30)
def test_command_killed_by_a_signal_says_so() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    with pytest.raises(TokenSourceError, match="killed by signal 15") as info:
        CommandTokenSource(python_command(code)).read_token()
    assert info.value.retryable is True


@pytest.mark.timeout(30)
def test_command_timeout_is_not_extended_by_a_grandchild_holding_the_pipes(
    tmp_path: Path,
) -> None:
    script = tmp_path / "get-token"
    script.write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n")
    script.chmod(0o700)
    source = CommandTokenSource((str(script),), timeout_seconds=0.5)
    with pytest.raises(TokenSourceError, match=r"0\.5 s") as info:
        source.read_token()
    assert info.value.retryable is True


@pytest.mark.timeout(30)
def test_command_non_zero_exit_without_stderr() -> None:
    with pytest.raises(TokenSourceError, match="status 1: no stderr"):
        CommandTokenSource(python_command("raise SystemExit(1)")).read_token()


@pytest.mark.timeout(30)
def test_command_timeout() -> None:
    source = CommandTokenSource(
        python_command(f"import time; print({TOKEN_A!r}, flush=True); time.sleep(20)"),
        timeout_seconds=0.5,
    )
    started = time.monotonic()
    with pytest.raises(TokenSourceError) as info:
        source.read_token()
    assert time.monotonic() - started < 10
    assert "0.5 s" in str(info.value)
    assert TOKEN_A not in str(info.value)


@pytest.mark.timeout(30)
def test_command_missing_executable(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-token-command")
    with pytest.raises(TokenSourceError) as info:
        CommandTokenSource((missing, "--flag")).read_token()
    assert "not found" in str(info.value)
    assert missing in str(info.value)


@pytest.mark.timeout(30)
def test_command_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho token\n")
    script.chmod(0o600)
    with pytest.raises(TokenSourceError, match="not executable"):
        CommandTokenSource((str(script),)).read_token()


@pytest.mark.timeout(30)
def test_command_empty_stdout_is_an_error() -> None:
    with pytest.raises(TokenSourceError, match="empty"):
        CommandTokenSource(python_command("pass")).read_token()


@pytest.mark.timeout(30)
def test_command_runs_without_a_shell() -> None:
    # With a shell, ``;`` would end the command; without one it is an argument.
    code = "import sys; print('tok-' + '-'.join(sys.argv[1:]))"
    source = CommandTokenSource((*python_command(code), "a;", "echo", "$HOME"))
    assert source.read_token() == "tok-a;-echo-$HOME"


# -- from spec ----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_token_source_from_spec_builds_each_kind(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN_A)
    assert token_source_from_spec(TokenSpec(kind="file", file=path)).read_token() == TOKEN_A
    assert token_source_from_spec(TokenSpec(kind="string", string=TOKEN_B)).read_token() == TOKEN_B

    def get_token() -> str:
        return TOKEN_A

    callable_source = token_source_from_spec(TokenSpec(kind="callable", function=get_token))
    assert callable_source.read_token() == TOKEN_A
    assert "get_token" in callable_source.description
    command = python_command(f"print({TOKEN_B!r})")
    command_source = token_source_from_spec(TokenSpec(kind="command", command=command))
    assert command_source.read_token() == TOKEN_B


# -- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [4, 20000])
def test_check_token_accepts_the_limits(length: int) -> None:
    assert check_token("t" * length, "token string") == "t" * length


@pytest.mark.parametrize("length", [3, 20001])
def test_check_token_rejects_outside_the_limits(length: int) -> None:
    token = "t" * length
    with pytest.raises(TokenSourceError) as info:
        check_token(token, "token string", path="/var/run/token")
    assert str(length) in str(info.value)
    assert token not in str(info.value)
    assert info.value.path == "/var/run/token"


def test_check_token_strips_before_counting() -> None:
    with pytest.raises(TokenSourceError):
        check_token("  abc  ", "token string")
    assert check_token("  abcd  ", "token string") == "abcd"


def test_check_token_rejects_whitespace_only() -> None:
    with pytest.raises(TokenSourceError, match="token string is empty"):
        check_token(" \n\t ", "token string")


# -- claims -------------------------------------------------------------------------------------


def test_peek_claims_of_a_jwt() -> None:
    token = make_jwt(
        iss="https://oidc.example.com/id/ABC",
        sub="system:serviceaccount:default:app",
        aud=["sts.amazonaws.com", "other"],
        exp=1767272400,
        iat=1767268800,
    )
    claims = peek_claims(token)
    assert claims is not None
    assert claims.issuer == "https://oidc.example.com/id/ABC"
    assert claims.subject == "system:serviceaccount:default:app"
    assert claims.audience == ("sts.amazonaws.com", "other")
    assert claims.expires_at == datetime(2026, 1, 1, 13, 0, tzinfo=timezone.utc)
    assert claims.issued_at == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_peek_claims_does_not_check_expiry_or_audience() -> None:
    claims = peek_claims(make_jwt(iss="i", sub="s", aud="sts.amazonaws.com", exp=1000))
    assert claims is not None
    assert claims.audience == ("sts.amazonaws.com",)
    assert claims.expires_at == datetime.fromtimestamp(1000, tz=timezone.utc)


def test_peek_claims_tolerates_missing_and_odd_claims() -> None:
    claims = peek_claims(make_jwt(sub="s", exp="tomorrow", iat=True))
    assert claims is not None
    assert claims.issuer is None
    assert claims.audience == ()
    assert claims.expires_at is None
    assert claims.issued_at is None


@pytest.mark.parametrize(
    "token", [TOKEN_A, "Atza|IQEBLjAsAhQq", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24.sig"]
)
def test_peek_claims_of_an_opaque_token_is_none(token: str) -> None:
    assert peek_claims(token) is None


# -- identity and session names -----------------------------------------------------------------


def test_token_identity_is_stable_across_reminted_tokens() -> None:
    first = make_jwt(iss="https://issuer", sub="system:serviceaccount:ns:app", aud="sts", iat=1)
    second = make_jwt(iss="https://issuer", sub="system:serviceaccount:ns:app", aud="sts", iat=2)
    assert first != second
    assert token_identity(first, peek_claims(first)) == token_identity(second, peek_claims(second))


def test_token_identity_ignores_audience_order() -> None:
    first = make_jwt(iss="https://issuer", sub="s", aud=["a", "b"])
    second = make_jwt(iss="https://issuer", sub="s", aud=["b", "a"])
    assert token_identity(first, peek_claims(first)) == token_identity(second, peek_claims(second))


@pytest.mark.parametrize(
    "other",
    [
        {"iss": "https://issuer", "sub": "system:serviceaccount:ns:other", "aud": "sts"},
        {"iss": "https://other-issuer", "sub": "system:serviceaccount:ns:app", "aud": "sts"},
        {"iss": "https://issuer", "sub": "system:serviceaccount:ns:app", "aud": "other"},
    ],
    ids=["subject", "issuer", "audience"],
)
def test_token_identity_differs_for_another_identity(other: dict[str, object]) -> None:
    base = make_jwt(iss="https://issuer", sub="system:serviceaccount:ns:app", aud="sts")
    changed = make_jwt(**other)
    assert token_identity(base, peek_claims(base)) != token_identity(changed, peek_claims(changed))


def test_token_identity_of_opaque_tokens_is_a_hash() -> None:
    identity = token_identity(TOKEN_A, None)
    assert identity == hashlib.sha256(("opaque\n" + TOKEN_A).encode()).hexdigest()
    assert identity != token_identity(TOKEN_B, None)
    assert TOKEN_A not in identity


def test_token_identity_does_not_show_the_subject() -> None:
    token = make_jwt(iss="https://issuer", sub="alice@example.com")
    assert "alice" not in token_identity(token, peek_claims(token))


def test_default_session_name() -> None:
    subject = "system:serviceaccount:payments:api"
    token = make_jwt(iss="https://issuer", sub=subject, aud="sts")
    identity = token_identity(token, peek_claims(token))
    name = default_session_name(identity)
    assert name == default_session_name(identity)
    assert SESSION_NAME_PATTERN.match(name)
    assert 2 <= len(name) <= 64
    assert subject not in name
    assert "payments" not in name
    assert name != default_session_name(token_identity(TOKEN_A, None))

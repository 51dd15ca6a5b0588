"""The warm-cache ``credential-process`` path: fingerprint, index, entry reading, margin, files.

Everything here runs in-process against files in ``tmp_path``, except the checks of what a
fresh interpreter imports, which need one. The full path's own writer (``CredentialCache``)
produces the entries, so the fast path is checked against the format it must read.
"""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import jwt
import pytest

from webid_provider import __version__, _margin
from webid_provider._cache import CacheEntry, CredentialCache
from webid_provider._cli import _fast, _fingerprint, _version
from webid_provider._cli._documents import credential_process_document, credential_process_text
from webid_provider._cli._fingerprint import IndexRecord
from webid_provider._files import UnsafeFileError, read_private_file
from webid_provider._jwt import peek_claims, token_identity
from webid_provider._result import AssumedRoleUser, WebIdentityResult
from webid_provider._settings import DEFAULT_CACHE_DIR, resolve_cache_dir

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
KEY = "arwwi-" + "ab" * 20
HMAC_KEY = "a-test-only-hmac-key-of-at-least-32-bytes"


def make_token(sub: str = "system:serviceaccount:ns:app", iat: int = 1) -> str:
    claims = {"iss": "https://issuer", "sub": sub, "aud": "sts.amazonaws.com", "iat": iat}
    return jwt.encode(claims, HMAC_KEY, algorithm="HS256")


def make_result(
    *,
    seconds_left: float = 3600,
    lifetime: float = 3600,
    arn: Optional[str] = None,
    now: datetime = NOW,
) -> WebIdentityResult:
    expiration = now + timedelta(seconds=seconds_left)
    return WebIdentityResult(
        access_key_id="ASIAEXAMPLEACCESSKEY",
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token="FwoGZXIvYXdzEXAMPLE-session-token",
        expiration=expiration,
        obtained_at=expiration - timedelta(seconds=lifetime),
        assumed_role_user=AssumedRoleUser(
            arn=arn or "arn:aws:sts::123456789012:assumed-role/web-role/session-1",
            assumed_role_id="AROAEXAMPLE:session-1",
        ),
        subject_from_web_identity_token="system:serviceaccount:ns:app",
        packed_policy_size=7,
    )


class Host:
    """A cache directory with one entry, an index record for it, and a token file."""

    def __init__(self, tmp_path: Path) -> None:
        self.cache_dir = tmp_path / "cache"
        self.token_file = tmp_path / "token"
        self.token_file.write_text(make_token())
        self.config = tmp_path / "config"
        self.config.write_text("[profile wi]\nregion = us-east-1\n")
        self.environ = {
            "HOME": str(tmp_path / "home"),
            "PATH": "/usr/bin",
            "AWS_CONFIG_FILE": str(self.config),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/web-role",
            "WEBID_PROVIDER_CACHE_DIR": str(self.cache_dir),
        }
        self.arguments = ["credential-process", "--role-session-name", "s1"]
        self.cache = CredentialCache(self.cache_dir)

    def store(
        self,
        result: WebIdentityResult,
        *,
        refresh_in: float = 1800,
        margin: float = 900.0,
        now: datetime = NOW,
    ) -> None:
        entry = CacheEntry(
            key=KEY,
            result=result,
            role_arn="arn:aws:iam::123456789012:role/web-role",
            role_session_name="s1",
            refresh_at=now + timedelta(seconds=refresh_in),
        )
        assert self.cache.write(entry)
        token = self.token_file.read_text()
        record = IndexRecord(
            key=KEY,
            token_file=str(self.token_file),
            token_identity=token_identity(token, peek_claims(token)),
            margin_seconds=margin,
        )
        fingerprint = self.fingerprint()
        assert fingerprint is not None
        assert _fingerprint.write_index(str(self.cache_dir), fingerprint, record)

    def fingerprint(self) -> Optional[str]:
        return _fingerprint.fingerprint(self.arguments[1:], self.environ, __version__)

    def output(self, *, now: datetime = NOW) -> Optional[str]:
        return _fast.credential_process_output(
            self.arguments, self.environ, now=now, rng=random.Random(7)
        )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


# -- the output -------------------------------------------------------------------------------


def test_warm_output_is_byte_identical_to_the_full_paths(host: Host) -> None:
    result = make_result()
    host.store(result)
    assert host.output() == credential_process_text(credential_process_document(result))


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sts::123456789012:assumed-role/r/s",
        "arn:aws-cn:sts::123456789012:assumed-role/r/s",
        "arn:aws:iam::123456789012:role/r",
        "arn:aws:sts::12345678901:assumed-role/r/s",
        "arn:aws:s3::123456789012:x",
        "weird",
        "arn:aws:sts::١٢٣٤٥٦٧٨٩٠١٢:assumed-role/r/s",
    ],
)
def test_account_id_is_parsed_as_the_result_does(host: Host, arn: str) -> None:
    result = make_result(arn=arn)
    host.store(result)
    output = host.output()
    assert output is not None
    assert json.loads(output).get("AccountId") == result.account_id


# -- when the fast path declines ------------------------------------------------------------


def test_no_index_record_declines(host: Host) -> None:
    assert host.output() is None


@pytest.mark.parametrize(
    "arguments",
    [
        ["credential-process", "--role-session-name", "s1", "--debug"],
        ["credential-process", "--role-session-name", "s1", "--no-cache"],
        ["credential-process", "--role-session-name", "s1", "--help"],
        ["credential-process", "--role-session-name", "s1", "--policy", "file://p.json"],
        ["env", "--role-session-name", "s1"],
        [],
    ],
    ids=["debug", "no-cache", "help", "file-param", "other-command", "nothing"],
)
def test_flags_that_need_the_full_path_decline(host: Host, arguments: list[str]) -> None:
    host.arguments = arguments
    host.store(make_result())  # a record for exactly these arguments exists
    assert host.output() is None


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.arguments.append("--region=eu-west-1"),
        lambda h: h.environ.update(AWS_REGION="eu-west-1"),
        lambda h: h.environ.update(AWS_PROFILE="wi"),
        lambda h: h.environ.update(WEBID_PROVIDER_SOMETHING="x"),
        lambda h: h.environ.update(HOME="/elsewhere"),
        lambda h: h.config.write_text("[profile wi]\nregion = eu-west-1\n"),
        lambda h: Path(h.environ["AWS_SHARED_CREDENTIALS_FILE"]).write_text("[default]\n"),
    ],
    ids=["argument", "env", "profile", "webid-env", "home", "config", "credentials-file"],
)
def test_any_change_of_an_input_declines(host: Host, change: Callable[[Host], None]) -> None:
    host.store(make_result())
    assert host.output() is not None
    change(host)
    assert host.output() is None


def test_unrelated_environment_keeps_the_fingerprint(host: Host) -> None:
    before = host.fingerprint()
    host.environ.update(PATH="/other", LANG="C", TERM="dumb")
    assert host.fingerprint() == before


def test_token_of_another_identity_declines_and_a_rotation_does_not(host: Host) -> None:
    host.store(make_result())
    host.token_file.write_text(make_token(iat=2))  # kubelet rotation: same identity
    assert host.output() is not None
    host.token_file.write_text(make_token(sub="system:serviceaccount:ns:other"))
    assert host.output() is None
    host.token_file.unlink()
    assert host.output() is None


def test_symlinked_token_file_is_followed(host: Host, tmp_path: Path) -> None:
    data = tmp_path / "..data"
    data.mkdir()
    (data / "token").write_text(make_token(iat=3))
    host.store(make_result())
    host.token_file.unlink()
    host.token_file.symlink_to(data / "token")
    assert host.output() is not None


def test_fifo_in_place_of_the_token_declines_without_blocking(host: Host) -> None:
    host.store(make_result())
    host.token_file.unlink()
    os.mkfifo(host.token_file)
    assert host.output() is None


@pytest.mark.parametrize(
    ("seconds_left", "refresh_in", "margin", "served"),
    [
        (3600, 1800, 900.0, True),
        (14 * 60, 600, 900.0, False),  # inside botocore's window: the full path refreshes
        (930, 600, 900.0, False),  # 15 min, but not the jitter (60-180 s) on top: refresh
        (1081, 600, 900.0, True),
        (14 * 60, 600, 0.0, True),  # sessions too short for a margin: hand out as is
        (3600, -1, 900.0, False),  # the writer's refresh time has come
        (50, 10, 0.0, False),  # too close to expiry for anyone
    ],
)
def test_entry_is_served_only_with_the_margin_and_before_its_refresh_time(
    host: Host, seconds_left: float, refresh_in: float, margin: float, served: bool
) -> None:
    host.store(make_result(seconds_left=seconds_left), refresh_in=refresh_in, margin=margin)
    assert (host.output() is not None) is served


def test_expired_entry_declines(host: Host) -> None:
    host.store(make_result(seconds_left=600), refresh_in=60, margin=0.0)
    assert host.output(now=NOW + timedelta(seconds=601)) is None


# -- entries: the fast path accepts exactly what the full path accepts ----------------------


def _entry_document(host: Host) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((host.cache_dir / f"{KEY}.json").read_text())
    return document


CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "version": lambda d: d.update(Version=2),
    "key": lambda d: d.update(Key="arwwi-" + "0" * 40),
    "no-response": lambda d: d.pop("Response"),
    "no-secret": lambda d: d["Response"]["Credentials"].pop("SecretAccessKey"),
    "empty-token": lambda d: d["Response"]["Credentials"].update(SessionToken=""),
    "naive-expiration": lambda d: d["Response"]["Credentials"].update(
        Expiration="2026-01-01T13:00:00"
    ),
    "naive-obtained-at": lambda d: d.update(ObtainedAt="2026-01-01T12:00:00"),
    "no-obtained-at": lambda d: d.pop("ObtainedAt"),
    "bad-user": lambda d: d["Response"].update(AssumedRoleUser={"Arn": ""}),
    "bad-size": lambda d: d["Response"].update(PackedPolicySize="7"),
    "bool-size": lambda d: d["Response"].update(PackedPolicySize=True),
    "bad-audience": lambda d: d["Response"].update(Audience=5),
    "credentials-list": lambda d: d["Response"].update(Credentials=["x"]),
    "no-refresh-at": lambda d: d.update(RefreshAt=None),
    "role-not-text": lambda d: d.update(RoleArn=5),
    "overflowing-expiration": lambda d: d["Response"]["Credentials"].update(
        Expiration="9999-12-31T23:59:59-23:59"
    ),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_entries_are_refused_by_both_paths(
    host: Host, corrupt: Callable[[dict[str, Any]], None]
) -> None:
    host.store(make_result())
    document = _entry_document(host)
    corrupt(document)
    path = host.cache_dir / f"{KEY}.json"
    path.write_text(json.dumps(document))
    full = host.cache.read(KEY, now=NOW)
    if full is not None:  # only "no-refresh-at" is readable, and then the full path decides
        assert full.refresh_at is None
    assert host.output() is None


@pytest.mark.parametrize("layout", ["group-writable", "symlink"])
def test_a_cache_directory_the_full_path_refuses_is_refused(
    host: Host, tmp_path: Path, layout: str
) -> None:
    host.store(make_result())
    assert host.output() is not None
    if layout == "group-writable":
        host.cache_dir.chmod(0o770)
    else:
        real = tmp_path / "real-cache"
        host.cache_dir.rename(real)
        host.cache_dir.symlink_to(real)
    assert host.output() is None


def test_an_unforeseen_failure_falls_back_to_the_full_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: Any, **__: Any) -> Optional[str]:
        raise OverflowError("anything")

    monkeypatch.setattr(_fast, "credential_process_output", broken)
    assert _fast.run(["credential-process"]) is None


def test_an_entry_the_cache_reads_is_read_with_the_same_values(host: Host) -> None:
    result = make_result()
    host.store(result)
    entry = _fast.read_entry(str(host.cache_dir), KEY)
    assert entry is not None
    assert (entry.access_key_id, entry.expiration, entry.account_id) == (
        result.access_key_id,
        result.expiration,
        result.account_id,
    )


def test_symlinked_or_foreign_entry_is_refused(host: Host, tmp_path: Path) -> None:
    host.store(make_result())
    path = host.cache_dir / f"{KEY}.json"
    elsewhere = tmp_path / "planted.json"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert host.output() is None
    path.unlink()
    elsewhere.rename(path)
    assert host.output() is not None
    if os.getuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(path, 65534, 65534)
    assert host.output() is None


# -- the index ------------------------------------------------------------------------------


def test_index_record_round_trip_is_private(host: Host) -> None:
    record = IndexRecord(KEY, "/var/run/token", "f" * 64, 900.0)
    host.cache_dir.mkdir(mode=0o700)
    assert _fingerprint.write_index(str(host.cache_dir), "c" * 64, record)
    path = Path(_fingerprint.index_path(str(host.cache_dir), "c" * 64))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _fingerprint.read_index(str(host.cache_dir), "c" * 64) == record
    assert _fingerprint.read_index(str(host.cache_dir), "d" * 64) is None
    assert [p.name for p in host.cache_dir.iterdir()] == [path.name]


@pytest.mark.parametrize(
    "change",
    [
        {"Key": "../../etc/passwd"},
        {"Key": "arwwi-XYZ"},
        {"Fingerprint": "e" * 64},
        {"Version": 2},
        {"MarginSeconds": "900"},
        {"MarginSeconds": True},
        {"MarginSeconds": -1},
        {"TokenFile": ""},
        {"TokenIdentity": None},
    ],
)
def test_malformed_index_records_are_ignored(host: Host, change: dict[str, Any]) -> None:
    host.cache_dir.mkdir(mode=0o700)
    record = IndexRecord(KEY, "/var/run/token", "f" * 64, 900.0)
    assert _fingerprint.write_index(str(host.cache_dir), "c" * 64, record)
    path = Path(_fingerprint.index_path(str(host.cache_dir), "c" * 64))
    document = json.loads(path.read_text())
    document.update(change)
    path.write_text(json.dumps(document))
    assert _fingerprint.read_index(str(host.cache_dir), "c" * 64) is None


def test_writing_refuses_a_key_that_is_not_a_cache_key(host: Host) -> None:
    host.cache_dir.mkdir(mode=0o700)
    record = IndexRecord("../evil", "/t", "f" * 64, 0.0)
    assert _fingerprint.write_index(str(host.cache_dir), "c" * 64, record) is False
    assert list(host.cache_dir.iterdir()) == []


@pytest.mark.parametrize("source", ["argument", "argument=", "environment", "default"])
def test_cache_directory_is_resolved_as_settings_do(
    source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ = {"HOME": str(tmp_path / "home")}
    monkeypatch.setenv("HOME", environ["HOME"])
    arguments: list[str] = []
    value: Any = DEFAULT_CACHE_DIR
    if source.startswith("argument"):
        value = "~/my-cache"
        arguments = ["--cache-dir=~/my-cache"] if source.endswith("=") else ["--cache-dir", value]
    elif source == "environment":
        environ["WEBID_PROVIDER_CACHE_DIR"] = "~/env-cache"
    assert _fingerprint.cache_directory(arguments, environ) == str(
        resolve_cache_dir(value, environ)
    )


def test_unreadable_config_means_no_fingerprint(host: Host) -> None:
    host.config.unlink()
    os.mkfifo(host.config)
    assert host.fingerprint() is None  # and the FIFO did not block


def test_symlinked_config_is_hashed_through_the_link(host: Host, tmp_path: Path) -> None:
    before = host.fingerprint()
    target = tmp_path / "real-config"
    host.config.rename(target)
    host.config.symlink_to(target)
    assert host.fingerprint() == before


# -- files ------------------------------------------------------------------------------------


def test_read_followed_file_bounds(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert _fingerprint.read_followed_file(str(path), max_bytes=100) == b"x" * 100
    with pytest.raises(UnsafeFileError):
        _fingerprint.read_followed_file(str(path), max_bytes=99)
    with pytest.raises(UnsafeFileError):
        _fingerprint.read_followed_file(str(tmp_path), max_bytes=99)
    with pytest.raises(FileNotFoundError):
        _fingerprint.read_followed_file(str(tmp_path / "absent"), max_bytes=99)


def test_read_private_file_refuses_what_it_must(tmp_path: Path) -> None:
    path = tmp_path / "entry"
    path.write_bytes(b"data")
    assert read_private_file(path, max_bytes=4) == b"data"
    with pytest.raises(UnsafeFileError):
        read_private_file(path, max_bytes=3)
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(UnsafeFileError):
        read_private_file(link, max_bytes=10)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFileError):
        read_private_file(fifo, max_bytes=10)
    with pytest.raises(FileNotFoundError):
        read_private_file(tmp_path / "absent", max_bytes=10)
    assert isinstance(UnsafeFileError("x"), OSError)


# -- margin and version -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "minimum", "margin"),
    [
        (None, 900.0, 900.0),  # STS's default: one hour
        (3600, 900.0, 900.0),
        (1801, 900.0, 900.0),
        (1800, 900.0, 0.0),  # at most twice the margin: hand out what we have
        (900, 900.0, 0.0),
        (None, 0.0, 0.0),
        (None, 300.0, 300.0),
        (None, 1800.0, 0.0),
    ],
)
def test_effective_margin(duration: Optional[int], minimum: float, margin: float) -> None:
    assert _margin.effective_margin(duration, minimum) == margin


def test_jitter_stays_within_seven_to_twenty_percent() -> None:
    rng = random.Random(1)
    draws = [_margin.jittered(900.0, rng) for _ in range(500)]
    draws += [_margin.jittered(900.0) for _ in range(500)]
    assert 960.0 <= min(draws) < 980.0
    assert 1060.0 < max(draws) <= 1080.0
    assert _margin.jittered(0.0) == 0.0


@pytest.mark.parametrize("value", ["-1", "x", "nan", "50000"])
def test_min_remaining_is_checked(value: str) -> None:
    with pytest.raises(ValueError, match="seconds"):
        _margin.parse_min_remaining(value)


@pytest.mark.parametrize(
    ("arguments", "fast"),
    [
        (["--version"], True),
        (["--debug", "--version"], True),
        (["credential-process", "--version"], True),
        (["--help", "--version"], False),
        (["credential-process", "--profile", "x", "--version"], False),
        (["exec", "--", "x", "--version"], False),
        (["credential-process"], False),
    ],
)
def test_version_is_answered_early_only_where_argparse_would(
    arguments: list[str], fast: bool
) -> None:
    assert _version.version_requested(arguments) is fast


def _modules_of(argv: list[str], env: dict[str, str], status: int = 0) -> tuple[str, set[str]]:
    code = (
        "import sys\n"
        "from webid_provider._cli import main\n"
        f"status = main({argv!r})\n"
        "heavy = {m.split('.')[0] for m in sys.modules}\n"
        "print('MODULES', ','.join(sorted(heavy & {'botocore', 'boto3', 'jwt', 'cryptography',"
        " 'dataclasses', 'argparse'})))\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, done.stderr
    out, _, modules = done.stdout.rpartition("MODULES ")
    return out, {name for name in modules.strip().split(",") if name}


def test_version_imports_no_botocore() -> None:
    out, modules = _modules_of(["--version"], dict(os.environ))
    assert out.startswith(f"webid-provider {__version__} (botocore ")
    assert modules == set()


def test_version_line_names_the_installed_botocore() -> None:
    import botocore

    assert f"(botocore {botocore.__version__}, Python " in _version.version_text()


def test_fast_path_in_a_fresh_interpreter_imports_nothing_heavy(host: Host) -> None:
    now = datetime.now(timezone.utc)
    result = make_result(now=now)
    host.store(result, now=now)
    out, modules = _modules_of(host.arguments, host.environ)
    assert out == credential_process_text(credential_process_document(result))
    assert modules == set()
    # The check can fail: a run the fast path declines (here: bad input, exit 2, before any
    # network call) goes down the full path, which imports botocore.
    out, modules = _modules_of([*host.arguments, "--duration-seconds", "5"], host.environ, 2)
    assert out == ""
    assert {"botocore", "argparse"} <= modules

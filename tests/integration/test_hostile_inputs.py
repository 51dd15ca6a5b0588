"""Hostile files, commands and environments, with real processes against the STS emulator.

Issue 11: a FIFO named like a cache entry or given as the token file must hang no process; a
HOME-less uid without a passwd entry gets its one warning; ``cache clear`` keeps lock files;
a token command's failure exits 1 (2 only when it is missing); botocore's DEBUG logs of
requests signed with our credentials carry no session token.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import filelock
import pytest

import webid_provider
from webid_provider._refresh_state import clear_memory_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BIN = Path(sys.executable).parent
WEBID = str(BIN / "webid-provider")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
UNNAMED_UID = 54321  # no passwd entry on a test machine: checked below

# Get credentials the way an application does; print the access key id.
SERVE = textwrap.dedent(
    """
    import boto3, webid_provider
    webid_provider.register()
    print(boto3.Session().get_credentials().get_frozen_credentials().access_key)
    """
)


def _env(irsa_env: Any, **changes: str) -> dict[str, str]:
    return {**os.environ, **irsa_env.env, **changes}


def _run(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # The timeout turns a hang (today's bug) into a failure instead of a stuck suite.
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kwargs)


def _session_token_in(cache_dir: Path) -> str:
    (entry,) = cache_dir.glob("arwwi-*.json")
    return str(json.loads(entry.read_text())["Response"]["Credentials"]["SessionToken"])


# -- item 5: a FIFO named like an entry --------------------------------------------------------


@pytest.mark.timeout(180)
def test_fifo_named_like_an_entry_hangs_no_process_and_not_cache_list(irsa_env: Any) -> None:
    env = _env(irsa_env)
    first = _run([sys.executable, "-c", SERVE], env, check=True)
    (entry,) = irsa_env.cache_dir.glob("arwwi-*.json")
    entry.unlink()
    os.mkfifo(entry, 0o600)

    listing = _run([WEBID, "cache", "list", "--format", "json"], env)
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)["entries"]
    assert (row["path"], row["state"]) == (str(entry), "unreadable")

    workers = [
        subprocess.Popen(
            [sys.executable, "-c", SERVE],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=90) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
    keys = {out.strip() for out, _ in outputs}
    assert len(keys) == 1
    assert keys != {first.stdout.strip()}  # the FIFO was a miss: new credentials
    assert stat.S_ISREG(os.lstat(entry).st_mode)  # and it was replaced by a real entry
    assert irsa_env.emulator.assume_count == 2


# -- item 9: a FIFO as the token file ------------------------------------------------------------


def test_fifo_token_file_is_refused_by_name_in_every_way_in(irsa_env: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "token-fifo"
    os.mkfifo(fifo)
    env = _env(irsa_env, AWS_WEB_IDENTITY_TOKEN_FILE=str(fifo))

    for argv in (
        [WEBID, "credential-process"],
        [
            WEBID,
            "assume-role-with-web-identity",
            "--role-arn",
            irsa_env.role_arn,
            "--role-session-name",
            "fifo",
            "--web-identity-token-file",
            str(fifo),
        ],
    ):
        result = _run(argv, env)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"webid-provider: error: token file {fifo} is a FIFO")

    result = _run([sys.executable, "-c", SERVE], env)
    assert result.returncode != 0
    assert f"token file {fifo} is a FIFO" in result.stderr
    assert irsa_env.emulator.assume_count == 0


# -- item 10: no HOME, no passwd entry -----------------------------------------------------------

# Three sessions get credentials; the settings are resolved several times along the way.
# "patch-pwd": no passwd entry by patching the lookup. "setuid UID": really become a uid without
# an entry (as root). The interpreter lives where that uid cannot read, so the modules a session
# needs are imported (and an unsigned client built) before the switch.
HOMELESS = textwrap.dedent(
    """
    import logging, os, sys
    if sys.argv[1] == "patch-pwd":
        import pwd
        def no_entry(uid):
            raise KeyError(f"getpwuid(): uid not found: {uid}")
        pwd.getpwuid = no_entry
    else:
        import boto3, botocore.session, encodings.idna, importlib, pkgutil, webid_provider, pwd
        OPTIONAL = ("webid_provider.testing", "webid_provider.__main__",
                    "webid_provider._aio_glue", "webid_provider._aiobotocore")
        for found in pkgutil.walk_packages(webid_provider.__path__, "webid_provider."):
            if not found.name.startswith(OPTIONAL):  # aio glue: needs the aio extra
                importlib.import_module(found.name)  # the interpreter may be unreadable later
        from botocore import UNSIGNED
        from botocore.config import Config
        warm_up = botocore.session.get_session().create_client(
            "sts", config=Config(signature_version=UNSIGNED)
        )
        try:  # an unsigned call: the emulator refuses it, after the HTTP stack and parser ran
            warm_up.get_caller_identity()
        except Exception:
            pass
        uid = int(sys.argv[2])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    assert "HOME" not in os.environ
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import webid_provider
    for _ in range(3):
        session = webid_provider.session()
        print(session.get_credentials().get_frozen_credentials().access_key)
    print(os.getuid(), file=sys.stderr)
    """
)


def _homeless_env(irsa_env: Any, token_file: Path) -> dict[str, str]:
    env = _env(irsa_env, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file))
    for name in ("HOME", "WEBID_PROVIDER_CACHE_DIR"):
        env.pop(name, None)
    return env


def _assert_one_memory_only_warning(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert len(set(result.stdout.split())) == 1  # one set of credentials, shared in memory
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, result.stderr
    assert "memory-only" in warnings[0]
    assert "WEBID_PROVIDER_CACHE_DIR" in warnings[0]


def test_no_home_and_no_passwd_entry_warns_once(irsa_env: Any) -> None:
    env = _homeless_env(irsa_env, irsa_env.token_file)
    result = _run([sys.executable, "-c", HOMELESS, "patch-pwd"], env)
    _assert_one_memory_only_warning(result)
    assert irsa_env.emulator.assume_count == 1


@pytest.mark.skipif(not IS_ROOT, reason="needs root to run as a uid without a passwd entry")
def test_a_real_uid_without_passwd_entry_and_home_warns_once(irsa_env: Any) -> None:
    import pwd

    with pytest.raises(KeyError):
        pwd.getpwuid(UNNAMED_UID)
    shared = Path(tempfile.mkdtemp(prefix="webid-homeless-"))
    try:
        shared.chmod(0o755)
        token_file = shared / "token"
        shutil.copyfile(irsa_env.token_file, token_file)
        token_file.chmod(0o644)
        env = _homeless_env(irsa_env, token_file)
        for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env[name] = str(shared / "absent")
        result = _run([sys.executable, "-c", HOMELESS, "setuid", str(UNNAMED_UID)], env, cwd=shared)
        _assert_one_memory_only_warning(result)
        assert result.stderr.splitlines()[-1] == str(UNNAMED_UID)
        assert f"uid {UNNAMED_UID}" in result.stderr
        assert irsa_env.emulator.assume_count == 1
    finally:
        shutil.rmtree(shared)


# -- item 16: cache clear keeps lock files -------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time, filelock
    lock = filelock.FileLock(sys.argv[1], timeout=5)
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_cache_clear_all_leaves_a_held_lock_file_and_its_exclusion(irsa_env: Any) -> None:
    env = _env(irsa_env)
    _run([sys.executable, "-c", SERVE], env, check=True)
    (entry,) = irsa_env.cache_dir.glob("arwwi-*.json")
    lock_path = entry.with_suffix(".lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        result = _run([WEBID, "cache", "clear", "--all"], env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("removed 1 cache entry")
        assert not entry.exists()
        assert lock_path.exists()
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(lock_path), timeout=0.2).acquire()
    finally:
        holder.kill()
        holder.communicate(timeout=30)


# -- token command exit statuses (issue 16 papercut) ---------------------------------------------


@pytest.mark.parametrize(
    ("command", "status", "needle"),
    [
        ("{tmp}/no-such-command", 2, "was not found"),
        ("{tmp}/not-executable", 2, "is not executable"),
        ("{python} -c 'import sys; sys.stderr.write(\"idp 503\"); sys.exit(5)'", 1, "status 5"),
        ("{python} -c pass", 1, "is empty"),
    ],
    ids=["missing", "not-executable", "fails", "prints-nothing"],
)
def test_token_command_failures_exit_1_unless_the_command_is_unusable(
    irsa_env: Any, tmp_path: Path, command: str, status: int, needle: str
) -> None:
    (tmp_path / "not-executable").write_text("#!/bin/sh\necho token\n")
    (tmp_path / "not-executable").chmod(0o600)
    command = command.format(tmp=tmp_path, python=sys.executable)
    env = _env(irsa_env)
    env.pop("AWS_WEB_IDENTITY_TOKEN_FILE")
    result = _run(
        [
            WEBID,
            "credential-process",
            "--role-arn",
            irsa_env.role_arn,
            "--web-identity-token-command",
            command,
        ],
        env,
    )
    assert result.returncode == status, result.stderr
    (line,) = result.stderr.splitlines()
    assert needle in line
    assert irsa_env.emulator.assume_count == 0


def test_set_x_token_command_failure_keeps_the_jwt_out_of_the_cli_line(
    irsa_env: Any, tmp_path: Path
) -> None:
    token = irsa_env.token_file.read_text().strip()
    script = tmp_path / "get-token"
    script.write_text(
        "#!/bin/sh\nset -x\n"
        f"TOKEN=$(cat {irsa_env.token_file})\n"
        'echo "$TOKEN" | grep -q never-there\n'
    )
    script.chmod(0o700)
    env = _env(irsa_env)
    env.pop("AWS_WEB_IDENTITY_TOKEN_FILE")
    result = _run(
        [
            WEBID,
            "credential-process",
            "--role-arn",
            irsa_env.role_arn,
            "--web-identity-token-command",
            str(script),
        ],
        env,
    )
    assert result.returncode == 1
    assert "<redacted>" in result.stderr
    for part in (token, *token.split(".")):
        assert part not in result.stderr


# -- item 20: botocore's DEBUG logs --------------------------------------------------------------


def _assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        for form in (secret, quote(secret, safe=""), quote(secret, safe="/")):
            assert form not in text


def test_debug_logs_of_signed_requests_carry_no_session_token(
    irsa_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = webid_provider.session()
    session.client("sts").get_caller_identity()
    frozen = session.get_credentials().get_frozen_credentials()
    token = irsa_env.token_file.read_text().strip()

    names = {record.name for record in caplog.records}
    assert {"botocore.auth", "botocore.endpoint"} <= names  # the logs being checked exist
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "CanonicalRequest" in text
    assert "x-amz-security-token" in text.lower()
    _assert_no_secret(text, [frozen.token, frozen.secret_key, token])


# A new process served from the disk cache: a signed call and a presigned URL fetched through
# urllib3, with every logger at DEBUG on stderr.
FROM_CACHE_AT_DEBUG = textwrap.dedent(
    """
    import logging, sys
    import urllib3
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    import webid_provider
    session = webid_provider.session()
    session.client("sts").get_caller_identity()
    s3 = session.client("s3", endpoint_url=sys.argv[1])
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    urllib3.PoolManager().request("GET", url)
    print("done")
    """
)


def test_debug_logs_of_a_process_served_from_the_cache_carry_no_session_token(
    irsa_env: Any,
) -> None:
    env = _env(irsa_env)
    _run([sys.executable, "-c", SERVE], env, check=True)
    session_token = _session_token_in(irsa_env.cache_dir)
    clear_memory_state()

    result = _run([sys.executable, "-c", FROM_CACHE_AT_DEBUG, irsa_env.emulator.endpoint_url], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert irsa_env.emulator.assume_count == 1  # the second process read the cache
    assert "CanonicalRequest" in result.stderr
    assert "urllib3.connectionpool" in result.stderr
    assert "x-amz-security-token" in result.stderr.lower()
    _assert_no_secret(result.stderr, [session_token])


def test_a_process_with_botocore_at_debug_still_works_with_boto3_sessions(irsa_env: Any) -> None:
    # The filter rewrites records and never drops or breaks them.
    webid_provider.register()
    logger = logging.getLogger("botocore")
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        identity = boto3.Session().client("sts").get_caller_identity()
    finally:
        logger.setLevel(saved)
    assert identity["Arn"].endswith(f"assumed-role/webid-test/{identity['Arn'].rsplit('/', 1)[1]}")

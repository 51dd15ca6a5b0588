"""Every example in ``examples/`` runs against the emulator, as users would run it."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml

import webid_provider

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: Path, env: dict[str, str], timeout: float = 45) -> list[dict[str, Any]]:
    """Run an example as a script; return the JSON objects it printed, one per line."""
    completed = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **env},
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_boto3_session_example_sends_every_parameter(irsa_env: Any) -> None:
    outputs = _run(EXAMPLES / "boto3_session.py", irsa_env.env)

    scoped = outputs[0]["scoped"]
    assert scoped["arn"].endswith("assumed-role/webid-test/examples-scoped")
    assert scoped["lifetime_seconds"] == pytest.approx(900, abs=5)
    assert scoped["packed_policy_size"] is not None
    assert outputs[1]["callable"]["arn"].endswith("/examples-callable")
    calls = {call.role_session_name: call for call in irsa_env.emulator.calls}
    assert calls["examples-scoped"].duration_seconds == 900
    assert json.loads(calls["examples-scoped"].policy)["Statement"][0]["Effect"] == "Allow"
    assert calls["examples-scoped"].policy_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    assert all(call.error_code is None for call in calls.values())


def _profile_config(irsa_env: Any, tmp_path: Path) -> Path:
    """examples/profile_config.ini with its placeholder token path and command made real."""
    printer = tmp_path / "print_token.py"
    printer.write_text(
        "import sys\nsys.stdout.write(open(sys.argv[1], encoding='utf-8').read())\n",
        encoding="utf-8",
    )
    command = shlex.join([sys.executable, str(printer), str(irsa_env.token_file)])
    lines = []
    for line in (EXAMPLES / "profile_config.ini").read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "web_identity_token_file":
            line = f"web_identity_token_file = {irsa_env.token_file}"
        elif key == "web_identity_token_command":
            line = f"web_identity_token_command = {command}"
        lines.append(line)
    config = tmp_path / "config"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def test_profile_config_example_uses_every_key(
    irsa_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(_profile_config(irsa_env, tmp_path)))
    webid_provider.register(cache_dir=None)

    deployer = boto3.Session(profile_name="webid-deployer").client("sts").get_caller_identity()
    command = boto3.Session(profile_name="webid-command").client("sts").get_caller_identity()

    assert deployer["Arn"].endswith("assumed-role/deployer/deployer-ci")
    assert command["Arn"].endswith("assumed-role/deployer/deployer-command")
    calls = {call.role_session_name: call for call in irsa_env.emulator.calls}
    file_call, command_call = calls["deployer-ci"], calls["deployer-command"]
    assert file_call.role_arn == "arn:aws:iam::123456789012:role/deployer"
    assert file_call.duration_seconds == 900
    assert json.loads(file_call.policy)["Statement"][0]["Resource"] == (
        "arn:aws:s3:::deploy-artifacts/*"
    )
    assert file_call.policy_arns == (
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/deploy-boundary",
    )
    assert file_call.provider_id is None  # commented out: the token is a JWT
    assert command_call.duration_seconds == 3600
    assert command_call.token_sha256 == file_call.token_sha256  # the command printed the token
    assert all(call.error_code is None for call in calls.values())


def test_credential_process_example_serves_plain_botocore(
    irsa_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Path(sys.executable).with_name("webid-provider")
    if not cli.exists():
        pytest.skip("the webid-provider command is not installed next to this Python")
    lines = []
    for line in (EXAMPLES / "credential_process.ini").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "web_identity_token_file":
            line = f"web_identity_token_file = {irsa_env.token_file}"
        elif key.strip() == "credential_process":
            line = f"credential_process = {cli} {value.split('webid-provider', 1)[1].strip()}"
        lines.append(line)
    config = tmp_path / "config"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))

    # No register(): this is botocore's own ProcessProvider running our command, twice.
    for _ in range(2):
        session = boto3.Session(profile_name="app")
        credentials = session.get_credentials()
        assert credentials is not None
        assert credentials.method == "custom-process"
        identity = session.client("sts").get_caller_identity()

    assert identity["Arn"].endswith("assumed-role/my-app/my-app")
    (call,) = irsa_env.emulator.calls  # the second process read the shared cache
    assert call.duration_seconds == 3600


def test_kubernetes_app_workers_share_one_sts_call(irsa_env: Any) -> None:
    env = {**irsa_env.env, "WEB_CONCURRENCY": "4"}
    (result,) = _run(EXAMPLES / "kubernetes" / "app.py", env)

    answers = result["answers"]
    assert len(answers) == 4
    assert len({answer["pid"] for answer in answers}) == 4
    assert {answer["status"] for answer in answers} == {"200 OK"}
    assert all("assumed-role/webid-test/" in answer["arn"] for answer in answers)
    assert irsa_env.emulator.assume_count == 1  # four workers, one cache, one STS call
    assert any(irsa_env.cache_dir.iterdir())


def _run_as(
    script: Path, env: dict[str, str], uid: int, gid: int, supplementary: list[int]
) -> subprocess.CompletedProcess[str]:
    """Run an example as another uid (root only), with the modules it needs imported first:
    the interpreter may live where that uid cannot read."""
    launcher = (
        "import os, runpy, sys\n"
        "import boto3, botocore.session, encodings.idna, importlib, webid_provider\n"
        "import json, pkgutil, wsgiref.util\n"
        "for found in pkgutil.walk_packages(webid_provider.__path__, 'webid_provider.'):\n"
        "    if not found.name.startswith(('webid_provider.testing', 'webid_provider.__main__',\n"
        "                                  'webid_provider._aio_glue', 'webid_provider._aiobotocore')):\n"
        "        importlib.import_module(found.name)\n"
        "import multiprocessing.connection, multiprocessing.popen_fork, multiprocessing.queues\n"
        "import multiprocessing.reduction, multiprocessing.synchronize\n"
        "from botocore import UNSIGNED\n"
        "from botocore.config import Config\n"
        "client = botocore.session.get_session().create_client(\n"
        "    'sts', config=Config(signature_version=UNSIGNED))\n"
        "try:\n"
        "    client.get_caller_identity()\n"
        "except Exception:\n"
        "    pass\n"
        "uid, gid, groups = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]\n"
        "os.setgroups([int(g) for g in groups.split(',') if g])\n"
        "os.setgid(gid)\n"
        "os.setuid(uid)\n"
        "sys.argv = [sys.argv[1]]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            launcher,
            str(script),
            str(uid),
            str(gid),
            ",".join(map(str, supplementary)),
        ],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kubernetes_example_shares_one_call_through_an_fsgroup_emptydir(
    irsa_env: Any, tmp_path: Path
) -> None:
    """deployment.yaml + app.py as written, on a simulated pod: the cache volume's root is
    root's, group fsGroup, mode 3777 (issue 11, item 11); the app runs as runAsUser."""
    documents = list(
        yaml.safe_load_all((EXAMPLES / "kubernetes" / "deployment.yaml").read_text("utf-8"))
    )
    pod = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env_spec = {item["name"]: item["value"] for item in container["env"]}
    mount_path = next(m for m in container["volumeMounts"] if m["name"] == "webid-cache")[
        "mountPath"
    ]
    security = pod["securityContext"]
    uid, gid, fs_group = security["runAsUser"], security["runAsGroup"], security["fsGroup"]
    is_root = os.geteuid() == 0

    # The pod's file system, under a root every uid may traverse.
    root = Path(tempfile.mkdtemp(prefix="webid-pod-"))
    try:
        root.chmod(0o755)
        mount = root / mount_path.lstrip("/")
        mount.mkdir(parents=True)
        for parent in mount.relative_to(root).parents:
            (root / parent).chmod(0o755)
        if is_root:
            os.chown(mount, 0, fs_group)
        mount.chmod(0o3777)
        cache_dir = root / env_spec["WEBID_PROVIDER_CACHE_DIR"].lstrip("/")
        token_file = root / "token"
        shutil.copyfile(irsa_env.token_file, token_file)
        token_file.chmod(0o644)
        env = {
            **os.environ,
            **irsa_env.env,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "WEBID_PROVIDER_CACHE_DIR": str(cache_dir),
            "AWS_CONFIG_FILE": str(root / "absent"),
            "AWS_SHARED_CREDENTIALS_FILE": str(root / "absent"),
            "WEB_CONCURRENCY": "4",
        }
        env.pop("HOME", None)  # read-only root file system: no usable home either
        script = EXAMPLES / "kubernetes" / "app.py"
        if is_root:
            completed = _run_as(script, env, uid, gid, [fs_group])
        else:  # the mount is ours then; the subdirectory is still what makes it work
            completed = subprocess.run(
                [sys.executable, str(script)],
                env=env,
                cwd=script.parent,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert completed.returncode == 0, completed.stderr[-3000:]
        (result,) = [
            json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")
        ]
        assert {answer["status"] for answer in result["answers"]} == {"200 OK"}
        assert irsa_env.emulator.assume_count == 1  # four workers, one cache, one STS call
        assert "warning" not in completed.stderr.lower()
        info = os.stat(cache_dir)
        assert stat.S_IMODE(info.st_mode) & 0o777 == 0o700
        assert info.st_uid == (uid if is_root else os.geteuid())
        assert stat.S_IMODE(os.stat(mount).st_mode) == 0o3777  # the mount is never chmodded
        assert any(cache_dir.glob("arwwi-*.json"))
    finally:
        shutil.rmtree(root)


def test_kubernetes_app_outside_its_pod_fails_fast_in_one_line() -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name != "WEBID_PROVIDER_CACHE_DIR"
    }
    script = EXAMPLES / "kubernetes" / "app.py"
    completed = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 2
    (line,) = completed.stderr.splitlines()
    assert line.startswith("app.py: error: missing AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE")
    assert "deployment.yaml" in line


def test_kubernetes_app_reports_failing_workers_in_one_line(irsa_env: Any) -> None:
    irsa_env.emulator.fail_next("AccessDenied", count=99)
    script = EXAMPLES / "kubernetes" / "app.py"
    completed = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **irsa_env.env, "WEB_CONCURRENCY": "3"},
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert completed.returncode == 1
    (line,) = completed.stderr.splitlines()
    assert line.startswith("app.py: error: 3 of 3 workers failed: ")
    assert "AccessDenied" in line


def test_kubernetes_deployment_wires_token_env_and_cache() -> None:
    documents = list(
        yaml.safe_load_all((EXAMPLES / "kubernetes" / "deployment.yaml").read_text("utf-8"))
    )
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    token_source = volumes["aws-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token_source["audience"] == "sts.amazonaws.com"
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == (
        f"{mounts['aws-token']['mountPath']}/{token_source['path']}"
    )
    assert env["AWS_ROLE_ARN"].startswith("arn:aws:iam::")
    assert "emptyDir" in volumes["webid-cache"]
    # A subdirectory the library creates 0700, not the group-writable mount root (issue 11).
    mount_path = Path(mounts["webid-cache"]["mountPath"])
    assert Path(env["WEBID_PROVIDER_CACHE_DIR"]).parent == mount_path
    assert not mounts["webid-cache"].get("readOnly", False)
    assert (
        pod["serviceAccountName"]
        == next(d for d in documents if d["kind"] == "ServiceAccount")["metadata"]["name"]
    )


class _ActionsTokenEndpoint(BaseHTTPRequestHandler):
    """Answers like GitHub's ACTIONS_ID_TOKEN_REQUEST_URL: bearer auth, ?audience=."""

    request_token = "actions-request-token"
    mint: Any = None
    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self.seen.append(
            {"auth": self.headers.get("Authorization"), "query": query, "path": self.path}
        )
        if self.headers.get("Authorization") != f"bearer {self.request_token}":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"value": self.mint(aud=query["audience"][0])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def actions_endpoint(oidc_issuer: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type(
        "Handler",
        (_ActionsTokenEndpoint,),
        {
            "seen": seen,
            "mint": staticmethod(
                lambda aud: oidc_issuer.mint(
                    sub="repo:octo-org/octo-repo:ref:refs/heads/main", aud=aud, ttl=300
                )
            ),
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/_apis/token?api-version=2.0", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_github_actions_example_exchanges_the_job_token(
    irsa_env: Any,
    actions_endpoint: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, seen = actions_endpoint
    env = {k: v for k, v in irsa_env.env.items() if k != "AWS_WEB_IDENTITY_TOKEN_FILE"}
    env.update(
        ACTIONS_ID_TOKEN_REQUEST_URL=url,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN=_ActionsTokenEndpoint.request_token,
        GITHUB_RUN_ID="4242",
    )
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE")  # the callable is the only source

    (result,) = _run(EXAMPLES / "github_actions" / "token_from_actions.py", env)

    assert result["arn"].endswith("assumed-role/webid-test/gha-4242")
    assert len(seen) == 1
    assert seen[0]["query"]["audience"] == ["sts.amazonaws.com"]
    assert seen[0]["query"]["api-version"] == ["2.0"]  # the endpoint's own query is kept
    (call,) = irsa_env.emulator.calls
    assert call.error_code is None
    assert call.token_subject == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert call.duration_seconds == 900


def test_github_actions_example_refuses_plain_http_off_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = _load(EXAMPLES / "github_actions" / "token_from_actions.py")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://token.example.com/x?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "secret")
    with pytest.raises(RuntimeError, match="non-HTTPS"):
        module.actions_id_token()
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    with pytest.raises(RuntimeError, match="id-token: write"):
        module.actions_id_token()


def test_idp_callable_example_against_the_session_emulator(irsa_env: Any) -> None:
    module = _load(EXAMPLES / "idp_callable.py")
    fetched: list[Optional[str]] = []

    def fetch() -> tuple[str, float]:
        token = irsa_env.issuer.mint(sub="user-42", ttl=600)
        fetched.append(token)
        return token, 600.0

    idp = module.StandInIdpClient(fetch)
    result = module.run(idp, role_arn=irsa_env.role_arn)

    assert result["arn"].endswith("assumed-role/webid-test/idp-example")
    assert result["idp_fetches"] == 1
    (call,) = irsa_env.emulator.calls
    assert call.token_subject == "user-42"


def test_idp_callable_example_runs_standalone() -> None:
    # No irsa_env: the script starts its own issuer and emulator on 127.0.0.1.
    (result,) = _run(EXAMPLES / "idp_callable.py", {})
    assert result == {
        "arn": "arn:aws:sts::123456789012:assumed-role/idp-example/idp-example",
        "idp_fetches": 1,
        "sts_calls": 1,
    }

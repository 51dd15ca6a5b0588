"""A WSGI app whose pre-forked workers share one set of web identity credentials.

In the pod (see ``deployment.yaml``) gunicorn runs it::

    gunicorn --workers 4 --preload --bind 0.0.0.0:8080 app:app

``webid_provider.register()`` runs once at import. With ``--preload`` that is in the gunicorn
master before it forks; without it, in every worker — either way every boto3 session created
afterwards uses our provider, and all workers share ``WEBID_PROVIDER_CACHE_DIR``: the first
worker that needs credentials calls STS under the cache's file lock, the others read its
entry. A pod makes one AssumeRoleWithWebIdentity call per credential lifetime, not one per
worker.

boto3 clients are not safe to share across ``fork()``, so each worker builds its own client
on its first request.

``python app.py`` (no gunicorn needed) forks ``WEB_CONCURRENCY`` workers the way gunicorn
does, sends each one request, and prints what they answered: the test suite runs it against
the STS emulator and counts the STS calls. Run outside its pod (no ``AWS_ROLE_ARN`` or token
file), it says so in one line and exits 2; a worker that fails is reported in one line too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterable
from typing import Any, Callable
from wsgiref.util import setup_testing_defaults

import boto3

import webid_provider

webid_provider.register()  # before any session exists; options come from the environment

_local = threading.local()


def _sts_client() -> Any:
    # One client per worker process (and thread), created after the fork.
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "pid", None) != os.getpid():
        client = boto3.Session().client("sts")
        _local.client, _local.pid = client, os.getpid()
    return client


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``GET /`` answers which role this worker runs as."""
    identity = _sts_client().get_caller_identity()
    body = json.dumps({"pid": os.getpid(), "arn": identity["Arn"]}).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def _one_request(_: int) -> dict[str, Any]:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers: status.append(s)))
    answer: dict[str, Any] = json.loads(body)
    answer["status"] = status[0]
    return answer


def _worker(index: int, results: Any) -> None:
    try:
        results.put(_one_request(index))
    except Exception as exc:  # one line for the parent instead of a traceback per worker
        results.put({"pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})


def _missing_environment() -> list[str]:
    """What the pod spec (deployment.yaml) provides and this process lacks."""
    missing = [
        name for name in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE") if not os.environ.get(name)
    ]
    token_file = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    if token_file and not os.path.isfile(token_file):
        missing.append(f"the token file {token_file}")
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        missing.append("AWS_DEFAULT_REGION")
    return missing


def main() -> int:
    missing = _missing_environment()
    if missing:
        print(
            f"app.py: error: missing {', '.join(missing)}; run it in the pod of deployment.yaml "
            "or set them as that pod spec does",
            file=sys.stderr,
        )
        return 2
    workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
    # "fork", like gunicorn: the workers inherit the registration made at import time.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_worker, args=(i, results)) for i in range(workers)]
    for process in processes:
        process.start()
    answers = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failed = [answer for answer in answers if "error" in answer]
    if failed:
        reasons = "; ".join(sorted({answer["error"] for answer in failed}))
        print(
            f"app.py: error: {len(failed)} of {workers} workers failed: {reasons}", file=sys.stderr
        )
        return 1
    print(json.dumps({"workers": workers, "answers": answers}))
    return 0 if all(p.exitcode == 0 for p in processes) else 1


if __name__ == "__main__":
    sys.exit(main())

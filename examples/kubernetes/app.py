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
the STS emulator and counts the STS calls.
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
    results.put(_one_request(index))


def main() -> int:
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
    print(json.dumps({"workers": workers, "answers": answers}))
    return 0 if all(p.exitcode == 0 for p in processes) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks: ``webid_provider`` against botocore's built-in web identity provider.

``python -m bench`` starts the strict STS emulator on loopback, runs every scenario for both
providers in the same run, and prints one markdown table (see ``bench/README.md``). Worker
processes live in :mod:`bench._workers`; the botocore side never imports ``webid_provider``.
"""

from __future__ import annotations

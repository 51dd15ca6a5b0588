"""Running a token command with bounded memory and time.

``subprocess.run(capture_output=True)`` reads everything a command prints: a command printing
1.5 GB took the reading process to 2.9 GB RSS (issue 11, item 7), and a grandchild that
inherited the pipes (a shell script's background job) kept ``communicate()`` waiting past the
timeout. Here stdout is read up to a cap and stderr is drained into a small tail buffer, both
through one selector with a deadline; past the cap or the deadline the command is killed and its
pipes closed rather than drained.

The stderr tail is the command's own diagnostics and goes into error messages, so it is handed
out only through :meth:`CommandOutcome.stderr_excerpt`, which redacts anything token-shaped.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from dataclasses import dataclass

from webid_provider._redaction import redact_token_shaped

_READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class CommandOutcome:
    """What a bounded run of a token command produced."""

    returncode: int
    stdout: bytes
    stderr_tail: bytes
    stderr_truncated: bool
    stdout_overflowed: bool
    timed_out: bool

    def stderr_excerpt(self, max_chars: int = 300) -> str:
        """The end of stderr, token-shaped parts redacted, or ``no stderr``."""
        text = self.stderr_tail.decode("utf-8", "replace")
        if self.stderr_truncated:
            # The kept tail may start inside a token: drop that partial first line, so no
            # fragment too short to look like a token survives.
            text = text.partition("\n")[2]
        text = redact_token_shaped(text).strip()
        return text[-max_chars:] if text else "no stderr"


def run_bounded(
    argv: tuple[str, ...],
    *,
    timeout_seconds: float,
    stdout_cap_bytes: int,
    stderr_kept_bytes: int,
) -> CommandOutcome:
    """Run ``argv``; read at most ``stdout_cap_bytes + 1`` of stdout and the tail of stderr.

    The command is killed as soon as stdout passes the cap or the timeout passes. Its pipes
    are closed rather than drained afterwards, so a grandchild that inherited them (a shell
    script's background job) cannot keep us waiting.

    :raises OSError: when the command cannot be started
    """
    process = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    stdout, stderr = bytearray(), bytearray()
    stderr_truncated = overflowed = timed_out = False
    deadline = time.monotonic() + timeout_seconds
    try:
        with selectors.DefaultSelector() as selector:
            for fd in (out_fd, err_fd):
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map() and not overflowed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in selector.select(remaining):
                    try:
                        chunk = os.read(key.fd, _READ_CHUNK_BYTES)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        selector.unregister(key.fd)
                    elif key.fd == out_fd:
                        stdout += chunk
                        overflowed = len(stdout) > stdout_cap_bytes
                    else:
                        stderr += chunk
                        if len(stderr) > stderr_kept_bytes:
                            del stderr[:-stderr_kept_bytes]
                            stderr_truncated = True
        if not (overflowed or timed_out):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    return CommandOutcome(
        returncode=process.returncode,
        stdout=bytes(stdout),
        stderr_tail=bytes(stderr),
        stderr_truncated=stderr_truncated,
        stdout_overflowed=overflowed,
        timed_out=timed_out,
    )

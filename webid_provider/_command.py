"""Running a token command with bounded memory and time.

``subprocess.run(capture_output=True)`` reads everything a command prints: a command printing
1.5 GB took the reading process to 2.9 GB RSS (issue 11, item 7), and a grandchild that
inherited the pipes (a shell script's background job) kept ``communicate()`` waiting past the
timeout. Here stdout is read up to a cap and stderr is drained into a small tail buffer, both
through one selector with a deadline; past the cap or the deadline the command is killed and its
pipes closed rather than drained. Once the command itself has exited, what is left in the pipes
is read briefly and the pipes are closed: a background job it left behind (``agent &``) that
keeps them open must not make a successful command look timed out.

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
#: how often the loop checks whether the command itself has exited
_POLL_SECONDS = 0.05
#: once it has, how long output still in the pipes is read
_EXITED_DRAIN_SECONDS = 0.2


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
            exited_at = None
            while selector.get_map() and not overflowed:
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    timed_out = True
                    break
                if exited_at is None and process.poll() is not None:
                    exited_at = now  # a background job may hold the pipes open: drain, stop
                if exited_at is not None and now - exited_at > _EXITED_DRAIN_SECONDS:
                    break
                ready = selector.select(min(remaining, _POLL_SECONDS))
                if not ready and exited_at is not None:
                    break
                for key, _ in ready:
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

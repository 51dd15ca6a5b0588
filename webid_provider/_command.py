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
from typing import Optional

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

    def stderr_excerpt(self, max_chars: int) -> str:
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
    pipes = _Pipes(process, stdout_cap_bytes=stdout_cap_bytes, stderr_kept_bytes=stderr_kept_bytes)
    deadline = time.monotonic() + timeout_seconds
    try:
        pipes.read_until(deadline)
        if not (pipes.overflowed or pipes.timed_out):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                pipes.timed_out = True
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    return CommandOutcome(
        returncode=process.returncode,
        stdout=bytes(pipes.stdout),
        stderr_tail=bytes(pipes.stderr),
        stderr_truncated=pipes.stderr_truncated,
        stdout_overflowed=pipes.overflowed,
        timed_out=pipes.timed_out,
    )


class _Pipes:
    """The stdout and stderr of a running command, read through one selector."""

    def __init__(
        self, process: subprocess.Popen[bytes], *, stdout_cap_bytes: int, stderr_kept_bytes: int
    ) -> None:
        assert process.stdout is not None
        assert process.stderr is not None
        self._process = process
        self._out_fd, self._err_fd = process.stdout.fileno(), process.stderr.fileno()
        self._stdout_cap_bytes = stdout_cap_bytes
        self._stderr_kept_bytes = stderr_kept_bytes
        self.stdout, self.stderr = bytearray(), bytearray()
        self.stderr_truncated = self.overflowed = self.timed_out = False
        self._exited_at: Optional[float] = None

    def read_until(self, deadline: float) -> None:
        """Read until both pipes close, stdout overflows, the deadline passes (``timed_out``),
        or the command has exited and its pipes have been drained briefly."""
        with selectors.DefaultSelector() as selector:
            for fd in (self._out_fd, self._err_fd):
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map() and not self.overflowed:
                now = time.monotonic()
                if now >= deadline:
                    self.timed_out = True
                    return
                if self._drained(now):
                    return
                ready = selector.select(min(deadline - now, _POLL_SECONDS))
                if not ready and self._exited_at is not None:
                    return
                for key, _ in ready:
                    self._read(selector, key.fd)

    def _drained(self, now: float) -> bool:
        """Whether the command exited long enough ago to stop reading: a background job it
        left may hold the pipes open."""
        if self._exited_at is None and self._process.poll() is not None:
            self._exited_at = now
        return self._exited_at is not None and now - self._exited_at > _EXITED_DRAIN_SECONDS

    def _read(self, selector: selectors.BaseSelector, fd: int) -> None:
        try:
            chunk = os.read(fd, _READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        if not chunk:
            selector.unregister(fd)
        elif fd == self._out_fd:
            self.stdout += chunk
            self.overflowed = len(self.stdout) > self._stdout_cap_bytes
        else:
            self.stderr += chunk
            if len(self.stderr) > self._stderr_kept_bytes:
                del self.stderr[: -self._stderr_kept_bytes]
                self.stderr_truncated = True

"""Signals during an AWS run: SIGTERM unwinds like Ctrl-C (so teardown runs), SIGHUP (a
lost terminal) raises :class:`Hangup`, which detaches a started run instead of stopping
it, and while teardown runs, Ctrl-C and SIGTERM only warn (stopping then would leave
resources behind).

Handlers can only be installed from the main thread; elsewhere both are no-ops.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so the run unwinds like Ctrl-C."""


class Hangup(KeyboardInterrupt):
    """SIGHUP: the terminal is gone. A started execution goes on; the run detaches."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _raise_hangup(signum: int, frame: FrameType | None) -> None:
    raise Hangup()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_like_ctrl_c(enabled: bool = True) -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``)."""
    if not enabled or not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def hangup_raises(enabled: bool = True) -> Iterator[None]:
    """Within the block, SIGHUP raises :class:`Hangup` (a ``KeyboardInterrupt``)."""
    if not enabled or not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGHUP, _raise_hangup)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM print a warning instead of interrupting."""
    if not _main_thread():
        yield
        return

    def warn(signum: int, frame: FrameType | None) -> None:
        with suppress(OSError, ValueError):  # no terminal left (SIGHUP): nobody to tell
            sys.stderr.write("teardown in progress; mrspec exits when the stack is removed\n")

    # SIGHUP too: without a terminal, teardown must still finish
    previous = {s: signal.signal(s, warn) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

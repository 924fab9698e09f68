"""Typed errors, translated once at the CLI boundary (``mrspec.cli.main``).

Every error a user can cause derives from :class:`MrspecError`; it carries the message,
an optional hint saying how to fix it, and the process exit code scripts rely on.
Anything else that escapes is a bug in mrspec and is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the ``mrspec`` command; documented in docs/cli.md."""

    OK = 0
    JOB_FAILED = 1  # the job ran and failed (a task failed beyond its retries, ...)
    INVALID = 2  # bad input: spec errors, bad command-line usage, missing file
    REFUSED = 3  # a preflight check refused to start (output exists, budget, no CLI, ...)
    TEARDOWN_FAILED = 4  # the job's cloud resources could not be removed
    INTERNAL = 70  # a bug in mrspec (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM


class MrspecError(Exception):
    """An error the user can act on."""

    exit_code: ExitCode = ExitCode.INVALID

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


@dataclass(frozen=True)
class Problem:
    """One located problem in a spec file.

    ``path`` is the dotted YAML path (``map.memory``, ``input.prefix[1]``); ``line`` and
    ``column`` are 1-based and point at the offending node (or its parent mapping when the
    node is missing).
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def format(self) -> str:
        where = self.path or "<document>"
        return f"{self.file}:{self.line}:{self.column}: {where}: {self.message}"


class SpecError(MrspecError):
    """A spec failed to load or validate; ``problems`` lists every problem found."""

    exit_code = ExitCode.INVALID

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))


class InputError(MrspecError):
    """The job's input cannot be listed or read."""

    exit_code = ExitCode.INVALID


class RefusedError(MrspecError):
    """A preflight check refused to start the run."""

    exit_code = ExitCode.REFUSED


class NoAccessError(MrspecError):
    """Storage or AWS cannot be reached as asked: no credentials, access denied, expired
    credentials, no network. Nothing was started."""

    exit_code = ExitCode.REFUSED


class JobFailedError(MrspecError):
    """The job ran and failed."""

    exit_code = ExitCode.JOB_FAILED


class TeardownError(MrspecError):
    """Cloud resources were left behind; the message names the command that removes them."""

    exit_code = ExitCode.TEARDOWN_FAILED

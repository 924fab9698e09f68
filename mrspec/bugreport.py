"""The short report an unexpected exception (a bug in mrspec) prints instead of a traceback.

It says what a maintainer needs: the mrspec and Python versions, the command, the
exception and the frame it came from (the innermost one inside mrspec, and the innermost
one overall), and where to report it. ``MRSPEC_TRACEBACK=1`` prints the full traceback too.
"""

from __future__ import annotations

import os
import platform
import shlex
import traceback
from pathlib import Path

from mrspec import __version__

HOW_TO_REPORT = (
    "please report it to mrspec's maintainers (an issue in the repository you installed "
    "mrspec from) with this message and, if you can, the spec"
)
TRACEBACK_ENV = "MRSPEC_TRACEBACK"


def _where(exc: BaseException) -> tuple[str, str]:
    """(innermost frame in mrspec's own code, innermost frame overall)."""
    frames = traceback.extract_tb(exc.__traceback__)
    root = str(Path(__file__).resolve().parent)
    ours = [f for f in frames if str(Path(f.filename).resolve()).startswith(root)]

    def fmt(frame: traceback.FrameSummary | None) -> str:
        if frame is None:
            return "?"
        name = frame.filename
        if name.startswith(root):
            name = "mrspec" + name[len(root) :]
        return f"{name}:{frame.lineno} in {frame.name}"

    return fmt(ours[-1] if ours else None), fmt(frames[-1] if frames else None)


def bug_report(exc: BaseException, args: list[str]) -> tuple[str, dict[str, object]]:
    """The report's text (for stderr) and its JSON document (for ``--json``)."""
    ours, innermost = _where(exc)
    command = shlex.join(["mrspec", *args])
    lines = [
        f"internal error: a bug in mrspec {__version__} (Python {platform.python_version()}):",
        f"  {type(exc).__name__}: {exc}",
        f"  at {ours}" + (f" (raised in {innermost})" if innermost != ours else ""),
        f"  command: {command}",
        f"  {HOW_TO_REPORT};",
        f"  run it again with {TRACEBACK_ENV}=1 for the full traceback.",
    ]
    if os.environ.get(TRACEBACK_ENV):
        lines.append("".join(traceback.format_exception(exc)).rstrip())
    document: dict[str, object] = {
        "error": "InternalError",
        "message": f"{type(exc).__name__}: {exc}",
        "where": ours,
        "raised_in": innermost,
        "mrspec_version": __version__,
        "command": command,
        "report": HOW_TO_REPORT,
    }
    return "\n".join(lines), document

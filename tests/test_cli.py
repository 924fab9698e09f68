"""The CLI entry point (``python -m mrspec``)."""

from __future__ import annotations

import subprocess
import sys


def test_cli_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mrspec", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("validate", "schema", "plan", "apply", "compile", "destroy", "runs"):
        assert name in out

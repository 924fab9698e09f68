"""The pre-commit hooks of .pre-commit-hooks.yaml install and run as another repository
gets them: ``pre-commit try-repo`` against a commit of this checkout (work in progress
included), in a throw-away user repository with a good spec, then with a bad one.

Offline: pre-commit's hook virtualenv sees the dependencies already installed
(``VIRTUALENV_SYSTEM_SITE_PACKAGES``), and pip, told to use no index, builds mrspec with
the setuptools wheel that virtualenv itself bundles. Each try-repo installs the hook
environment afresh (it uses a temporary store), about 8 s here: hence ``slow``, and two
try-repo runs only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project_copy import ROOT, commit_all, copy_project, offline_env

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def user_repo(tmp_path: Path) -> Path:
    """A repository with two example jobs and their freshly compiled stacks/."""
    repo = tmp_path / "user"
    for name in ("wordcount", "grep"):
        shutil.copytree(ROOT / "specs" / name, repo / "jobs" / name,
                        ignore=shutil.ignore_patterns("out"))
    subprocess.run([BIN / "mrspec", "compile", "jobs/wordcount/job.yaml", "jobs/grep/job.yaml"],
                   cwd=repo, check=True, capture_output=True)
    commit_all(repo, "two jobs")
    return repo


def try_repo(hooks: Path, repo: Path, home: Path, *hook: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN / "pre-commit", "try-repo", str(hooks), *hook, "--all-files"],
                          cwd=repo, capture_output=True, text=True, env=offline_env(home),
                          timeout=300)


def test_try_repo_passes_good_specs_and_fails_bad_ones(tmp_path: Path) -> None:
    hooks = copy_project(tmp_path / "mrspec")
    commit_all(hooks, "mrspec as the hook repository")
    repo = user_repo(tmp_path)

    good = try_repo(hooks, repo, tmp_path / "cache")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "mrspec validate" in good.stdout and "mrspec compile --check" in good.stdout
    assert "Failed" not in good.stdout

    # An invalid memory size: validate fails with the located error (a stale stacks/ is
    # tested through `pre-commit run` in test_ci_docs, whose hook cache is reused).
    bad = repo / "jobs" / "grep" / "job.yaml"
    lines = bad.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.strip().startswith("memory:"))
    column = lines[row].index("memory:") + len("memory: ") + 1
    lines[row] = lines[row].split("memory:")[0] + "memory: 20000"
    bad.write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    invalid = try_repo(hooks, repo, tmp_path / "cache", "mrspec-validate")
    assert invalid.returncode == 1, invalid.stdout + invalid.stderr
    assert (f"jobs/grep/job.yaml:{row + 1}:{column}: map.memory: Lambda memory must be"
            in invalid.stdout)
    assert "jobs/wordcount/job.yaml:" not in invalid.stdout

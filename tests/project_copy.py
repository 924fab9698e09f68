"""Copies of this checkout for tests that need the project as others get it: built by
``python -m build``, or cloned by pre-commit. Work in progress counts: tracked files with
their uncommitted changes plus new files that git does not ignore."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def offline_env(home: Path) -> dict[str, str]:
    """An environment in which pip uses no index: build backends come from the setuptools
    wheel virtualenv bundles, and pre-commit's hook virtualenvs (cache in ``home``) see
    the dependencies already installed instead of downloading them."""
    import virtualenv  # type: ignore[import-untyped]

    wheels = Path(virtualenv.__file__).parent / "seed" / "wheels" / "embed"
    return {**os.environ, "PRE_COMMIT_HOME": str(home), "VIRTUALENV_SYSTEM_SITE_PACKAGES": "1",
            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_NO_INPUT": "1"}


def project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()
    return sorted(f for f in listed.split("\0") if f and (ROOT / f).is_file())


def copy_project(target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """Copy the checkout's files to ``target`` (leaving out paths starting with ``skip``)."""
    for rel in project_files():
        if skip and rel.startswith(skip):
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target / rel)
    return target


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV})
    return proc.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    """``git init`` (if needed), commit every file, return the commit's sha."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")

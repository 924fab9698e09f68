"""The built package works on its own: wheel and sdist from ``python -m build``, the wheel
installed into a fresh virtualenv, and the example job validated, planned and run there.

Every other test imports mrspec from the source tree, where a package-data file left out
of the wheel (``schema.json``, ``pricing.json``) would never be missed. The virtualenv
sees the already-installed dependencies (``--system-site-packages`` plus this
environment's site-packages) so nothing is downloaded, but the mrspec it imports must be
the wheel's, which the test checks. ``CHANGELOG.md`` must name the version it builds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import yaml

import mrspec
from tests.project_copy import ROOT, copy_project, offline_env, project_files

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def make_venv(venv: Path) -> Path:
    """A fresh virtualenv that sees the installed dependencies but not this mrspec."""
    run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv,
        cwd=venv.parent)
    python = venv / "bin" / "python"
    here = sysconfig.get_paths()
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=venv.parent).strip())
    # A plain path line: this environment's packages, without running its .pth hooks (one
    # of them maps `mrspec` to the source tree).
    (site / "_deps_of_the_test_env.pth").write_text(
        "\n".join(dict.fromkeys([here["purelib"], here["platlib"]])) + "\n")
    return python


def install_step(venv: Path, action_path: Path, install: str) -> str:
    """Run action.yml's install step with ``venv`` first on PATH, as actions/setup-python
    puts its Python; returns what it printed (the step ends with ``mrspec --version``)."""
    step = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"][0]
    assert step["name"] == "Install mrspec"
    env = {**offline_env(venv.parent / "unused"), "MRSPEC_INSTALL": install,
           "GITHUB_ACTION_PATH": str(action_path),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return run("bash", "-e", "-c", step["run"], cwd=venv.parent, env=env).strip()


def test_wheel_installs_and_runs_the_example(tmp_path: Path) -> None:
    src = copy_project(tmp_path / "src")  # a copy: building writes egg-info beside the sources
    # Offline: the isolated build environment takes setuptools from virtualenv's wheels.
    run(sys.executable, "-m", "build", "--outdir", tmp_path / "dist", src, cwd=tmp_path,
        env=offline_env(tmp_path / "pre-commit-unused"))
    version = mrspec.__version__
    wheel = tmp_path / "dist" / f"mrspec-{version}-py3-none-any.whl"
    sdist = tmp_path / "dist" / f"mrspec-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file()

    with tarfile.open(sdist) as tar:
        packed = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = [f for f in project_files()
              if f.startswith(("tests/", "docs/", "specs/", "mrspec/"))
              or f in ("CHANGELOG.md", "README.md", "action.yml", ".pre-commit-hooks.yaml")]
    assert not [f for f in wanted if f not in packed], "files missing from the sdist"

    python = make_venv(tmp_path / "venv")
    # Installed by the GitHub Action's own install step (its `install` input set to the
    # wheel), with the virtualenv first on PATH as actions/setup-python puts its Python.
    assert install_step(tmp_path / "venv", src, str(wheel)) == f"mrspec, version {version}"
    job = tmp_path / "job"
    shutil.copytree(ROOT / "specs" / "wordcount", job, ignore=shutil.ignore_patterns("out"))
    where = run(python, "-c", "import mrspec; print(mrspec.__file__)", cwd=job).strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    cli = tmp_path / "venv" / "bin" / "mrspec"
    run(cli, "validate", "job.yaml", cwd=job)
    assert '"input_objects": 2' in run(cli, "plan", "job.yaml", "--json", cwd=job)
    run(cli, "apply", "job.yaml", "--local", cwd=job)

    counted: Counter[str] = Counter()
    for text in (job / "input").glob("*.txt"):
        for word in re.findall(r"[\w']+", text.read_text().lower()):
            if word.strip("'"):
                counted[word.strip("'")] += 1
    output: dict[str, int] = {}
    for part in sorted((job / "out").glob("part-*")):
        for line in part.read_text().splitlines():
            word, count = line.split("\t")
            output[word] = int(count)
    assert output == dict(counted)


def test_changelog_names_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(mrspec.__version__)}\b", text, re.M), text[:200]


def test_action_installs_mrspec_from_its_own_checkout(tmp_path: Path) -> None:
    """The install input's default: pip builds and installs the action's checkout."""
    src = copy_project(tmp_path / "action-checkout")
    python = make_venv(tmp_path / "venv")
    assert install_step(tmp_path / "venv", src, "") == f"mrspec, version {mrspec.__version__}"
    where = run(python, "-c", "import mrspec; print(mrspec.__file__)", cwd=tmp_path).strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    schema = run(python, "-m", "mrspec", "schema", cwd=tmp_path)
    assert json.loads(schema)["$schema"].startswith("https://json-schema.org/")

"""The Lambda deployment package: one deterministic zip shared by the job's functions.

Contents, all at the zip's root (``/var/task`` in Lambda):

- the mrspec modules the handlers import (found by ``modulefinder`` from
  ``mrspec/aws/handlers.py``, and nothing else of mrspec: no CLI, YAML, Pulumi);
- ``mrspec_task_config.json``: the job's ``TaskConfig`` with ``code_path=""`` and the
  run's ``s3://`` output prefix (a job with steps: step 0's, and one
  ``mrspec_task_config.step-<s>.json`` per later step, the last with the output prefix);
- the files of the spec's ``code.path``, without junk: VCS folders, ``__pycache__`` and
  compiled files, virtualenvs (``.venv``, ``venv``, any folder holding ``pyvenv.cfg``),
  ``node_modules``, tool caches, secrets (``.env*``, ``*.pem``, ``*.key``, ``id_rsa*``,
  ``.aws/``, ...), the job's local input/output folders when they live inside
  ``code.path``, and the spec's ``code.exclude`` globs;
- the requirements of ``code.requirements``, vendored with ``pip install --target`` for
  the functions' architecture (manylinux2014 wheels, CPython 3.12, binary only).

Determinism: entries sorted, fixed timestamps (1980-01-01), fixed permissions (0644),
fixed compression, so the same inputs give the same bytes and sha256.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import modulefinder
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mrspec.aws.handlers import STEP_CONFIG_FILE, TASK_CONFIG_FILE, config_file
from mrspec.errors import MrspecError
from mrspec.spec.model import JobSpec, is_s3_uri

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # bytes, AWS Lambda quota (zip deployments)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
PYTHON_VERSION = "3.12"
PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

JUNK_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".aws",
        ".ssh",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".idea",
        ".vscode",
        ".mrspec",
        ".ipynb_checkpoints",
    }
)
JUNK_FILES = (
    "*.pyc",
    "*.pyo",
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    ".DS_Store",
    "*.swp",
)
# Top-level names of the package that job code may not shadow: mrspec, and every step's
# config file (``mrspec_task_config.json``, ``mrspec_task_config.step-1.json``, ...),
# matched by pattern so the rule does not depend on how many steps a spec may have.
RESERVED_NAMES = frozenset({"mrspec", TASK_CONFIG_FILE})


def is_reserved(top: str) -> bool:
    """Whether a top-level name of the package belongs to mrspec."""
    return top in RESERVED_NAMES or STEP_CONFIG_FILE.fullmatch(top) is not None
# Imports the Lambda code may make besides the standard library and mrspec.
LAMBDA_THIRD_PARTY = frozenset({"boto3", "botocore"})


class PackageError(MrspecError):
    """The deployment package cannot be built."""


@dataclass(frozen=True)
class Package:
    path: Path
    sha256: str  # of the zip's bytes
    zip_size: int
    unzipped_size: int
    files: tuple[str, ...]  # entry names, sorted


# --------------------------------------------------------------------------- mrspec modules


def runtime_module_files(root: Path | None = None) -> dict[str, Path]:
    """Zip entry name -> source file of every mrspec module the handlers import.

    ``root`` is the folder holding ``mrspec/`` (default: this installation's). Raises
    when the handlers (transitively) import anything outside the standard library,
    boto3 and mrspec: that code could not run in Lambda.
    """
    if root is None:
        import mrspec

        root = Path(mrspec.__file__).resolve().parent.parent
    handlers = root / "mrspec" / "aws" / "handlers.py"
    # Only mrspec's own folder is searched (an installed mrspec sits in site-packages:
    # boto3 and friends are excluded so they are not scanned).
    finder = modulefinder.ModuleFinder(path=[str(root)], excludes=sorted(LAMBDA_THIRD_PARTY))
    finder.run_script(str(handlers))
    stdlib = sys.stdlib_module_names
    foreign = sorted(
        name
        for name in finder.badmodules
        if not name.startswith("mrspec")
        and name.partition(".")[0] not in stdlib
        and name.partition(".")[0] not in LAMBDA_THIRD_PARTY
        and name != "__future__"
    )
    if foreign:
        raise PackageError(
            f"the Lambda handlers import modules Lambda does not provide: {', '.join(foreign)}",
            hint="code under mrspec/runtime, mrspec/storage, mrspec/api.py and "
            "mrspec/aws/handlers.py may use only the standard library and boto3",
        )
    names = {n for n in finder.modules if n == "mrspec" or n.startswith("mrspec.")}
    names |= {"mrspec.aws", "mrspec.aws.handlers"}
    files: dict[str, Path] = {}
    for name in sorted(names):
        parts = name.split(".")
        package_init = root.joinpath(*parts, "__init__.py")
        source = (
            package_init
            if package_init.is_file()
            else root.joinpath(*parts[:-1], f"{parts[-1]}.py")
        )
        if not source.is_file():
            raise PackageError(f"cannot find the source of module {name} under {root}")
        files[source.relative_to(root).as_posix()] = source
    return files


# --------------------------------------------------------------------------- job code


def _is_junk(rel: PurePosixPath, is_dir: bool, full: Path) -> bool:
    name = rel.name
    if is_dir:
        return name in JUNK_DIRS or (full / "pyvenv.cfg").is_file()
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in JUNK_FILES)


def _excluded(rel: PurePosixPath, patterns: Sequence[str]) -> bool:
    text = rel.as_posix()
    for pattern in patterns:
        pat = pattern.rstrip("/")
        if fnmatch.fnmatchcase(text, pat) or fnmatch.fnmatchcase(rel.name, pat):
            return True
        if pat.endswith("/**") and (text == pat[:-3] or text.startswith(pat[:-2])):
            return True
    return False


def _data_folders(spec: JobSpec) -> list[Path]:
    """The job's local input/output folders (kept out of the package)."""
    return [
        Path(p).resolve()
        for p in (*spec.input.prefixes, spec.output.prefix)
        if p and not is_s3_uri(p)
    ]


def code_files(spec: JobSpec) -> dict[str, Path]:
    """Zip entry name -> file for the job's own code (``code.path`` minus junk)."""
    root = spec.code.path.resolve()
    if not root.is_dir():
        raise PackageError(
            f"code.path {root} is not a folder", hint="point code.path at the job's module folder"
        )
    skip = [d for d in _data_folders(spec) if d == root or root in d.parents]
    if spec.code.requirements is not None:
        skip.append(spec.code.requirements.resolve())
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = PurePosixPath(here.relative_to(root).as_posix())
        kept = []
        for d in sorted(dirnames):
            full = here / d
            rel = rel_dir / d
            if _is_junk(rel, True, full) or _excluded(rel, spec.code.exclude):
                continue
            if full.resolve() in skip or full.is_symlink():
                continue
            kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            full = here / f
            rel = rel_dir / f
            if _is_junk(rel, False, full) or _excluded(rel, spec.code.exclude):
                continue
            if full.resolve() in skip or not full.is_file():
                continue
            files[rel.as_posix()] = full
    clash = sorted({top for top in (n.split("/")[0] for n in files) if is_reserved(top)})
    if clash:
        raise PackageError(
            f"code.path {root} holds {', '.join(clash)}, which the Lambda package reserves",
            hint="rename it, or exclude it with code.exclude",
        )
    return files


# --------------------------------------------------------------------------- requirements


def pip_command(
    requirements: Path, target: Path, architecture: str, extra_args: Sequence[str] = ()
) -> list[str]:
    """The ``pip install`` that vendors ``requirements`` for Lambda's platform."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        PIP_PLATFORMS[architecture],
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--requirement",
        str(requirements),
        *extra_args,
    ]


def vendor_requirements(
    requirements: Path, target: Path, architecture: str, extra_args: Sequence[str] = ()
) -> dict[str, Path]:
    """Install the requirements into ``target``; zip entry name -> file."""
    if not requirements.is_file():
        raise PackageError(f"code.requirements {requirements} does not exist")
    cmd = pip_command(requirements, target, architecture, extra_args)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise PackageError(
            f"could not vendor {requirements} for {PIP_PLATFORMS[architecture]}:\n  "
            + "\n  ".join(detail),
            hint="every requirement needs a wheel for CPython 3.12 on manylinux2014 "
            f"({architecture}); pure-Python packages always qualify",
        )
    files: dict[str, Path] = {}
    for path in sorted(target.rglob("*")):
        rel = PurePosixPath(path.relative_to(target).as_posix())
        if not path.is_file() or "__pycache__" in rel.parts or rel.parts[0] == "bin":
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        files[rel.as_posix()] = path
    return files


# --------------------------------------------------------------------------- the zip


def _zip_entries(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def _largest(sizes: dict[str, int], n: int = 5) -> str:
    top: dict[str, int] = {}
    for name, size in sizes.items():
        head = name.split("/")[0]
        top[head] = top.get(head, 0) + size
    ranked = sorted(top.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} ({v / 1024**2:.1f} MiB)" for k, v in ranked)


def collect(
    spec: JobSpec, *, output_prefix: str, architecture: str, pip_args: Sequence[str] = ()
) -> Iterator[tuple[str, bytes]]:
    """Every (entry name, bytes) of the package, sorted by name."""
    from mrspec.runtime.config import TaskConfig

    sources: dict[str, Path] = {}
    sources.update(runtime_module_files())
    code = code_files(spec)
    with tempfile.TemporaryDirectory(prefix="mrspec-vendor-") as tmp:
        vendored: dict[str, Path] = {}
        if spec.code.requirements is not None:
            vendored = vendor_requirements(
                spec.code.requirements, Path(tmp), architecture, pip_args
            )
        # The job's own modules win over a vendored module of the same name.
        for mapping in (vendored, code):
            for name, path in mapping.items():
                if is_reserved(name.split("/")[0]):
                    raise PackageError(f"{name} would replace mrspec's own files in the package")
                sources[name] = path
        blobs = {name: path.read_bytes() for name, path in sources.items()}
    last = len(spec.steps) - 1
    for step in range(last + 1):
        config = dataclasses.replace(TaskConfig.from_spec(spec, step), code_path="")
        if step == last:  # an earlier step's output stays in the run's work prefix
            config = dataclasses.replace(config, output_prefix=output_prefix)
        blobs[config_file(step)] = (config.to_json() + "\n").encode()
    for name in sorted(blobs):
        yield name, blobs[name]


def build_package(
    spec: JobSpec,
    dest_dir: Path,
    *,
    output_prefix: str,
    architecture: str | None = None,
    pip_args: Sequence[str] = (),
) -> Package:
    """Build the zip into ``dest_dir``; see the module docstring."""
    if not is_s3_uri(output_prefix):
        raise PackageError(f"the Lambda package needs an s3:// output prefix, not {output_prefix}")
    arch = architecture or spec.aws.architecture
    entries = list(collect(spec, output_prefix=output_prefix, architecture=arch, pip_args=pip_args))
    sizes = {name: len(data) for name, data in entries}
    unzipped = sum(sizes.values())
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise PackageError(
            f"the Lambda package of job {spec.name!r} would unzip to "
            f"{unzipped / 1024**2:.1f} MiB, over Lambda's 250 MiB limit; largest: "
            f"{_largest(sizes)}",
            hint="trim code.requirements, exclude data files with code.exclude, or move "
            "large assets to S3",
        )
    data = _zip_entries(entries)
    digest = hashlib.sha256(data).hexdigest()
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{spec.name}-{digest[:12]}.zip"
    path.write_bytes(data)
    return Package(
        path=path,
        sha256=digest,
        zip_size=len(data),
        unzipped_size=unzipped,
        files=tuple(name for name, _ in entries),
    )

"""The Lambda deployment package: contents, junk filtering, determinism, size limit,
vendored requirements, and that the handlers import from the zip alone."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_specs import make_spec

from mrspec.aws import package as pkg
from mrspec.aws.handlers import TASK_CONFIG_FILE
from mrspec.aws.package import PackageError, build_package, pip_command
from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, OutputSpec

OUT = "s3://results/job/"


def write(path: Path, text: str = "x = 1\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def job_folder(tmp_path: Path) -> Path:
    code = tmp_path / "job"
    write(code / "wordcount.py", "def mapper(line):\n    yield line, 1\n")
    write(code / "helpers" / "util.py")
    write(code / "README.md", "# notes\n")
    return code


def spec_for(code: Path, **code_kwargs: Any) -> JobSpec:
    spec = make_spec(code_path=code)
    return dataclasses.replace(spec, code=CodeSpec(path=code, **code_kwargs))


def entries(path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as z:
        return z.infolist()


def test_package_holds_runtime_config_and_code_without_junk(tmp_path: Path) -> None:
    code = job_folder(tmp_path)
    junk = [
        ".git/config",
        "__pycache__/wordcount.cpython-312.pyc",
        "helpers/old.pyc",
        ".venv/lib/site.py",
        "myenv/pyvenv.cfg",
        "myenv/lib/thing.py",
        ".env",
        ".env.local",
        "prod.env",
        "secret.pem",
        "tls.key",
        "id_rsa",
        "id_ed25519.pub",
        ".aws/credentials",
        "node_modules/left-pad/index.js",
        "input/part-0.txt",
        "out/part-00000",
        "data/big.csv",
        "scratch.tmp",
        ".mypy_cache/x.json",
    ]
    for name in junk:
        write(code / name)
    spec = dataclasses.replace(
        spec_for(code, exclude=("data/**", "*.tmp")),
        input=InputSpec(prefixes=(str(code / "input"),)),
        output=OutputSpec(prefix=str(code / "out")),
    )
    p = build_package(spec, tmp_path / "dist", output_prefix=OUT)
    names = set(p.files)
    assert {"wordcount.py", "helpers/util.py", "README.md", TASK_CONFIG_FILE} <= names
    assert "mrspec/aws/handlers.py" in names and "mrspec/runtime/maptask.py" in names
    for name in junk:
        assert name not in names, name
    # Only what the handlers need from mrspec: no CLI, spec loader, Pulumi component.
    for absent in (
        "mrspec/cli.py",
        "mrspec/spec/loader.py",
        "mrspec/aws/component.py",
        "mrspec/aws/lower.py",
        "mrspec/commands/compile.py",
    ):
        assert absent not in names
    with zipfile.ZipFile(p.path) as z:
        config = json.loads(z.read(TASK_CONFIG_FILE))
    assert config["code_path"] == "" and config["output_prefix"] == OUT
    assert config["map_entrypoint"] == "wordcount:mapper"


def test_zip_is_deterministic(tmp_path: Path) -> None:
    code = job_folder(tmp_path)
    spec = spec_for(code)
    a = build_package(spec, tmp_path / "a", output_prefix=OUT)
    os.utime(code / "wordcount.py", (1, 1))  # timestamps never matter
    (code / "helpers" / "util.py").chmod(0o755)
    b = build_package(spec, tmp_path / "b", output_prefix=OUT)
    assert a.sha256 == b.sha256 == hashlib.sha256(b.path.read_bytes()).hexdigest()
    infos = entries(a.path)
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    write(code / "wordcount.py", "def mapper(line):\n    yield line, 2\n")
    c = build_package(spec, tmp_path / "c", output_prefix=OUT)
    assert c.sha256 != a.sha256


def test_handlers_import_from_the_zip_alone(tmp_path: Path) -> None:
    code = job_folder(tmp_path)
    p = build_package(spec_for(code), tmp_path / "dist", output_prefix=OUT)
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(p.path) as z:
        z.extractall(root)
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        # No editable install of mrspec, and none of the non-Lambda libraries.
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        BLOCKED = {{"yaml", "click", "rich", "jsonschema", "pulumi", "pulumi_aws", "moto"}}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ImportError("not in Lambda: " + name)
                return None
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(root)!r})
        import mrspec.aws.handlers as h
        import mrspec.runtime, mrspec.runtime.maptask, mrspec.runtime.reducetask
        import mrspec.runtime.committer, mrspec.storage.s3, wordcount
        config = h.task_config()
        assert config.code_path == "" and config.output_prefix == {OUT!r}, config
        outside = [n for n, m in sys.modules.items() if n.startswith("mrspec")
                   and getattr(m, "__file__", None)
                   and not m.__file__.startswith({str(root)!r})]
        assert not outside, outside
        print("ok", len([n for n in sys.modules if n.startswith("mrspec")]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


def test_size_limit_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = job_folder(tmp_path)
    write(code / "assets" / "model.bin", "0" * 50_000)
    monkeypatch.setattr(pkg, "LAMBDA_UNZIPPED_LIMIT", 100_000)
    with pytest.raises(PackageError) as info:
        build_package(spec_for(code), tmp_path / "d", output_prefix=OUT)
    text = str(info.value)
    assert "250 MiB" in text and "assets" in text and "code.exclude" in text


def test_job_code_may_not_shadow_mrspec(tmp_path: Path) -> None:
    code = job_folder(tmp_path)
    write(code / "mrspec" / "__init__.py")
    with pytest.raises(PackageError, match="reserves"):
        build_package(spec_for(code), tmp_path / "d", output_prefix=OUT)


@pytest.mark.parametrize("name", ["mrspec_task_config.json", "mrspec_task_config.step-1.json",
                                  "mrspec_task_config.step-12.json"])
def test_job_code_may_not_shadow_a_steps_config(tmp_path: Path, name: str) -> None:
    # any step's config file, whatever the number of steps a spec may have
    code = job_folder(tmp_path)
    write(code / name, "{}")
    with pytest.raises(PackageError, match="reserves"):
        build_package(spec_for(code), tmp_path / "d", output_prefix=OUT)


def test_local_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="s3://"):
        build_package(spec_for(job_folder(tmp_path)), tmp_path / "d", output_prefix="/tmp/out")


def test_pip_command_targets_lambda_platform(tmp_path: Path) -> None:
    for arch, platform in (("arm64", "manylinux2014_aarch64"), ("x86_64", "manylinux2014_x86_64")):
        cmd = pip_command(tmp_path / "r.txt", tmp_path / "t", arch)
        assert cmd[1:4] == ["-m", "pip", "install"]
        assert cmd[cmd.index("--platform") + 1] == platform
        assert cmd[cmd.index("--python-version") + 1] == "3.12"
        assert cmd[cmd.index("--implementation") + 1] == "cp"
        assert "--only-binary=:all:" in cmd
        assert cmd[cmd.index("--target") + 1] == str(tmp_path / "t")


def _pure_wheel(folder: Path) -> None:
    """A minimal pure-Python wheel, written by hand (no network, no build backend)."""
    name, version = "tinypkg", "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(path, text)


def test_requirements_are_vendored_offline(tmp_path: Path) -> None:
    code = job_folder(tmp_path)
    wheels = tmp_path / "wheels"
    _pure_wheel(wheels)
    req = code / "requirements.txt"
    write(req, "tinypkg==1.0\n")
    spec = spec_for(code, requirements=req)
    p = build_package(
        spec,
        tmp_path / "d",
        output_prefix=OUT,
        pip_args=["--no-index", "--find-links", str(wheels)],
    )
    assert "tinypkg/__init__.py" in p.files
    assert "requirements.txt" not in p.files
    with zipfile.ZipFile(p.path) as z:
        assert z.read("tinypkg/__init__.py") == b"VALUE = 42\n"


def test_unavailable_requirement_fails_clearly(tmp_path: Path) -> None:
    code = job_folder(tmp_path)
    req = code / "requirements.txt"
    write(req, "no-such-package-mrspec==9.9\n")
    with pytest.raises(PackageError) as info:
        build_package(
            spec_for(code, requirements=req),
            tmp_path / "d",
            output_prefix=OUT,
            pip_args=["--no-index", "--find-links", str(tmp_path)],
        )
    assert "manylinux2014_aarch64" in str(info.value)


def test_handlers_importing_non_lambda_libraries_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "mrspec" / "__init__.py", "")
    write(tmp_path / "mrspec" / "aws" / "__init__.py", "")
    write(tmp_path / "mrspec" / "aws" / "handlers.py", "import json\nfrom mrspec import util\n")
    write(tmp_path / "mrspec" / "util.py", "import boto3\n\ndef f():\n    import yaml\n")
    with pytest.raises(PackageError, match="Lambda does not provide: yaml"):
        pkg.runtime_module_files(tmp_path)
    write(tmp_path / "mrspec" / "util.py", "import boto3\nimport botocore.config\n")
    assert sorted(pkg.runtime_module_files(tmp_path)) == [
        "mrspec/__init__.py",
        "mrspec/aws/__init__.py",
        "mrspec/aws/handlers.py",
        "mrspec/util.py",
    ]

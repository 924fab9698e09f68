"""The corpus of broken specs: each file is one kind of mistake, and its header says what
`mrspec validate` must report (``# expect: <field.path> <line> <message fragment>``).

Each problem must come with the right path and line, the message must say what is wrong,
nothing else may be reported, the exit code is 2, and there is never a traceback. A sample
runs the real command in a subprocess; the rest go through ``mrspec.cli.main`` in-process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrspec.cli import main
from mrspec.spec.loader import validate_file

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "broken_specs"
FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(rb"^# expect: (\S+) (\d+) (.+)$", re.MULTILINE)
SUBPROCESS_SAMPLE = {
    "yaml-syntax.yaml",
    "non-utf8.yaml",
    "list-not-mapping.yaml",
    "unknown-apiversion.yaml",
    "duplicate-key.yaml",
    "entrypoint-function-missing.yaml",
}


@dataclass(frozen=True)
class Expected:
    path: str
    line: int
    fragment: str


def expectations(file: Path) -> list[Expected]:
    found = [
        Expected(
            m.group(1).decode(),
            int(m.group(2)),
            m.group(3).decode().strip(),
        )
        for m in EXPECT.finditer(file.read_bytes())
    ]
    assert found, f"{file.name} has no '# expect:' header"
    return [Expected("" if e.path == "<document>" else e.path, e.line, e.fragment) for e in found]


def test_the_corpus_is_large_enough() -> None:
    assert len(FILES) >= 25


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.stem)
def test_broken_spec_reports_exactly_the_expected_problems(file: Path) -> None:
    spec, problems = validate_file(file)
    assert spec is None
    got = [(p.path, p.line) for p in problems]
    wanted = expectations(file)
    assert got == [(e.path, e.line) for e in wanted], "\n".join(p.format() for p in problems)
    for problem, expected in zip(problems, wanted, strict=True):
        assert expected.fragment in problem.message, problem.format()
        assert problem.column >= 1


def _lines(file: Path) -> list[str]:
    return [f"{file}:{e.line}:" for e in expectations(file)]


@pytest.mark.parametrize(
    "file", [f for f in FILES if f.name in SUBPROCESS_SAMPLE], ids=lambda f: f.stem
)
def test_broken_spec_via_the_command(file: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mrspec", "validate", str(file)],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert [line.split(":")[0:2] for line in out] == [
        [str(file), str(e.line)] for e in expectations(file)
    ]
    assert result.stderr.strip().startswith("1 of 1 spec invalid")


@pytest.mark.parametrize(
    "file", [f for f in FILES if f.name not in SUBPROCESS_SAMPLE], ids=lambda f: f.stem
)
def test_broken_spec_via_main(file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", str(file)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    for prefix, expected in zip(captured.out.splitlines(), expectations(file), strict=True):
        path = expected.path or "<document>"
        assert prefix.startswith(f"{file}:{expected.line}:")
        assert f": {path}: " in prefix


def test_missing_file_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job.yaml").write_text("apiVersion: mrspec/v1\n")
    with pytest.raises(SystemExit) as info:
        main(["validate", str(tmp_path / "nope.yaml"), str(tmp_path)])
    assert info.value.code == 2
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{tmp_path / 'nope.yaml'}:1:1: <document>: no such file",
        f"{tmp_path}:1:1: <document>: is a folder, not a spec file; "
        f"did you mean {tmp_path / 'job.yaml'}?",
    ]

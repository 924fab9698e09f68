"""The docs agree with the code: docs/spec.md is what the schema generates, and the code
in docs/job-api.md works (its unit-test example runs against the example jobs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from mrspec.spec.reference import markdown_reference

REPO = Path(__file__).resolve().parents[1]


def test_docs_spec_md_is_generated_from_the_schema() -> None:
    current = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    assert current == markdown_reference(), (
        "docs/spec.md is out of date: run `mrspec schema --markdown > docs/spec.md`"
    )


def test_the_unit_test_example_of_the_job_api_doc_passes(tmp_path: Path) -> None:
    text = (REPO / "docs" / "job-api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# tests/test_jobs\.py.*?)```", text, re.DOTALL)
    assert len(blocks) == 1
    test_file = tmp_path / "test_jobs.py"
    test_file.write_text(blocks[0])
    # Run the doc's test functions with plain Python: the job folders on sys.path, as the
    # doc says, and nothing of this test process's state.
    runner = (
        "import runpy\n"
        f"names = runpy.run_path({str(test_file)!r})\n"
        "tests = [f for n, f in names.items() if n.startswith('test_')]\n"
        "for test in tests:\n"
        "    test()\n"
        "print(len(tests), 'passed')\n"
    )
    paths = [str(REPO / "specs" / name) for name in ("wordcount", "grep", "topwords")]
    result = subprocess.run(
        [sys.executable, "-c", runner],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": ":".join(paths)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "5 passed"


def test_every_python_block_of_the_job_api_doc_compiles() -> None:
    text = (REPO / "docs" / "job-api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "job-api.md", "exec")


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_the_minimal_spec_of_the_reference_is_valid() -> None:
    from mrspec.spec.loader import validate_text

    text = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    minimal = re.search(r"A minimal spec.*?```yaml\n(.*?)```", text, re.DOTALL)
    assert minimal is not None
    spec, problems = validate_text(minimal.group(1), base=REPO / "specs" / "wordcount")
    assert problems == [] and spec is not None and spec.name == "wordcount"

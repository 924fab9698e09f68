"""A third-party validator agrees with ``mrspec validate`` on ``mrspec schema``'s output.

check-jsonschema (not mrspec's jsonschema call) checks the example specs and the broken
specs against the schema that ``mrspec schema`` prints: the examples must pass, and every
spec it rejects ``mrspec validate`` must reject too, at the same YAML path. Editors and
other tools given the schema therefore never call a spec valid that mrspec refuses for a
schema reason, nor refuse an example.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKER = Path(sys.executable).with_name("check-jsonschema")


def dotted(json_path: str) -> str:
    """check-jsonschema's ``$.aws.tags['cost-center']`` as validate's ``aws.tags.cost-center``."""
    return re.sub(r"\['([^']*)'\]", r".\1", json_path).removeprefix("$").lstrip(".")


def test_check_jsonschema_agrees_with_validate(tmp_path: Path) -> None:
    schema = tmp_path / "mrspec.schema.json"
    printed = subprocess.run([sys.executable, "-m", "mrspec", "schema"], capture_output=True,
                             text=True, check=True)
    schema.write_text(printed.stdout)
    examples = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("specs/*/job.yaml"))
    broken = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("tests/broken_specs/*.yaml"))
    assert len(examples) >= 5 and len(broken) >= 20

    checked = subprocess.run(
        [str(CHECKER), "--output-format", "json", "--schemafile", str(schema),
         *examples, *broken],
        capture_output=True, text=True, cwd=ROOT,
    )
    report = json.loads(checked.stdout)
    paths: dict[str, set[str]] = {}
    for error in report["errors"]:
        paths.setdefault(error["filename"], set()).add(dotted(error["path"]))
    for error in report["parse_errors"]:  # YAML that is not one plain document
        paths.setdefault(error["filename"], set())

    assert not set(paths) & set(examples), report
    assert len(paths) >= 10, "the broken specs include many schema errors"
    validated = subprocess.run(
        [sys.executable, "-m", "mrspec", "validate", "--json", *sorted(paths)],
        capture_output=True, text=True, cwd=ROOT,
    )
    results = {f["file"]: f for f in json.loads(validated.stdout)["files"]}
    for file, schema_paths in sorted(paths.items()):
        assert not results[file]["valid"], f"{file}: check-jsonschema rejects it, validate not"
        reported = {p["path"] for p in results[file]["problems"]}
        for where in schema_paths:  # a missing key: the schema names its parent mapping
            assert any(r == where or r.startswith(f"{where}.") or not where for r in reported), (
                file, where, reported)

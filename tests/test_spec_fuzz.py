"""Seeded mutations of the example specs never make the loader raise.

Whatever a user's editor leaves in a file, validation answers with a spec or with located
problems (lines inside the file), never an exception. The seed is fixed, so a failure
reproduces; the mutation that broke it is in the assertion message.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mrspec.errors import Problem
from mrspec.spec.loader import validate_file, validate_text

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "specs").glob("*/job.yaml"))

VALUES = [
    "null", "[]", "{}", "-1", "0", ".inf", ".nan", "true", "''", "'x'", "*nowhere",
    "&a 1", "!!str 5", "'unterminated", "[1, [2, {3: 4}]]", "{a: b}", "2026-01-01",
    "s3://", "s3://UP/x", "a:b:c", "1e3", "99999999999999999999", "~", "|\n  text",
    "!Ref x", "<<: {}", "- - -", "\"\\x\"",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> tuple[str, str]:
    lines = text.splitlines(keepends=True) or ["\n"]
    i = rng.randrange(len(lines))
    kind = rng.choice(["value", "value", "delete", "duplicate", "indent", "truncate", "key"])
    if kind == "value" and ":" in lines[i]:
        key = lines[i].split(":", 1)[0]
        lines[i] = f"{key}: {rng.choice(VALUES)}\n"
    elif kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "indent":
        lines[i] = rng.choice(["  ", "\t", " "]) + lines[i]
    elif kind == "truncate":
        return text[: rng.randrange(len(text) + 1)], f"truncate at line {i}"
    elif kind == "key" and ":" in lines[i]:
        key, rest = lines[i].split(":", 1)
        lines[i] = f"{key}{rng.choice(['x', '_', ' x', 'ß'])}:{rest}"
    return "".join(lines), f"{kind} at line {i + 1}"


def check_located(problems: list[Problem], text: str, what: str) -> None:
    last = text.count("\n") + 2
    for p in problems:
        assert 1 <= p.line <= last and p.column >= 1, (what, p.format())
        assert p.message, what


@pytest.mark.parametrize("spec_file", EXAMPLES, ids=lambda p: p.parent.name)
def test_mutated_specs_give_problems_not_exceptions(spec_file: Path) -> None:
    rng = random.Random(f"mrspec-{spec_file.parent.name}")
    original = spec_file.read_text(encoding="utf-8")
    base = spec_file.parent
    for _ in range(80):
        text = original
        steps = []
        for _ in range(rng.randint(1, 3)):
            text, step = mutate(text, rng)
            steps.append(step)
        what = f"{spec_file.parent.name}: {'; '.join(steps)}\n{text}"
        try:
            spec, problems = validate_text(text, file="job.yaml", base=base)
        except Exception as exc:  # the assertion below names the mutation
            pytest.fail(f"{type(exc).__name__}: {exc} after {what}")
        assert (spec is None) == bool(problems), what
        check_located(problems, text, what)


def test_random_bytes_in_a_spec_file(tmp_path: Path) -> None:
    rng = random.Random(11)
    original = (REPO / "specs" / "wordcount" / "job.yaml").read_bytes()
    for n in range(40):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"job-{n}.yaml"
        path.write_bytes(bytes(data))
        spec, problems = validate_file(path)
        assert (spec is None) == bool(problems)
        check_located(problems, data.decode("latin-1"), f"bytes {n}")

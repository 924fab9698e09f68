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


def adversarial(rng: random.Random) -> str:
    """One hostile or odd document: aliases, deep nesting, huge scalars, odd unicode."""
    kind = rng.choice(["aliases", "nesting", "scalar", "unicode", "keys", "merge"])
    if kind == "aliases":
        fan, depth = rng.randint(2, 12), rng.randint(2, 12)
        lines = [f"a0: &a0 [{', '.join(['x'] * fan)}]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, depth)]
        return "\n".join(lines) + "\n"
    if kind == "nesting":
        n = rng.choice([10, 63, 64, 65, 500, 20000])
        opener, closer = rng.choice([("[", "]"), ("{a: ", "}"), ("- ", "")])
        if opener == "- ":
            return "".join("  " * i + "- \n" for i in range(min(n, 300))) + "  " * n + "x\n"
        return "name: " + opener * n + "1" + closer * n + "\n"
    if kind == "scalar":
        size = rng.choice([10_000, 200_000, 1_100_000])
        return f"apiVersion: mrspec/v1\nname: '{'n' * size}'\n"
    if kind == "unicode":
        chars = "\u202e\u200b\ufeff\U0001f600\u0430\u2014\x85\u2028\ud7ff\ue000"
        text = "".join(rng.choice(chars + "ab: -[]{}\n'\"&*!|>%@`") for _ in range(rng.randint(1, 400)))
        return f"apiVersion: mrspec/v1\nname: {text}\n"
    if kind == "keys":
        return "".join(f"k{rng.randrange(50)}: {rng.randrange(9)}\n" for _ in range(rng.randint(1, 1500)))
    return "base: &b {x: 1}\n" + "".join(f"m{i}: {{<<: *b, y: {i}}}\n" for i in range(rng.randint(1, 800)))


def test_adversarial_yaml_gives_problems_not_exceptions() -> None:
    rng = random.Random("mrspec-adversarial")
    for n in range(60):
        text = adversarial(rng)
        try:
            spec, problems = validate_text(text, file="job.yaml", base=REPO)
        except Exception as exc:  # the assertion names the document
            pytest.fail(f"{type(exc).__name__}: {exc} on document {n}: {text[:300]!r}")
        assert spec is None and problems, text[:300]
        check_located(problems, text, f"document {n}")


def test_alias_bombs_and_deep_nesting_stay_within_bounded_memory() -> None:
    import tracemalloc

    rng = random.Random("mrspec-bombs")
    documents = [adversarial(rng) for _ in range(200)]
    small = [d for d in documents if len(d) < 50_000][:25]  # aliases, nesting, short ones
    tracemalloc.start()
    try:
        for text in small:
            tracemalloc.reset_peak()
            validate_text(text, file="job.yaml", base=REPO)
            peak = tracemalloc.get_traced_memory()[1]
            # nothing expands an alias: the peak is a small multiple of the text
            assert peak < 16 * 1024**2, (peak, text[:200])
    finally:
        tracemalloc.stop()

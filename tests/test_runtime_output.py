"""Output parts (``mrspec.runtime.output``): TSV escaping and JSON lines, end to end and
the chunked writer against per-line formatting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_jobs import make_job, output_lines, run_in_process


def test_tsv_and_jsonl_output_formats(tmp_path: Path) -> None:
    code = r'''
    import json
    def mapper(record):
        yield record["k"], record["v"]
    def reducer(key, values):
        for v in values:
            yield key, v
    '''
    records = [
        {"k": "tab\there", "v": "line\nbreak"},
        {"k": "back\\slash", "v": 3},
        {"k": "plain", "v": [1, "é", None]},
        {"k": "cr\r", "v": {"a": True}},
        {"k": "json", "v": ["a\nb"]},  # JSON text is final: its backslash stays single
    ]
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "r.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    spec = make_job(tmp_path, code, fmt="jsonl", partitions=1)
    run_in_process(spec, tmp_path)
    assert sorted(output_lines(spec.output.prefix)) == sorted(
        ["tab\\there\tline\\nbreak", "back\\\\slash\t3", 'plain\t[1,"é",null]', 'cr\\r\t{"a":true}', 'json\t["a\\nb"]']
    )
    spec = make_job(tmp_path, code, fmt="jsonl", partitions=1, output_format="jsonl")
    run_in_process(spec, tmp_path)
    got = [json.loads(line) for line in output_lines(spec.output.prefix)]
    assert sorted(map(json.dumps, got)) == sorted(json.dumps([r["k"], r["v"]]) for r in records)


@pytest.mark.parametrize("seed", range(20))
def test_chunked_tsv_writer_equals_per_line_formatting(seed: int) -> None:
    import io
    import random

    from mrspec.runtime import output

    rng = random.Random(seed)
    chars = "ab\\\t\n\ré"

    def text() -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 4)))

    values = [text, lambda: 5, lambda: ["x\\y", "\t"], lambda: None, lambda: 1.5, lambda: True]
    pairs = [(text(), rng.choice(values)()) for _ in range(rng.randint(1, 3000))]
    out = io.BytesIO()
    writer = output.PartWriter(out, "tsv")
    writer.write_pairs(pairs)
    writer.flush()
    assert out.getvalue().decode() == "".join(output.tsv_line(k, v) for k, v in pairs)
    assert writer.records == len(pairs)


@pytest.mark.parametrize("chars", ["abé", "ab\\é", "ab\\\té", "a\\\r", "a\\\n"])
@pytest.mark.parametrize("seed", range(5))
def test_chunked_tsv_writer_on_str_and_int_pairs(chars: str, seed: int) -> None:
    """str/int pairs whose only dirty character may be a backslash take a whole-chunk path."""
    import io
    import random

    from mrspec.runtime import output

    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))

    pairs: list[tuple[str, object]] = [
        (text(), rng.choice([text(), rng.randint(-5, 10**6)])) for _ in range(rng.randint(1, 40_000))
    ]
    out = io.BytesIO()
    writer = output.PartWriter(out, "tsv")
    writer.write_pairs(pairs)
    writer.flush()
    assert out.getvalue().decode() == "".join(output.tsv_line(k, v) for k, v in pairs)
    lines = out.getvalue().decode().split("\n")[:-1]
    assert len(lines) == len(pairs) and all(line.count("\t") == 1 for line in lines)

"""The benchmark runs end to end on a tiny generated corpus and every contender agrees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mrspec import bench


def test_bench_rows_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--size", "2MiB", "--generate", "--work-dir", str(tmp_path), "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    rows = ("counter-2proc", "plain-loop", "engine-record+combiner", "engine-record+builtin", "engine-task")
    for row in rows:
        assert f"\n{row} " in out
        # each round prints the row's ratio to that round's counter-2proc; the table adds
        # the median of those paired ratios
        assert len(re.findall(rf"\n  {re.escape(row)} +[0-9.]+ s +[0-9.]+x counter-2proc", out)) == 2
        assert re.search(rf"\n{re.escape(row)} +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+x\n", out)
    assert "every row's word counts were identical" in out


def test_corpus_files_are_equal_and_cut_at_line_ends(tmp_path: Path) -> None:
    files = bench.build_corpus(3 * bench.FILE_SIZE // 2, None, tmp_path)
    sizes = [f.stat().st_size for f in files]
    assert sum(sizes) == 3 * bench.FILE_SIZE // 2 and len(files) == 2
    assert files[0].read_bytes().endswith(b"\n") and sizes[0] <= bench.FILE_SIZE


def test_cpu_bench_rows_agree(capsys: pytest.CaptureFixture[str]) -> None:
    from mrspec.bench import cpu

    assert cpu.main(["--size", "1MiB", "--generate", "--vocab", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for row in ("counter", *cpu.FORMS):
        assert re.search(rf"\n{re.escape(row)} +[0-9.]+ +[0-9.]+x +[0-9.]+x", out), row
    assert "every row's word counts were identical" in out

"""The benchmark runs end to end on a tiny generated corpus and every contender agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrspec import bench


def test_bench_rows_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--size", "2MiB", "--generate", "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for row in ("counter-2proc", "plain-loop", "engine-record+combiner", "engine-task"):
        assert f"\n{row} " in out
    assert "every row's word counts were identical" in out


def test_corpus_files_are_equal_and_cut_at_line_ends(tmp_path: Path) -> None:
    files = bench.build_corpus(3 * bench.FILE_SIZE // 2, None, tmp_path)
    sizes = [f.stat().st_size for f in files]
    assert sum(sizes) == 3 * bench.FILE_SIZE // 2 and len(files) == 2
    assert files[0].read_bytes().endswith(b"\n") and sizes[0] <= bench.FILE_SIZE

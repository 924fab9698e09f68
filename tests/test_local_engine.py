"""The local engine: worker processes, memory caps, retries, crashes, bad records, output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from local_jobs import (
    HOT_KEY,
    WORDCOUNT,
    make_job,
    output_lines,
    reference_counts,
    run_in_process,
    tsv_counts,
    write_words,
)

from mrspec.errors import JobFailedError, RefusedError
from mrspec.local.engine import LocalOptions, run_local


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engine-corpus")
    write_words(root / "input", files=3, lines=2000, seed=5)
    return root / "input"


def parts(prefix: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(prefix).iterdir())}


def test_identical_output_for_one_and_several_workers(tmp_path: Path, corpus: Path) -> None:
    outputs = []
    for workers in (1, 3):
        spec = make_job(
            tmp_path / f"w{workers}",
            WORDCOUNT,
            inputs=str(corpus),
            combiner="combiner",
            split_size=30_000,
            bin_size=60_000,
        )
        summary = run_local(spec, LocalOptions(workers=workers))
        assert summary["tasks"]["map"] > 3 and summary["workers"] == workers
        assert tsv_counts(spec.output.prefix) == reference_counts(corpus)
        files = parts(spec.output.prefix)
        manifest = json.loads(files.pop("_SUCCESS"))
        assert [Path(p["uri"]).name for p in manifest["parts"]] == sorted(files)
        outputs.append(files)
        memory = summary["memory"]
        for kind in ("map", "reduce"):
            assert 0 < memory[kind]["peak_bytes_max"] < memory[kind]["cap_mb"] * 1024**2
    assert outputs[0] == outputs[1]  # byte for byte


def test_thousands_of_tiny_files(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    for i in range(2000):
        (folder / f"f{i:04d}.txt").write_text(f"tiny {i % 7} file\n" if i % 10 else "")
    spec = make_job(tmp_path, WORDCOUNT, combiner="combiner", bin_size=8 * 1024)
    summary = run_local(spec, LocalOptions(workers=2))
    assert tsv_counts(spec.output.prefix) == reference_counts(folder)
    assert summary["input"]["objects"] == 2000 and summary["tasks"]["map"] >= 2


def test_existing_output_is_refused_then_overwritten(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("a b a\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old-result.txt").write_text("precious")
    spec = make_job(tmp_path, WORDCOUNT, partitions=2)
    with pytest.raises(RefusedError, match="already holds 1 object"):
        run_local(spec, LocalOptions(workers=1))
    assert (out / "old-result.txt").read_text() == "precious"
    run_local(spec, LocalOptions(workers=1, overwrite=True))
    listed = json.loads((out / "_SUCCESS").read_text())["parts"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["_SUCCESS", *(Path(p["uri"]).name for p in listed)])
    assert len(listed) == 2 and all(re.fullmatch(r"part-0000[01]-[0-9a-f]{8}", n) for n in names[1:])
    assert tsv_counts(out) == {"a": 2, "b": 1}


BAD_MAPPER = """
def mapper(line):
    if "poison" in line:
        raise KeyError(line)
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)
"""


def test_bad_records_skipped_across_tasks_within_the_limit(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.txt").write_text("good words here\npoison pill\nmore good words\n")
    spec = make_job(tmp_path, BAD_MAPPER, max_bad_records=4, bin_size=40)
    summary = run_local(spec, LocalOptions(workers=2))
    assert summary["tasks"]["map"] == 4
    assert tsv_counts(spec.output.prefix) == {"good": 8, "words": 8, "here": 4, "more": 4}
    assert sorted((b["uri"], b["offset"]) for b in summary["bad_records"]) == [
        (str(folder / f"{i}.txt"), 16) for i in range(4)
    ]
    assert summary["counters"]["bad_records"] == 4


def test_bad_records_beyond_the_job_limit_fail_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.txt").write_text("good words here\npoison pill\n")
    spec = make_job(tmp_path, BAD_MAPPER, max_bad_records=2, bin_size=40)
    with pytest.raises(JobFailedError) as caught:
        run_local(spec, LocalOptions(workers=2))
    message = str(caught.value)
    assert "more than limits.max_bad_records (2)" in message
    assert ".txt at byte 16: KeyError: 'poison pill'" in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_task_over_its_memory_cap_fails_naming_task_and_cap(tmp_path: Path) -> None:
    code = """
    def mapper(line):
        hoard = [bytearray(1024 * 1024) for _ in range(400)]  # 400 MB
        yield "n", len(hoard)

    def reducer(k, v):
        yield k, sum(v)
    """
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("one line\n")
    spec = make_job(tmp_path, code, map_memory=160, max_attempts=2)
    with pytest.raises(JobFailedError, match=r"map task 0 exceeded its memory cap of 160 MB \(attempt 2 of 2\)") as caught:
        run_local(spec, LocalOptions(workers=1))
    # a one-step job's settings are the top-level ones (a job with steps: tests/test_local_steps.py)
    assert (caught.value.hint or "").startswith(
        "raise map.memory in the spec, lower map.bin_size or add a combiner")
    assert not list((tmp_path / "out").glob("*"))


def test_killed_worker_is_retried(tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"
    code = f"""
    import os, signal

    def mapper(line):
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        for word in line.split():
            yield word, 1

    def reducer(word, counts):
        yield word, sum(counts)
    """
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("x y x\n")
    spec = make_job(tmp_path, code, max_attempts=2)
    summary = run_local(spec, LocalOptions(workers=2))
    assert tsv_counts(spec.output.prefix) == {"x": 2, "y": 1}
    assert summary["tasks"]["retried_attempts"] == 1
    assert "killed by SIGKILL" in summary["tasks"]["failed_attempts"][0]


def test_reducer_error_fails_after_retries_and_leaves_no_output(tmp_path: Path) -> None:
    code = """
    def mapper(line):
        yield line, 1

    def reducer(key, values):
        if key == "b":
            raise RuntimeError("reducer broke")
        yield key, sum(values)
    """
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("a\nb\nc\nd\n")
    spec = make_job(tmp_path, code, max_attempts=2, partitions=2)
    with pytest.raises(JobFailedError, match=r"attempt 2 of 2.*reducer failed on key 'b': RuntimeError"):
        run_local(spec, LocalOptions(workers=2))
    assert not list((tmp_path / "out").glob("*"))


def test_map_only_job(tmp_path: Path) -> None:
    code = """
    def mapper(record):
        if record["level"] == "ERROR":
            yield record["host"], record
    """
    rows = [{"level": "ERROR" if i % 4 == 0 else "INFO", "host": f"h{i % 3}", "i": i} for i in range(400)]
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = make_job(tmp_path, code, reducer=None, fmt="jsonl", output_format="jsonl", split_size=2048, bin_size=4096)
    summary = run_local(spec, LocalOptions(workers=2))
    assert summary["tasks"]["reduce"] == 0 and summary["output"]["parts"] == summary["tasks"]["map"] > 1
    got = [json.loads(line) for line in output_lines(spec.output.prefix)]
    assert got == [[r["host"], r] for r in rows if r["level"] == "ERROR"]


def test_hot_key_stays_under_the_reduce_cap(tmp_path: Path) -> None:
    code = HOT_KEY
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "n.txt").write_text("600000\n" * 6)
    # 3.6 million distinct ints for one key: about 130 MB as a list, past the 128 MB cap
    spec = make_job(
        tmp_path, code, partitions=1, split_size=7, bin_size=14, map_memory=192, reduce_memory=128
    )
    summary = run_local(spec, LocalOptions(workers=2))
    assert sorted(output_lines(spec.output.prefix)) == [
        "cold\t[6,6]",
        f"hot\t[3600000,{6 * (600000 * 599999 // 2)}]",
    ]
    reduce = summary["memory"]["reduce"]
    assert reduce["peak_bytes_max"] < 128 * 1024**2


def test_a_task_slower_than_its_lambda_timeout_is_stopped(tmp_path: Path) -> None:
    code = """
    import time

    def mapper(line):
        time.sleep(5)
        yield line, 1

    def reducer(key, values):
        yield key, sum(values)
    """
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("x\n")
    spec = make_job(tmp_path, code, map_timeout=1, partitions=1)
    with pytest.raises(JobFailedError, match=r"map task 0 exceeded its timeout of 1 s \(attempt 1 of 1\)"):
        run_local(spec, LocalOptions(workers=1))


def test_local_shuffle_is_written_uncompressed(tmp_path: Path, corpus: Path) -> None:
    # Lambda's task code compresses its shuffle objects; the local engine's shuffle never
    # leaves the machine and skips zlib. Same job, same splits: the local engine reports
    # the bytes of its raw frames, several times the compressed ones.
    spec = make_job(tmp_path / "local", WORDCOUNT, inputs=str(corpus), combiner="combiner")
    summary = run_local(spec, LocalOptions(workers=2))
    cloud = make_job(tmp_path / "cloud", WORDCOUNT, inputs=str(corpus), combiner="combiner")
    manifest = run_in_process(cloud, tmp_path / "cloud")
    assert tsv_counts(spec.output.prefix) == tsv_counts(cloud.output.prefix)
    raw, compressed = summary["counters"]["shuffle_bytes"], manifest["counters"]["shuffle_bytes"]
    assert raw > 2 * compressed > 0

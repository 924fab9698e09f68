"""S3 requests of an emulated run, per map task and per partition (docs/performance.md,
"S3 requests in the cloud").

Each S3 call made through botocore is tagged with the Lambda invocation (one task attempt)
that made it. The figures are printed (``pytest -s``); the assertions check the shape the
architecture promises: a map task's PUTs do not grow with the number of partitions (one
shuffle object per map task, not one per partition), and a reducer reads each map task's
shuffle object for its partition with ranged GETs, so its GETs grow with map tasks (up to
the fan-in F, past which merge phases keep them flat: tests/test_exchange.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from aws_emulation import EmulatedAws, S3Request, count_s3_requests
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_emulated_jobs import OUT_BUCKET, emulated_options, upload_input

from mrspec.aws.driver import run_on_aws
from mrspec.spec.loader import load_spec

MAP_TASKS = 4
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]

JOB = """\
apiVersion: mrspec/v1
name: s3count
input: {{prefix: input/, format: text, split_size: 2000}}
map: {{entrypoint: wc:mapper, combiner: wc:reducer, memory: 256, timeout: 30, bin_size: 2000}}
reduce: {{entrypoint: wc:reducer, partitions: {partitions}, memory: 256, timeout: 30}}
output: {{prefix: out/}}
limits: {{max_concurrency: 4, max_attempts: 1}}
"""

CODE = """\
def mapper(line):
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)
"""

PUT_OPERATIONS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                  "CopyObject", "ListObjectsV2", "ListObjects"}  # priced like PUTs


def _job(tmp_path: Path, partitions: int) -> Path:
    folder = tmp_path / f"job-{partitions}"
    (folder / "input").mkdir(parents=True)
    for i in range(MAP_TASKS):
        lines = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(5)) for _ in range(48)]
        (folder / "input" / f"part{i}.txt").write_text("\n".join(lines) + "\n")  # ~1.5 kB
    (folder / "wc.py").write_text(CODE)
    (folder / "job.yaml").write_text(JOB.format(partitions=partitions))
    return folder / "job.yaml"


def _per_invocation(requests: list[S3Request], suffix: str) -> list[Counter[str]]:
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    for r in requests:
        if r.function.endswith(suffix):
            calls[r.request_id][r.operation] += 1
    return list(calls.values())


def _measure(aws: EmulatedAws, tmp_path: Path, partitions: int) -> dict[str, list[Counter[str]]]:
    spec = load_spec(_job(tmp_path, partitions))
    inputs = upload_input(aws, spec)
    aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/s3count-{partitions}/"
    with count_s3_requests(aws.lambdas) as requests:
        rc = run_on_aws(
            spec,
            emulated_options(
                tmp_path / f"run-{partitions}",
                input_prefixes=inputs,
                output_prefix=output,
                run_id=f"p{partitions}",
            ),
        )
    assert rc == 0
    return {
        "map": _per_invocation(requests, "-map"),
        "reduce": _per_invocation(requests, "-reduce"),
        "commit": _per_invocation(requests, "-commit"),
        "other": [Counter(r.operation for r in requests if not r.function)],
    }


def _row(label: str, counters: list[Counter[str]]) -> str:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    n = max(1, len(counters))
    ops = ", ".join(f"{op} {count / n:g}" for op, count in sorted(total.items()))
    return f"{label:<28} {len(counters):>3} invocations; per invocation: {ops}"


@pytest.mark.slow
def test_s3_requests_per_map_task_and_per_partition(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = _measure(emulated_aws, tmp_path, partitions=2)
    many = _measure(emulated_aws, tmp_path, partitions=6)

    with capsys.disabled():
        print(f"\nS3 requests of an emulated run ({MAP_TASKS} map tasks):")
        for partitions, figures in ((2, few), (6, many)):
            for phase in ("map", "reduce", "commit"):
                print(_row(f"R={partitions} {phase}", figures[phase]))
            print(_row(f"R={partitions} driver+state machine", figures["other"]))

    assert len(few["map"]) == len(many["map"]) == MAP_TASKS
    assert len(few["reduce"]) == 2 and len(many["reduce"]) == 6
    for figures in (few, many):
        for task in figures["map"]:
            # One shuffle object and one result per map task, whatever the partition count.
            assert task["PutObject"] == 2, task
    map_puts_few = sum(sum(c[op] for op in PUT_OPERATIONS) for c in few["map"])
    map_puts_many = sum(sum(c[op] for op in PUT_OPERATIONS) for c in many["map"])
    assert map_puts_few == map_puts_many
    for task in few["reduce"] + many["reduce"]:
        # A reducer reads no map result: one ranged GET of each map task's shuffle object
        # head (the index, and for an object this small its data too), then its segment
        # if the head did not hold it: at most two GETs per map task, whatever the
        # partition count; one part and one result PUT.
        assert MAP_TASKS <= task["GetObject"] <= 2 * MAP_TASKS, task
        assert task["PutObject"] == 2, task

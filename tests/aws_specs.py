"""JobSpec fixtures for the AWS tests, built directly (no YAML)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from mrspec.spec.model import (
    AwsSpec,
    CodeSpec,
    InputSpec,
    JobSpec,
    Limits,
    MapSpec,
    OutputSpec,
    ReduceSpec,
)

REPO = Path(__file__).resolve().parents[1]


def make_spec(
    *,
    name: str = "wordcount",
    code_path: Path | None = None,
    inputs: tuple[str, ...] = ("s3://corpus/books/",),
    output: str = "s3://results/wordcount/",
    map_only: bool = False,
    map_timeout_s: int = 180,
    reduce_timeout_s: int = 300,
    max_attempts: int = 3,
    architecture: str = "arm64",
    tags: dict[str, str] | None = None,
) -> JobSpec:
    return JobSpec(
        name=name,
        input=InputSpec(prefixes=inputs),
        map=MapSpec(
            entrypoint="wordcount:mapper",
            combiner="wordcount:combiner",
            memory_mb=2048,
            timeout_s=map_timeout_s,
            bin_size=128 * 1024**2,
        ),
        reduce=None
        if map_only
        else ReduceSpec(
            entrypoint="wordcount:reducer", partitions=4, memory_mb=3008, timeout_s=reduce_timeout_s
        ),
        output=OutputSpec(prefix=output),
        code=CodeSpec(path=code_path or REPO / "specs" / "wordcount"),
        limits=Limits(max_concurrency=50, max_attempts=max_attempts),
        aws=AwsSpec(
            region="eu-west-1",
            architecture=architecture,  # type: ignore[arg-type]
            tags=MappingProxyType(tags or {"team": "data"}),
            log_retention_days=14,
        ),
    )

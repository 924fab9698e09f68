"""The job spec as frozen data: what ``mrspec.spec.loader`` produces from YAML.

Everything is resolved and normalised here: sizes are bytes, memory is Lambda megabytes,
durations are seconds, local paths are absolute, and every optional field carries its
default (documented in docs/spec.md and the JSON Schema). No I/O happens in this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

API_VERSION = "mrspec/v1"

InputFormat = Literal["text", "jsonl"]
OutputFormat = Literal["tsv", "jsonl"]
Architecture = Literal["arm64", "x86_64"]
MapperForm = Literal["record", "task"]
# A job parameter's value (``params:``); mrspec.spec.params owns the rules.
ParamValue = str | int | float | bool

# Defaults of optional fields. The JSON Schema's "default" keywords and docs/spec.md
# state the same values; tests check that the three agree.
DEFAULT_INPUT_FORMAT: InputFormat = "text"
DEFAULT_SPLIT_SIZE = 64 * 1024**2
DEFAULT_BIN_SIZE = 128 * 1024**2
DEFAULT_MEMORY_MB = 1769  # one full vCPU in Lambda
DEFAULT_MAP_TIMEOUT_S = 180
DEFAULT_REDUCE_TIMEOUT_S = 300
DEFAULT_PARTITIONS = 8
DEFAULT_OUTPUT_FORMAT: OutputFormat = "tsv"
DEFAULT_MAX_CONCURRENCY = 100
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_BAD_RECORDS = 0
DEFAULT_REGION = "us-east-1"
DEFAULT_ARCHITECTURE: Architecture = "arm64"
DEFAULT_LOG_RETENTION_DAYS = 7


def is_s3_uri(location: str) -> bool:
    return location.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@dataclass(frozen=True)
class InputSpec:
    # Each is an ``s3://bucket/prefix`` URI or an absolute local path (resolved against
    # the spec file's folder). A prefix names every object/file under it.
    prefixes: tuple[str, ...]
    format: InputFormat = DEFAULT_INPUT_FORMAT
    split_size: int = DEFAULT_SPLIT_SIZE  # bytes


@dataclass(frozen=True)
class MapSpec:
    entrypoint: str  # "module:function", resolved inside code.path
    combiner: str | None = None  # "module:function", reducer-shaped
    # "record": the function takes one record and yields (key, value) pairs.
    # "task": the function takes an iterator over all the task's records.
    form: MapperForm = "record"
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_MAP_TIMEOUT_S
    bin_size: int = DEFAULT_BIN_SIZE  # input bytes per map task


@dataclass(frozen=True)
class ReduceSpec:
    entrypoint: str
    partitions: int = DEFAULT_PARTITIONS
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_REDUCE_TIMEOUT_S


@dataclass(frozen=True)
class StepSpec:
    """One MapReduce step: a map and an optional reduce (``None``: a map-only step).

    Step 0 reads the job's input; step ``i > 0`` reads step ``i - 1``'s output pairs as
    ``(key, value)`` records from the run's work prefix; only the last step writes the
    job's output.
    """

    map: MapSpec
    reduce: ReduceSpec | None = None

    @property
    def map_only(self) -> bool:
        return self.reduce is None

    @property
    def partitions(self) -> int:
        """Reduce partitions; 0 for a map-only step."""
        return self.reduce.partitions if self.reduce is not None else 0


@dataclass(frozen=True)
class OutputSpec:
    prefix: str  # s3:// URI or absolute local path
    format: OutputFormat = DEFAULT_OUTPUT_FORMAT


@dataclass(frozen=True)
class CodeSpec:
    path: Path  # absolute folder holding the job's modules
    requirements: Path | None = None  # absolute path of a requirements.txt to vendor
    exclude: tuple[str, ...] = ()  # extra glob patterns left out of the Lambda package


@dataclass(frozen=True)
class Limits:
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_bad_records: int = DEFAULT_MAX_BAD_RECORDS
    budget_usd: float | None = None


@dataclass(frozen=True)
class AwsSpec:
    region: str = DEFAULT_REGION
    architecture: Architecture = DEFAULT_ARCHITECTURE
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS


@dataclass(frozen=True)
class JobSpec:
    name: str
    input: InputSpec
    map: MapSpec
    output: OutputSpec
    code: CodeSpec
    reduce: ReduceSpec | None = None  # None: a map-only job
    # ``steps:``: ``map`` and ``reduce`` above are step 0, these steps 1.. (so a spec
    # without ``steps`` loads into exactly the one-step job it always was); every layer
    # that runs steps reads ``steps``
    later_steps: tuple[StepSpec, ...] = ()
    # the spec has a ``steps:`` section, even of one step: its settings are at
    # ``steps[0].map.memory`` (:meth:`setting`), not at the top level
    in_steps: bool = False
    description: str = ""
    limits: Limits = field(default_factory=Limits)
    aws: AwsSpec = field(default_factory=AwsSpec)
    # ``params:``, read-only and in name order; ``--param`` overrides are applied (and
    # the digest changed) by mrspec.spec.params.with_overrides
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}))
    api_version: str = API_VERSION
    source: Path | None = None  # the spec file, when loaded from one
    digest: str = ""  # sha256 hex of the spec file's bytes: ties outputs to the spec

    @property
    def steps(self) -> tuple[StepSpec, ...]:
        """Every step in order: a job without ``steps:`` is one step."""
        return (StepSpec(self.map, self.reduce), *self.later_steps)

    @property
    def last_step(self) -> StepSpec:
        """The step that writes the output (its shape is the output's shape)."""
        return self.later_steps[-1] if self.later_steps else StepSpec(self.map, self.reduce)

    @property
    def map_only(self) -> bool:
        """Whether the output is written by a map (one part per map task of the last step)."""
        return self.last_step.map_only

    @property
    def partitions(self) -> int:
        """The last step's reduce partitions (the output's parts); 0 when it is map-only."""
        return self.last_step.partitions

    @property
    def has_steps(self) -> bool:
        """Whether the spec's step settings live under ``steps:``."""
        return self.in_steps or bool(self.later_steps)

    def setting(self, step: int, path: str) -> str:
        """The YAML path of step ``step``'s setting ``path`` (``map.memory``), as the user
        writes it: itself in a job without ``steps``, ``steps[1].map.memory`` in one with
        them (every message that names a step's setting goes through here)."""
        return f"steps[{step}].{path}" if self.has_steps else path

    def smaller_map_input(self, step: int) -> str:
        """What makes step ``step``'s map tasks read less: step 0's read whole splits
        (``map.bin_size``); a later step's map task i reads part i of the step before, so
        more parts of the nearest earlier reduce (map-only steps keep their parts)."""
        for before in range(step - 1, -1, -1):
            if self.steps[before].reduce is not None:
                return f"raise {self.setting(before, 'reduce.partitions')}"
        return f"lower {self.setting(0, 'map.bin_size')}"


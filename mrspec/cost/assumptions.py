"""Named assumptions: every figure of an estimate rests on these, and every output shows them.

An :class:`Assumption` has a name, a value, a unit, a one-line meaning and where the value
came from (``default``, ``measured`` by ``--sample``, ``override`` from ``--assume``, or
``stack`` from the compiled StackModel, ``account`` read from the AWS account by ``apply``). :func:`default_assumptions` gives the defaults;
``Assumptions.with_values`` returns a copy with some values replaced. docs/plan.md explains
each one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from mrspec.errors import MrspecError

Source = Literal["default", "measured", "override", "stack", "account"]


@dataclass(frozen=True)
class Assumption:
    name: str
    value: float
    unit: str
    description: str
    source: Source = "default"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "description": self.description,
        }


# name, value, unit, description. Throughputs are per vCPU-second of single-threaded
# Python (one vCPU = 1,769 MB of Lambda memory); sizes are MiB (2**20 bytes).
_DEFAULTS: tuple[tuple[str, float, str, str], ...] = (
    ("map_cpu_s_per_mib", 0.1, "vCPU-s/MiB",
     "CPU time of the mapper (+combiner, sort, spill) per MiB of input, on one full vCPU"),
    ("reduce_cpu_s_per_mib", 0.05, "vCPU-s/MiB",
     "CPU time of the merge and reducer per MiB of shuffle data, on one full vCPU"),
    ("shuffle_ratio", 0.3, "bytes/byte",
     "shuffle bytes written per input byte (after the combiner)"),
    ("output_ratio", 0.1, "bytes/byte",
     "final output bytes per input byte"),
    ("records_per_mib", 20000, "records/MiB", "input records per MiB (informational)"),
    ("map_peak_memory_mb", 0, "MB",
     "peak memory of a map task measured by --sample (0: not measured)"),
    ("reduce_peak_memory_mb", 0, "MB",
     "peak memory of a reduce task measured by --sample (0: not measured)"),
    ("s3_read_mib_s", 80, "MiB/s", "S3 read throughput of one Lambda invocation"),
    ("s3_write_mib_s", 50, "MiB/s", "S3 write throughput of one Lambda invocation"),
    ("s3_request_latency_s", 0.02, "s",
     "time to first byte of one S3 request from Lambda (published measurements: 10-30 ms "
     "for small GETs; no AWS figure)"),
    ("s3_reads_in_flight", 8, "requests",
     "ranged GETs a task keeps in flight (its read pool); PUTs and LISTs wait one at a time"),
    ("merge_cpu_s_per_mib", 0.03, "vCPU-s/MiB",
     "CPU time of a merge task's heap merge per MiB of shuffle data, on one full vCPU"),
    ("merge_output_ratio", 1.0, "bytes/byte",
     "bytes a merge task writes per byte it reads (below 1 when the combiner folds equal "
     "keys of different map outputs; 1: no folding, the safe default)"),
    ("runtime_memory_mb", 100, "MB",
     "memory of the Python runtime, boto3, mrspec and the job's imports in one task"),
    ("task_result_memory_kib", 32, "KiB",
     "memory of one task result the commit holds parsed (counters, counts, output parts)"),
    ("task_overhead_s", 0.3, "s",
     "fixed time inside each invocation (imports of user code, manifest parsing, result)"),
    ("cold_start_s", 1.0, "s",
     "Lambda INIT time of a new execution environment (billed, as Lambda bills INIT)"),
    ("commit_s", 2.0, "s", "duration of the commit invocation"),
    ("retry_rate", 0.0, "fraction",
     "share of tasks that fail once and are retried (extra invocations and transitions)"),
    ("account_lambda_concurrency", 1000, "executions",
     "the account's Lambda concurrency quota in the region (AWS default 1,000)"),
    ("child_start_s", 0.1, "s",
     "Step Functions delay to start a child execution, per wave"),
    ("phase_overhead_s", 2.0, "s",
     "Step Functions overhead per Distributed Map phase (item reader, result writer)"),
    ("driver_s", 5.0, "s",
     "upload of manifests, start and polling of the execution by the driver"),
    ("partition_skew", 1.0, "x",
     "largest partition's shuffle bytes over the mean (1.0: even partitions)"),
    ("log_bytes_per_invocation", 1024, "bytes",
     "CloudWatch Logs bytes written per invocation (START/END/REPORT lines + mrspec's)"),
    ("express_child_memory_mb", 64, "MB",
     "memory an EXPRESS child workflow is billed for (payloads are references, so the minimum)"),
    ("multipart_part_mib", 16, "MiB", "part size of multipart uploads (mrspec's S3 writer)"),
    ("readahead_gets_per_split", 1, "GETs",
     "extra ranged GETs a split ending inside an object makes to finish its last record"),
    ("result_writer_objects", 2, "PUTs",
     "objects a Distributed Map ResultWriter writes per phase (results + manifest)"),
    ("reduce_reads_map_results", 1, "flag",
     "1: each reduce task GETs the head (index) of every exchange object it reads, "
     "named by the plan (no LIST); 0: the indexes arrive in the task payload"),
    ("hours_per_month", 730, "h", "hours in a billing month, for prorating S3 storage"),
    ("monthly_gb_s_before_run", 0, "GB-s",
     "Lambda GB-seconds the account already used this month (selects the price tier)"),
)


def default_assumptions() -> Assumptions:
    return Assumptions(
        {name: Assumption(name, float(v), unit, desc) for name, v, unit, desc in _DEFAULTS}
    )


@dataclass(frozen=True)
class Assumptions:
    items: Mapping[str, Assumption]

    def __getitem__(self, name: str) -> float:
        return self.items[name].value

    def __iter__(self) -> Iterator[Assumption]:
        return iter(self.items.values())

    def with_values(self, values: Mapping[str, float], source: Source) -> Assumptions:
        unknown = sorted(set(values) - set(self.items))
        if unknown:
            raise MrspecError(
                f"unknown assumption(s): {', '.join(unknown)}",
                hint=f"known: {', '.join(self.items)}",
            )
        items = dict(self.items)
        for name, value in values.items():
            items[name] = replace(items[name], value=float(value), source=source)
        return Assumptions(items)

    def to_json(self) -> list[dict[str, object]]:
        return [a.to_json() for a in self.items.values()]


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, float]:
    """``["shuffle_ratio=0.5", ...]`` -> ``{"shuffle_ratio": 0.5}`` (clear errors)."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            value = float(raw)
            if value < 0:
                raise ValueError
        except ValueError:
            raise MrspecError(
                f"--assume {pair!r}: expected NAME=NUMBER with a non-negative number",
                hint="for example --assume shuffle_ratio=0.5; docs/plan.md lists the names",
            ) from None
        out[name.strip()] = value
    return out

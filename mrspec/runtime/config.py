"""``TaskConfig``: everything a map, reduce or commit task needs from the job spec.

It travels as JSON (inside the Lambda package, in the local engine's worker processes),
so the task code never needs YAML or the spec loader. Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mrspec.spec.model import JobSpec

CONFIG_VERSION = 1


@dataclass(frozen=True)
class TaskConfig:
    """The task-side view of a job spec.

    ``code_path`` is the folder put on ``sys.path`` before the entrypoints are imported.
    ``from_spec`` fills in the spec's absolute ``code.path``; where the job's modules are
    already importable (the Lambda package puts them at its root) set it to ``""`` with
    ``dataclasses.replace(config, code_path="")``.

    ``compress_shuffle``: zlib the map tasks' shuffle objects (S3 traffic and request
    time); the local engine turns it off, its shuffle never leaving the machine.

    ``spill_bytes`` is the map task's in-memory buffer budget in estimated bytes; ``0``
    (the default) derives it from ``map_memory_mb`` (see ``buffer_budget``). Tests set it
    small to exercise spilling.
    """

    job_name: str
    code_path: str
    map_entrypoint: str  # "module:function"
    map_form: str = "record"  # "record" | "task"
    combiner_entrypoint: str | None = None
    reduce_entrypoint: str | None = None  # None: a map-only job
    partitions: int = 0  # 0 for a map-only job
    input_format: str = "text"  # "text" | "jsonl"
    output_format: str = "tsv"  # "tsv" | "jsonl"
    output_prefix: str = ""
    map_memory_mb: int = 1769
    reduce_memory_mb: int = 1769
    max_bad_records: int = 0
    max_attempts: int = 3
    spec_digest: str = ""
    spill_bytes: int = 0
    compress_shuffle: bool = True
    # set per run when it replaces an output: parts are part-NNNNN-<token> (runtime.replace)
    part_token: str = ""
    # the spec's params (with --param overrides), read by user code as mrspec.api.params()
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    # the step of a job with steps: tasks work under layout.step_work_prefix(work, step);
    # input_format "pairs" (a later step) reads the step before's parts, output_format
    # "pairs" (a step before the last) writes this step's parts in the shuffle format
    step: int = 0

    @property
    def map_only(self) -> bool:
        return self.reduce_entrypoint is None

    def memory_mb(self, kind: str) -> int:
        """The memory cap of a ``"map"``, ``"merge"`` or ``"reduce"`` task in MB (merge
        tasks run with the reduce section's memory)."""
        return self.map_memory_mb if kind == "map" else self.reduce_memory_mb

    def buffer_budget(self) -> int:
        """Estimated bytes a map task may buffer before it combines and spills.

        A third of the cap: the estimate is conservative, and the interpreter, the input
        chunk being decoded, the user's objects and the sort need the rest.
        """
        if self.spill_bytes > 0:
            return self.spill_bytes
        return max(8 * 1024**2, self.map_memory_mb * 1024**2 // 3)

    @property
    def intermediate(self) -> bool:
        """A step before the last: its output stays in the run's work prefix."""
        return self.output_format == "pairs"

    def part_uri(self, step_work: str, index: int) -> str:
        """Output part ``index`` of this step: the job's output, or (a step before the
        last) a part under the step's work prefix ``step_work``."""
        from mrspec.runtime.layout import part_uri, step_output_prefix

        if self.intermediate:
            return part_uri(step_output_prefix(step_work), index)
        return part_uri(self.output_prefix, index, self.part_token)

    @classmethod
    def from_spec(cls, spec: JobSpec, step: int = 0) -> TaskConfig:
        """The config of step ``step``'s tasks (a job without steps has only step 0)."""
        this = spec.steps[step]
        last = step == len(spec.steps) - 1
        return cls(
            job_name=spec.name,
            code_path=str(spec.code.path),
            map_entrypoint=this.map.entrypoint,
            map_form=this.map.form,
            combiner_entrypoint=this.map.combiner,
            reduce_entrypoint=this.reduce.entrypoint if this.reduce is not None else None,
            partitions=this.partitions,
            input_format=spec.input.format if step == 0 else "pairs",
            output_format=spec.output.format if last else "pairs",
            output_prefix=spec.output.prefix if last else "",
            map_memory_mb=this.map.memory_mb,
            reduce_memory_mb=this.reduce.memory_mb if this.reduce is not None else 0,
            max_bad_records=spec.limits.max_bad_records,
            max_attempts=spec.limits.max_attempts,
            spec_digest=spec.digest,
            params=dict(spec.params),
            step=step,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"version": CONFIG_VERSION, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskConfig:
        version = data.get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ValueError(f"task config version {version} is not {CONFIG_VERSION}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskConfig:
        return cls.from_dict(json.loads(text))

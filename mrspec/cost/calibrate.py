"""Calibration: run the job's own mapper, combiner and reducer on a sample of the real
input (``mrspec plan --sample SIZE``) and measure what the estimate otherwise assumes.

The sample is the first ``SIZE`` bytes across the plan's splits, or with ``spread=True``
equal slices taken from splits spread over the whole input. The runtime's task code
(``mrspec.runtime.run_map_task`` / ``run_reduce_task``, the code Lambda runs) processes
it in a fresh child process, so CPU time and peak memory belong to the tasks alone;
outputs go to a temporary folder, never to the job's output.

Measured: CPU seconds per MiB of input (map) and of shuffle (reduce), shuffle bytes and
output bytes per input byte, records per MiB, and peak memory of each kind of task.
:meth:`Calibration.assumption_values` feeds them to the estimate as ``measured``
assumptions; the model scales CPU time to Lambda's CPU share for the configured memory.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mrspec.errors import InputError, MrspecError
from mrspec.plan.model import JobPlan, MapTask, Split
from mrspec.spec.model import JobSpec

MIB = 1024**2


@dataclass(frozen=True)
class Calibration:
    sample_bytes: int  # input bytes the sample's splits cover
    map_input_bytes: int  # bytes the map task reported reading
    records: int
    map_cpu_s: float
    shuffle_bytes: int
    reduce_cpu_s: float
    output_bytes: int
    map_peak_memory_mb: float
    reduce_peak_memory_mb: float
    map_only: bool

    def assumption_values(self) -> dict[str, float]:
        read = max(self.map_input_bytes, self.sample_bytes, 1)
        mib = read / MIB
        out: dict[str, float] = {
            "map_cpu_s_per_mib": round(self.map_cpu_s / mib, 6),
            "output_ratio": round(self.output_bytes / read, 6),
            "records_per_mib": round(self.records / mib, 1),
            "map_peak_memory_mb": round(self.map_peak_memory_mb, 1),
        }
        if not self.map_only:
            out["shuffle_ratio"] = round(self.shuffle_bytes / read, 6)
            out["reduce_cpu_s_per_mib"] = round(
                self.reduce_cpu_s / max(self.shuffle_bytes / MIB, 1e-9), 6
            )
            out["reduce_peak_memory_mb"] = round(self.reduce_peak_memory_mb, 1)
        return out


def sample_splits(splits: Sequence[Split], size: int, spread: bool = False) -> tuple[Split, ...]:
    """Splits covering about ``size`` bytes of the input.

    First mode: the first ``size`` bytes, in plan order. Spread mode: up to 16 slices of
    ``size / n`` bytes from the starts of splits evenly spaced over the input. Compressed
    splits cannot be cut and are taken whole.
    """
    if size <= 0:
        raise MrspecError("--sample needs a positive size", hint="for example --sample 16MiB")
    if not splits:
        raise InputError("the input is empty: nothing to sample")
    if spread:
        slices = max(1, min(16, len(splits)))
        step = len(splits) / slices
        chosen = [splits[int(i * step)] for i in range(slices)]
        each = max(1, size // slices)
    else:
        chosen, each = list(splits), size
    out: list[Split] = []
    remaining = size
    for split in chosen:
        if remaining <= 0:
            break
        if split.compressed:
            out.append(split)
            remaining -= split.length
            continue
        take = min(split.length, remaining, each)
        out.append(Split(split.uri, split.start, split.start + take, split.object_size))
        remaining -= take
    return tuple(out)


def _child(config_json: str, task_json: dict[str, Any], partitions: int) -> dict[str, Any]:
    """Runs in a fresh process: the map task, then every partition's reduce task."""
    import resource

    from mrspec.runtime import TaskConfig, run_map_task, run_reduce_task

    config = TaskConfig.from_json(config_json)
    task = MapTask.from_json(task_json)
    with tempfile.TemporaryDirectory(prefix="mrspec-sample-") as tmp:
        # Warm up on the first record: imports of the user's modules and of the task code
        # are one-time costs (task_overhead_s), not CPU per MiB.
        first = task.splits[0]
        if not first.compressed:
            warm = dataclasses.replace(config, output_prefix=f"{tmp}/warm-output")
            tiny = MapTask(0, (Split(first.uri, first.start, first.start + 1, first.object_size),))
            warmed = run_map_task(warm, tiny, work_prefix=f"{tmp}/warm", scratch_dir=f"{tmp}/ws")
            if partitions:
                run_reduce_task(warm, 0, [warmed], work_prefix=f"{tmp}/warm",
                                scratch_dir=f"{tmp}/ws")
        config = dataclasses.replace(config, output_prefix=f"{tmp}/output")
        work, scratch = f"{tmp}/work", f"{tmp}/scratch"
        cpu0 = time.process_time()
        result = run_map_task(config, task, work_prefix=work, scratch_dir=scratch)
        map_cpu = time.process_time() - cpu0
        map_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
        counters = result.counters
        out: dict[str, Any] = {
            "map_input_bytes": int(counters.get("map_input_bytes", 0)),
            "records": int(counters.get("map_input_records", 0)),
            "map_cpu_s": map_cpu,
            "shuffle_bytes": int(counters.get("shuffle_bytes", 0)),
            "map_peak_memory_mb": map_peak,
            "output_bytes": int(counters.get("output_bytes", 0)),
            "reduce_cpu_s": 0.0,
            "reduce_peak_memory_mb": 0.0,
        }
        if partitions:
            cpu0 = time.process_time()
            output = 0
            for p in range(partitions):
                reduced = run_reduce_task(
                    config, p, [result], work_prefix=work, scratch_dir=scratch
                )
                output += reduced.counters.get("output_bytes", 0)
            out["reduce_cpu_s"] = time.process_time() - cpu0
            out["output_bytes"] = output
            out["reduce_peak_memory_mb"] = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            )
        return out


def calibrate(spec: JobSpec, plan: JobPlan, size: int, spread: bool = False) -> Calibration:
    """Run the job's functions on a sample of ``plan``'s input and measure them (a job
    with steps: its first step's, which reads the input; the ratios stand for every step)."""
    from mrspec.runtime import TaskConfig

    splits = sample_splits(plan.splits, size, spread)
    task = MapTask(0, splits)
    config = TaskConfig.from_spec(spec)
    first = spec.steps[0]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        try:
            measured = pool.apply(_child, (config.to_json(), task.to_json(), first.partitions))
        except MrspecError:
            raise
        except Exception as exc:
            raise MrspecError(
                f"--sample: running the job on the sample failed: {type(exc).__name__}: {exc}",
                hint="run `mrspec apply --local` on a small input to debug the job's code",
            ) from exc
    return Calibration(
        sample_bytes=sum(s.length for s in splits),
        map_input_bytes=measured["map_input_bytes"],
        records=measured["records"],
        map_cpu_s=measured["map_cpu_s"],
        shuffle_bytes=measured["shuffle_bytes"],
        reduce_cpu_s=measured["reduce_cpu_s"],
        output_bytes=measured["output_bytes"],
        map_peak_memory_mb=measured["map_peak_memory_mb"],
        reduce_peak_memory_mb=measured["reduce_peak_memory_mb"],
        map_only=first.map_only,
    )

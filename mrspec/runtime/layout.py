"""Every key under a run's work prefix, and the output's names: the one owner.

Layout of one run (``{hh}`` is two hex characters hashed from the rest of the name, so
S3 spreads a run's request rate over up to 256 partitioned prefixes instead of one)::

    {work}/manifests/map.json, merge-1.json, ..., reduce.json   phase items (AWS only)
    {work}/manifests/map-shards/00003.json   a map task too large for its item (both
                                          engines; encoded by ``mrspec.plan.items``)
    {work}/failures/<phase>-00007.json    a failed task's recorded error (AWS only; a
                                          later step's phase: step-1.map-00007.json)
    {work}/{hh}/shuffle/L0-00003          map task 3's shuffle object (level 0)
    {work}/{hh}/shuffle/L2-00001          merge task 1 of merge level 2
    {work}/{hh}/results/map-00003.json    a task's slim result (also merge-2-, reduce-)
    {output}/part-00000 ...               one part per partition (per map task when
                                          the job is map-only)
    {output}/_SUCCESS                     the manifest, written last

A job of several ``steps`` runs step 0 under ``{work}`` as above and step ``s > 0``
under ``{work}/step-{s}``, with the same layout inside. A step before the last writes
its output pairs in the shuffle format (``output_format`` ``pairs``) as parts under the
step's work prefix; step ``s`` map task ``i`` reads part ``i`` of step ``s - 1``::

    {work}[/step-{s}]/{hh}/output/part-00003  step s's output part 3 (pairs, no token)
    {work}/step-{s}/manifests/map.json ...   step s's phase items (AWS only)

Shuffle and result keys are deterministic from (phase, task id): a retried or late
attempt writes the same key with a self-consistent object (the index travels inside the
object, see ``mrspec.runtime.exchange``), so a reader needs no result to find its inputs.
"""

from __future__ import annotations

import re
import zlib

from mrspec.storage import join

MANIFESTS_DIR = "manifests"
FAILURES_DIR = "failures"
MAP_MANIFEST = "map.json"
REDUCE_MANIFEST = "reduce.json"
SHARDS = 256
_SHARD = re.compile(r"^[0-9a-f]{2}$")


STEP_DIR = "step-"
_STEP = re.compile(r"^step-[1-9][0-9]*$")


def step_work_prefix(work_prefix: str, step: int) -> str:
    """The work prefix of step ``step`` of a run (step 0: the run's own, unchanged)."""
    return work_prefix if step == 0 else join(work_prefix, f"{STEP_DIR}{step}")


def step_output_prefix(step_work: str) -> str:
    """Where a step before the last writes its output parts (under its work prefix)."""
    return join(step_work, shard("output"), "output")


def step_input_uri(work_prefix: str, step: int, task_id: int) -> str:
    """What map task ``task_id`` of step ``step > 0`` reads: that part of the step before."""
    return part_uri(step_output_prefix(step_work_prefix(work_prefix, step - 1)), task_id)


def step_phase(step: int, steps: int, phase: str) -> str:
    """A phase as shown, timed and named on AWS: ``map`` in a one-step job, else
    ``steps[1].map`` (both engines label a job's phases with it)."""
    return phase if steps == 1 else step_label(step, phase)


def step_label(step: int, phase: str) -> str:
    """``steps[1].map``: a phase of a job with steps."""
    return f"steps[{step}].{phase}"


_STEP_LABEL = re.compile(r"^steps\[([0-9]+)\]\.(.+)$")


def split_label(label: str) -> tuple[int | None, str]:
    """``step_label`` read back: ``steps[1].merge-2`` -> (1, ``merge-2``); a one-step
    job's ``map`` -> (None, ``map``)."""
    found = _STEP_LABEL.match(label)
    return (int(found.group(1)), found.group(2)) if found else (None, label)


def phase_key_name(phase: str) -> str:
    """A phase label as a key name: S3 advises against brackets, so ``steps[1].map``
    becomes ``step-1.map`` (a one-step job's names are kept as they are)."""
    step, inner = split_label(phase)
    return inner if step is None else f"{STEP_DIR}{step}.{inner}"


def is_work_key(relative: str) -> bool:
    """Whether a key below the run's work prefix is a work object (cleanup removes those):
    under a shard folder, of the run or of one of its later steps."""
    first, _, rest = relative.partition("/")
    if _STEP.match(first):
        first = rest.partition("/")[0]
    return is_shard_folder(first)


def shard(name: str) -> str:
    """Two hex characters spreading ``name`` over ``SHARDS`` prefixes (stable: crc32)."""
    return f"{zlib.crc32(name.encode()) % SHARDS:02x}"


def is_shard_folder(name: str) -> bool:
    return bool(_SHARD.match(name))


def _sharded(work_prefix: str, folder: str, name: str) -> str:
    return join(work_prefix, shard(f"{folder}/{name}"), folder, name)


def phase_name(level: int) -> str:
    """``map`` for level 0, ``merge-<level>`` for a merge level."""
    return "map" if level == 0 else f"merge-{level}"


def shuffle_uri(work_prefix: str, level: int, task_id: int) -> str:
    """The shuffle object of task ``task_id`` of exchange level ``level`` (0 = map)."""
    return _sharded(work_prefix, "shuffle", f"L{level}-{task_id:05d}")


def result_uri(work_prefix: str, phase: str, task_id: int) -> str:
    """A task's result; ``phase`` is ``map``, ``merge-<level>`` or ``reduce``."""
    return _sharded(work_prefix, "results", f"{phase}-{task_id:05d}.json")


def step_key_prefix(work_key_prefix: str, step: int) -> str:
    """``step_work_prefix`` for keys relative to the bucket (``runs/<id>/`` and
    ``runs/<id>/step-1/``): where a step's item manifests go on AWS."""
    return work_key_prefix if step == 0 else f"{work_key_prefix}{STEP_DIR}{step}/"


def manifest_key(work_key_prefix: str, phase: str) -> str:
    """The key of a phase's item manifest under the run's key prefix (``runs/<id>/``)."""
    name = {"map": MAP_MANIFEST, "reduce": REDUCE_MANIFEST}.get(phase, f"{phase}.json")
    return f"{work_key_prefix}{MANIFESTS_DIR}/{name}"


def map_shard_uri(work_prefix: str, task_id: int) -> str:
    """Map task ``task_id``'s manifest shard. ``mrspec.plan.items`` writes and reads it
    (the plan does not import the runtime, so the key is built there and asked here)."""
    from mrspec.plan import items

    return items.shard_uri(work_prefix, items.shard_key(task_id))


def failure_uri(work_prefix: str, phase: str, task_id: int) -> str:
    """A failed task's record; ``phase`` is its label (``step_phase``): every step's
    failures share the run's one folder, so one listing finds them all."""
    return join(work_prefix, FAILURES_DIR, f"{phase_key_name(phase)}-{task_id:05d}.json")


def failures_folder(work_prefix: str) -> str:
    return join(work_prefix, FAILURES_DIR) + "/"


def part_uri(output_prefix: str, index: int, token: str = "") -> str:
    """An output part's name (``mrspec.runtime.replace`` owns the run token in it)."""
    from mrspec.runtime.replace import part_uri as impl

    return impl(output_prefix, index, token)


def manifest_uri(output_prefix: str) -> str:
    return join(output_prefix, "_SUCCESS")

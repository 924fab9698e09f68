"""``mrspec status``: where a recorded run is, read from AWS without following it: the
execution's status, each phase's item counts (the figures of the live bars), the time
since the execution started and the cost so far (priced from the REPORT lines logged
until now, like the summary's actual cost)."""

from __future__ import annotations

import time
from typing import Any

from mrspec.aws import context
from mrspec.aws.readback import actual_cost
from mrspec.aws.run import AwsRunOptions
from mrspec.aws.state import RunRecord, StateStore
from mrspec.aws.watch import snapshot


def run_status(record: RunRecord, store: StateStore, options: AwsRunOptions) -> dict[str, Any]:
    status: dict[str, Any] = {
        "job": record.job,
        "run_id": record.run_id,
        "stack": record.stack,
        "status": record.status,
        "age_s": round(record.age_s, 1),
        "execution_status": None,
        "phases": [],
        "elapsed_s": None,
        "estimate_usd": None,
        "cost_so_far_usd": None,
    }
    if not record.execution_arn or store.load_context(record.stack) is None:
        return status  # deploying, or recorded before it started: nothing to read
    run = context.restore(record, store, options)
    names = [p.name for p in run.model.phases]
    current = snapshot(run.session.client("stepfunctions"), run.execution_arn, time.monotonic(),
                       names)
    status.update(
        execution_status=current.status,
        phases=[p.to_json() for p in current.phases],
        elapsed_s=round(max(0.0, time.time() - run.execution_started), 1),
        estimate_usd=run.estimate_usd,
        cost_so_far_usd=actual_cost(run.session, run.model),
    )
    return status

"""What attaching to a running execution needs, kept beside its run record.

``launch.start_execution`` saves :func:`document` in the state directory
(``context/<stack>.json``) as soon as the execution has started; :func:`restore` turns it
and the record back into an :class:`~mrspec.aws.run.AwsRun` in another process (``mrspec
attach``, ``mrspec status``), so that process follows, collects and tears down exactly as
the one that started the run would have. Everything is imported up front: attaching
happens while the execution runs (see ``mrspec.aws.finish``). The plan is saved whole: the input is not listed
again, and a changed input cannot change what the summary says about this run.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import boto3

from mrspec.aws.iam import KmsKeys
from mrspec.aws.lower import lower
from mrspec.aws.provisioner import StackOutputs, make_provisioner
from mrspec.aws.run import AwsRun, AwsRunOptions
from mrspec.aws.state import RunRecord, StateStore
from mrspec.errors import MrspecError
from mrspec.plan.codec import plan_document, plan_from_document
from mrspec.runtime.replace import Replacement
from mrspec.spec.loader import load_spec


def document(run: AwsRun) -> dict[str, Any]:
    assert run.plan is not None and run.outputs is not None
    return {
        "spec_path": str(run.spec.source or ""),
        "spec_digest": run.spec.digest,
        "input_prefixes": list(run.spec.input.prefixes),
        "output_prefix": run.spec.output.prefix,
        "overwrite": run.options.overwrite,
        "keep": run.options.keep,
        "keep_failed_s": run.options.keep_failed_s,
        "kept_usd_per_day": run.kept_usd_per_day,
        "account_id": run.account_id,
        "emulator": run.options.emulator,
        "kms_keys": run.kms_keys.to_json() if run.kms_keys else None,
        "replacing": run.replacing.to_json() if run.replacing else None,
        "estimate_usd": run.estimate_usd,
        "execution_started": run.execution_started,
        "working_bucket": run.outputs.working_bucket,
        "state_machine_arn": run.outputs.state_machine_arn,
        "functions": dict(run.outputs.functions),
        "log_groups": list(run.outputs.log_groups),
        "phase_s": {k: v for k, v in run.phase_s.items()},
        "resumed": run.resumed,  # a resume's tasks, by phase (empty for a first run)
        "plan": plan_document(run.plan),
    }


def restore(record: RunRecord, store: StateStore, options: AwsRunOptions) -> AwsRun:
    """The run of ``record`` as its starting process had it after ``start_execution``."""
    data = store.load_context(record.stack)
    if data is None or not record.execution_arn:
        raise MrspecError(
            f"run {record.run_id} of job {record.job} never started an execution "
            f"(status {record.status}): there is nothing to attach to",
            hint=f"remove its stack with `mrspec destroy {record.job} --run {record.run_id}`",
        )
    spec = _spec(record, data)
    plan = plan_from_document(data["plan"])
    keys = data.get("kms_keys") or {}
    kms = KmsKeys(tuple(keys.get("read", ())), tuple(keys.get("write", ())))
    options = replace(options, emulator=bool(data.get("emulator")), overwrite=bool(data["overwrite"]))
    options = replace(options, keep=options.keep or bool(data.get("keep")))
    # attaching follows the choice of the apply that started the run
    options = replace(options, keep_failed_s=int(data.get("keep_failed_s") or 0))
    session = options.session
    if session is None:
        session = boto3.Session(region_name=record.region)
    run = AwsRun(
        spec=spec,
        options=options,
        store=store,
        run_id=record.run_id,
        session=session,
        account_id=str(data["account_id"]),
        plan=plan,
        record=record,
        execution_arn=record.execution_arn,
        estimate_usd=data.get("estimate_usd"),
        kept_usd_per_day=data.get("kept_usd_per_day"),
        kms_keys=kms,
        execution_started=float(data.get("execution_started") or record.created_at),
        phase_s={str(k): float(v) for k, v in (data.get("phase_s") or {}).items()},
    )
    run.resumed = {str(k): [int(i) for i in v] for k, v in (data.get("resumed") or {}).items()}
    if data.get("replacing"):
        run.replacing = Replacement.from_json(data["replacing"])
    run.outputs = StackOutputs(
        working_bucket=str(data["working_bucket"]),
        state_machine_arn=str(data["state_machine_arn"]),
        functions={str(k): str(v) for k, v in (data.get("functions") or {}).items()},
        log_groups=tuple(str(g) for g in data.get("log_groups", ())),
    )
    run.model = _model(run, kms)
    if options.provisioner_factory is not None:
        run.provisioner = options.provisioner_factory(record, store)
    else:
        run.provisioner = make_provisioner(record.provisioner, record, store, session=session)
    return run


def _spec(record: RunRecord, data: dict[str, Any]) -> Any:
    path = str(data.get("spec_path") or record.spec_path)
    try:
        spec = load_spec(path)
    except MrspecError as exc:
        raise MrspecError(
            f"cannot attach to run {record.run_id}: its spec {path} does not load: {exc.message}",
            hint=f"restore the file, or remove the stack with `mrspec destroy {record.job} "
            f"--run {record.run_id}`",
        ) from exc
    if spec.digest != data.get("spec_digest"):
        sys.stderr.write(
            f"warning: {path} changed since run {record.run_id} started; the running "
            "execution keeps the code it was deployed with\n"
        )
    spec = replace(spec, input=replace(spec.input, prefixes=tuple(data["input_prefixes"])))
    return replace(spec, output=replace(spec.output, prefix=str(data["output_prefix"])))


def _model(run: AwsRun, kms: KmsKeys) -> Any:
    return lower(
        run.spec,
        run.plan,
        run_id=run.run_id,
        account_id=run.account_id,
        emulator=run.options.emulator,
        kms_keys=kms,
    )

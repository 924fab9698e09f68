"""S3 storage through boto3: ranged GETs, streaming reads, multipart writes.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3``), so any S3-compatible
endpoint works, moto's server included.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  # botocore needs it; importing it lazily from a read thread fails
import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, ClassVar, cast

from mrspec.errors import InputError, NoAccessError
from mrspec.spec.model import split_s3_uri
from mrspec.storage import ObjectInfo

_PART_SIZE = 16 * 1024**2  # multipart part size for streaming writes
# Adaptive retries: botocore backs off and rate-limits itself on 503 SlowDown (a fresh
# bucket has one partition until S3 splits it), so a throttled request is retried by the
# client instead of failing the task. Ten attempts ride out a repartitioning burst.
RETRY_MODE = "adaptive"
RETRY_MAX_ATTEMPTS = 10
MAX_POOL_CONNECTIONS = 32  # above the read threads of one task (mrspec.runtime.exchange)


CREDENTIALS_HINT = (
    "mrspec uses boto3's usual credentials: run `aws configure` or `aws sso login`, or "
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
_DENIED = ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch")
_EXPIRED = ("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "InvalidToken")


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Expected S3 failures (no credentials, denied, expired, unreachable) as located
    errors; ``what`` says which request, such as "list s3://bucket/in/"."""
    import botocore.exceptions as bex

    try:
        yield
    except (bex.NoCredentialsError, bex.PartialCredentialsError) as exc:
        raise NoAccessError(
            f"cannot {what}: no AWS credentials found ({exc})", hint=CREDENTIALS_HINT
        ) from exc
    except (bex.EndpointConnectionError, bex.ConnectTimeoutError) as exc:
        raise NoAccessError(
            f"cannot {what}: S3 is unreachable from here ({exc})",
            hint="check the network, AWS_REGION and any AWS_ENDPOINT_URL setting",
        ) from exc
    except bex.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _DENIED or code in _EXPIRED:
            why = "the credentials have expired" if code in _EXPIRED else "access is denied"
            raise NoAccessError(f"cannot {what}: {why} ({code})", hint=CREDENTIALS_HINT) from exc
        raise


OWNER_HANDLER_ID = "mrspec-expected-bucket-owner"


def expect_bucket_owner(events: Any, account_id: str) -> None:
    """Every S3 request made through ``events`` (a boto3 session's or a client's
    ``meta.events``) that can carry ``ExpectedBucketOwner`` carries ``account_id``: a
    bucket deleted and re-created under the same name in another account then answers
    403 instead of being read or written."""

    def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members:
            params.setdefault("ExpectedBucketOwner", account_id)

    events.register("before-parameter-build.s3", add_owner, unique_id=OWNER_HANDLER_ID)


class S3Storage:
    _shared: ClassVar[S3Storage | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @classmethod
    def shared(cls) -> S3Storage:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def reset_shared(cls) -> None:
        """Forget the shared client (tests switch endpoints and credentials)."""
        with cls._lock:
            cls._shared = None

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:  # boto3's default session is not safe to create clients from threads
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    retries: Any = {"mode": RETRY_MODE, "max_attempts": RETRY_MAX_ATTEMPTS}
                    config = Config(retries=retries, max_pool_connections=MAX_POOL_CONNECTIONS)
                    self._client = boto3.client("s3", config=config)
        return self._client

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        bucket, key_prefix = split_s3_uri(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            with s3_errors(f"list {prefix}"):
                pages = list(paginator.paginate(Bucket=bucket, Prefix=key_prefix))
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue  # a "folder" marker, not data
                    yield ObjectInfo(f"s3://{bucket}/{obj['Key']}", int(obj["Size"]))
        except self.client.exceptions.NoSuchBucket as exc:
            raise InputError(
                f"bucket {bucket!r} does not exist (listing {prefix})",
                hint="check the bucket name and the AWS account/region you are using",
            ) from exc

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        bucket, key = split_s3_uri(uri)
        if end is not None and end <= start:
            return b""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with s3_errors(f"read {uri}"):
            body = self.client.get_object(**kwargs)["Body"]
            return cast(bytes, body.read())

    def open_read(self, uri: str) -> BinaryIO:
        bucket, key = split_s3_uri(uri)
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        return cast(BinaryIO, io.BufferedReader(cast(Any, body._raw_stream), 1024 * 1024))

    def write(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        with s3_errors(f"write {uri}"):
            self.client.put_object(Bucket=bucket, Key=key, Body=data)

    @contextmanager
    def open_write(self, uri: str) -> Iterator[BinaryIO]:
        writer = _MultipartWriter(self.client, *split_s3_uri(uri))
        try:
            yield cast(BinaryIO, writer)
        except BaseException:
            writer.abort()
            raise
        writer.complete()

    def delete(self, uris: Iterable[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, key = split_s3_uri(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                chunk = keys[i : i + 1000]
                self.client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )

    def exists(self, uri: str) -> bool:
        bucket, key = split_s3_uri(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


class _MultipartWriter(io.RawIOBase):
    """Buffers writes; one PUT for small objects, a multipart upload for large ones."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        if len(self._buffer) >= _PART_SIZE:
            self._flush_part()
        return len(data)

    def _flush_part(self) -> None:
        if self._upload_id is None:
            created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
        self._buffer.clear()

    def complete(self) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            return
        if self._buffer:
            self._flush_part()
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )

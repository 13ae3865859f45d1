"""S3 objects for sources and outputs, without Dagster: listing, downloading, atomic uploads, retries
with backoff for transient errors, and one clear sentence for the errors a user must fix (no such
bucket, access denied, credentials rejected).

The client is any boto3 S3 client (the pipeline gets it from dagster-aws's `S3Resource`). Uploads
are atomic from a reader's point of view by S3's own rule: an object appears under its key only when
its PUT (or the completion of its multipart upload) succeeds, and a failed upload leaves the previous
object, or none, in place; we never write in place or append.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from shed_pipeline.core.files import atomic_path

S3_SCHEME = "s3://"
# Objects above this go up in parts (each part retried by s3transfer); the whole object still
# appears only when the upload completes.
MULTIPART_THRESHOLD = 64 * 1024 * 1024

# Error codes that a retry can cure: throttling, server-side failures, timeouts.
TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "500",
    "502",
    "503",
    "504",
}
ACCESS_CODES = {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}


class ObjectStoreError(Exception):
    """An S3 operation that cannot succeed as asked; the message names the location and the cause."""


class ObjectNotFound(ObjectStoreError):
    pass


class ObjectChanged(ObjectStoreError):
    """The object was rewritten between listing it and reading it (its ETag no longer matches)."""


def is_s3(location: str | os.PathLike[str] | None) -> bool:
    return isinstance(location, str) and location.startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str  # no leading slash; "" for the bucket itself

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not is_s3(uri):
            raise ValueError(f"{uri!r} is not an s3:// location")
        bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
        if len(bucket) < 3:
            raise ValueError(f"{uri!r}: bucket names have at least 3 characters")
        return cls(bucket, key.lstrip("/"))

    def child(self, name: str) -> S3Uri:
        base = self.key.rstrip("/")
        return S3Uri(self.bucket, f"{base}/{name}" if base else name)

    @property
    def name(self) -> str:
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # without quotes


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        code = err.get("Code")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return str(code) if code else (str(status) if status else None)
    return None


def _unwrap(exc: BaseException) -> BaseException:
    """The botocore error behind a wrapper: boto3's transfer manager raises S3UploadFailedError
    (no error code of its own) while handling the ClientError that says what went wrong."""
    while type(exc).__module__.startswith("boto3") and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def _is_transient(exc: Exception) -> bool:
    from botocore import exceptions as bx

    if isinstance(
        exc,
        (
            bx.EndpointConnectionError,
            bx.ConnectionClosedError,
            bx.ReadTimeoutError,
            bx.ConnectTimeoutError,
            bx.ResponseStreamingError,
            bx.IncompleteReadError,
        ),
    ):
        return True
    code = _error_code(exc)
    return code in TRANSIENT_CODES if code else isinstance(exc, (ConnectionError, TimeoutError))


class ObjectStore:
    """A boto3 S3 client with retries and clear errors. `sleep` is injectable for tests."""

    def __init__(
        self,
        client: Any,
        *,
        attempts: int = 5,
        base_delay_s: float = 0.2,
        max_delay_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] | None = None,
    ):
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.client = client
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep
        self.log = log

    @property
    def endpoint(self) -> str:
        meta = getattr(self.client, "meta", None)
        return str(getattr(meta, "endpoint_url", "") or "the default AWS endpoint")

    def _call(self, what: str, where: S3Uri, fn: Callable[[], Any]) -> Any:
        from botocore import exceptions as bx

        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except bx.NoCredentialsError as exc:
                raise ObjectStoreError(
                    f"{where}: no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                    "AWS_PROFILE)"
                ) from exc
            except Exception as raised:  # botocore raises many types; classify by code
                exc = _unwrap(raised)
                code = _error_code(exc)
                if code in ("NoSuchBucket",):
                    raise ObjectStoreError(f"s3://{where.bucket}: no such bucket at {self.endpoint}") from exc
                if code in ("NoSuchKey", "404", "NotFound"):
                    raise ObjectNotFound(f"{where}: no such object") from exc
                if code in ("PreconditionFailed", "412"):
                    raise ObjectChanged(f"{where}: the object changed while it was being read") from exc
                if code in ACCESS_CODES:
                    raise ObjectStoreError(
                        f"{where}: access denied while trying to {what} (check the credentials' permissions and the "
                        "bucket policy)"
                    ) from exc
                if code in CREDENTIAL_CODES:
                    raise ObjectStoreError(
                        f"{where}: the S3 service rejected the credentials ({code}) while trying to {what}"
                    ) from exc
                if not _is_transient(exc):
                    raise ObjectStoreError(f"{where}: cannot {what} ({code or type(exc).__name__}: {exc})") from exc
                if attempt == self.attempts:
                    raise ObjectStoreError(
                        f"{where}: cannot {what} after {self.attempts} attempts ({code or type(exc).__name__}: {exc})"
                    ) from exc
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
                if self.log:
                    self.log(
                        f"{where}: {what} failed ({code or type(exc).__name__}), retry {attempt}/{self.attempts - 1} "
                        f"in {delay:.1f}s"
                    )
                self.sleep(delay)
        raise AssertionError("unreachable")

    # -- reading -------------------------------------------------------------------------------

    def head(self, uri: S3Uri) -> ObjectInfo | None:
        try:
            r = self._call(
                "read the object's metadata", uri, lambda: self.client.head_object(Bucket=uri.bucket, Key=uri.key)
            )
        except ObjectNotFound:
            return None
        return ObjectInfo(uri.key, int(r["ContentLength"]), str(r.get("ETag", "")).strip('"'))

    def list(self, prefix: S3Uri) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix.key`, sorted by key. The bucket must exist."""
        out: list[ObjectInfo] = []
        token: str | None = None
        while True:
            kwargs = {"Bucket": prefix.bucket, "Prefix": prefix.key}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list objects", prefix, lambda kw=kwargs: self.client.list_objects_v2(**kw))
            for obj in page.get("Contents", []) or []:
                out.append(ObjectInfo(obj["Key"], int(obj["Size"]), str(obj.get("ETag", "")).strip('"')))
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
        return sorted(out, key=lambda o: o.key)

    def read_bytes(self, uri: S3Uri) -> bytes:
        def get() -> bytes:
            body = self.client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
            try:
                return body.read()  # a broken stream mid-read is retried as a whole
            finally:
                body.close()

        return self._call("read the object", uri, get)

    def download(self, uri: S3Uri, dest: Path, etag: str | None = None) -> str:
        """Copy an object to a local file (written beside it, then renamed); its sha256 hex. With
        `etag` (from a listing), only that version is read: a rewritten object raises ObjectChanged."""
        pinned = {"IfMatch": f'"{etag}"'} if etag else {}
        with atomic_path(dest) as tmp:

            def get() -> str:  # each retry rewrites the temporary from the start
                h = hashlib.sha256()
                body = self.client.get_object(Bucket=uri.bucket, Key=uri.key, **pinned)["Body"]
                try:
                    with tmp.open("wb") as fh:
                        for chunk in iter(lambda: body.read(1 << 20), b""):
                            h.update(chunk)
                            fh.write(chunk)
                finally:
                    body.close()
                return h.hexdigest()

            return self._call("download the object", uri, get)

    # -- writing -------------------------------------------------------------------------------

    def put_bytes(self, data: bytes, uri: S3Uri, content_type: str = "application/octet-stream") -> ObjectInfo:
        r = self._call(
            "write the object",
            uri,
            lambda: self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=data, ContentType=content_type),
        )
        return ObjectInfo(uri.key, len(data), str(r.get("ETag", "")).strip('"'))

    def put_file(self, path: Path, uri: S3Uri, content_type: str = "application/octet-stream") -> ObjectInfo:
        size = path.stat().st_size
        if size <= MULTIPART_THRESHOLD:
            return self.put_bytes(path.read_bytes(), uri, content_type)
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)
        self._call(
            "upload the object",
            uri,
            lambda: self.client.upload_file(
                str(path), uri.bucket, uri.key, ExtraArgs={"ContentType": content_type}, Config=config
            ),
        )
        info = self.head(uri)
        if info is None or info.size != size:
            raise ObjectStoreError(f"{uri}: upload finished but the object is missing or has the wrong size")
        return info


CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
    ".png": "image/png",
}


def publish(store: ObjectStore, files: list[Path], destination: str) -> list[str]:
    """Upload local files under an s3:// folder, one atomic PUT each; their s3:// locations."""
    base = S3Uri.parse(destination)
    out = []
    for f in files:
        uri = base.child(f.name)
        store.put_file(f, uri, CONTENT_TYPES.get(f.suffix, "application/octet-stream"))
        out.append(str(uri))
    return out

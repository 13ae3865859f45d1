"""The S3 wrapper against a real S3-compatible server (moto on 127.0.0.1), and its retry and error
rules against a client that fails on purpose."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shed_pipeline.core.objectstore import (
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    S3Uri,
    is_s3,
    publish,
)


def test_s3_uri_parsing():
    u = S3Uri.parse("s3://bkt/a/b/c.jsonl")
    assert (u.bucket, u.key, u.name, str(u)) == ("bkt", "a/b/c.jsonl", "c.jsonl", "s3://bkt/a/b/c.jsonl")
    assert str(S3Uri.parse("s3://bkt").child("x.json")) == "s3://bkt/x.json"
    assert str(S3Uri.parse("s3://bkt/p/").child("x.json")) == "s3://bkt/p/x.json"
    assert is_s3("s3://bkt/x") and not is_s3("/tmp/x") and not is_s3(None)
    with pytest.raises(ValueError, match="at least 3"):
        S3Uri.parse("s3://ab/x")


def test_put_list_read_download_round_trip(s3_bucket, tmp_path):
    store = ObjectStore(s3_bucket.client)
    b = s3_bucket.name
    store.put_bytes(b"one", S3Uri(b, "p/a.jsonl"))
    store.put_bytes(b"two!", S3Uri(b, "p/sub/b.jsonl"))
    store.put_bytes(b"other", S3Uri(b, "p-other/c.jsonl"))
    listed = store.list(S3Uri(b, "p/"))
    assert [(o.key, o.size) for o in listed] == [("p/a.jsonl", 3), ("p/sub/b.jsonl", 4)]
    assert store.read_bytes(S3Uri(b, "p/sub/b.jsonl")) == b"two!"
    dest = tmp_path / "d" / "b.jsonl"
    digest = store.download(S3Uri(b, "p/sub/b.jsonl"), dest)
    assert dest.read_bytes() == b"two!" and digest == __import__("hashlib").sha256(b"two!").hexdigest()
    assert [p.name for p in dest.parent.iterdir()] == ["b.jsonl"]  # no partial file left
    assert store.head(S3Uri(b, "p/missing.jsonl")) is None
    f = tmp_path / "report.json"
    f.write_text("{}")
    assert publish(store, [f], f"s3://{b}/results") == [f"s3://{b}/results/report.json"]
    assert store.read_bytes(S3Uri(b, "results/report.json")) == b"{}"


def test_missing_bucket_and_missing_object_fail_with_the_location(s3_bucket):
    store = ObjectStore(s3_bucket.client)
    with pytest.raises(ObjectStoreError, match=r"s3://no-such-bucket-here: no such bucket at http://127\.0\.0\.1"):
        store.list(S3Uri("no-such-bucket-here", "x/"))
    with pytest.raises(ObjectNotFound, match=f"s3://{s3_bucket.name}/nothing.json: no such object"):
        store.read_bytes(S3Uri(s3_bucket.name, "nothing.json"))


def test_a_multipart_upload_is_invisible_until_it_completes(s3_bucket, tmp_path, monkeypatch):
    """What makes our uploads atomic: S3 shows an object only once its upload completes. Here the
    previous object stays readable while a multipart upload of a new one is under way, and our
    multipart path (large files) writes the new bytes whole."""
    c, b = s3_bucket.client, s3_bucket.name
    store = ObjectStore(c)
    store.put_bytes(b"old", S3Uri(b, "out/curated.parquet"))
    up = c.create_multipart_upload(Bucket=b, Key="out/curated.parquet")
    part = c.upload_part(
        Bucket=b, Key="out/curated.parquet", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * (5 << 20)
    )
    assert store.read_bytes(S3Uri(b, "out/curated.parquet")) == b"old"  # half-uploaded: readers see the old object
    c.complete_multipart_upload(
        Bucket=b,
        Key="out/curated.parquet",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert store.head(S3Uri(b, "out/curated.parquet")).size == 5 << 20
    import shed_pipeline.core.objectstore as objectstore

    monkeypatch.setattr(objectstore, "MULTIPART_THRESHOLD", 5 << 20)
    big = tmp_path / "big.parquet"
    payload = bytes(range(256)) * (48 << 10)  # 12 MiB: three parts
    big.write_bytes(payload)
    info = store.put_file(big, S3Uri(b, "out/curated.parquet"))
    assert info.size == len(payload) and store.read_bytes(S3Uri(b, "out/curated.parquet")) == payload
    # boto3's transfer manager wraps the service's error (S3UploadFailedError): still said plainly.
    with pytest.raises(ObjectStoreError, match=r"s3://no-such-bucket-here: no such bucket at http://127\.0\.0\.1"):
        store.put_file(big, S3Uri("no-such-bucket-here", "out/curated.parquet"))


def test_a_download_pinned_to_a_listed_etag_refuses_a_rewritten_object(s3_bucket, tmp_path):
    store = ObjectStore(s3_bucket.client)
    uri = S3Uri(s3_bucket.name, "in/a.jsonl")
    listed = store.put_bytes(b"first\n", uri)
    store.put_bytes(b"second\n", uri)  # rewritten after the listing
    dest = tmp_path / "a.jsonl"
    with pytest.raises(ObjectChanged, match=f"{uri}: the object changed while it was being read"):
        store.download(uri, dest, etag=listed.etag)
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    store.download(uri, dest, etag=store.head(uri).etag)
    assert dest.read_bytes() == b"second\n"


class FlakyClient:
    """Fails the first `failures` calls of every method with `error`, then delegates."""

    def __init__(self, inner, failures, error):
        self.inner, self.failures, self.error, self.calls = inner, failures, error, 0

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def call(*a, **kw):
            self.calls += 1
            if self.calls <= self.failures:
                raise self.error
            return target(*a, **kw)

        return call


def client_error(code, status):
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


@pytest.mark.parametrize(
    "error",
    [
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
)
def test_transient_errors_are_retried_with_exponential_backoff(s3_bucket, error):
    sleeps = []
    flaky = FlakyClient(s3_bucket.client, 3, error)
    store = ObjectStore(flaky, attempts=5, base_delay_s=0.5, sleep=sleeps.append)
    info = store.put_bytes(b"payload", S3Uri(s3_bucket.name, "r/x.json"))
    assert isinstance(info, ObjectInfo) and flaky.calls == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert s3_bucket.get("r/x.json") == b"payload"


def test_retries_give_up_with_the_location_and_count(s3_bucket):
    store = ObjectStore(
        FlakyClient(s3_bucket.client, 99, client_error("SlowDown", 503)), attempts=3, sleep=lambda s: None
    )
    with pytest.raises(
        ObjectStoreError, match=rf"s3://{s3_bucket.name}/r/x.json: cannot write the object after 3 attempts \(SlowDown"
    ):
        store.put_bytes(b"p", S3Uri(s3_bucket.name, "r/x.json"))


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("AccessDenied", 403, "access denied while trying to write the object"),
        ("InvalidAccessKeyId", 403, r"rejected the credentials \(InvalidAccessKeyId\)"),
        ("InvalidArgument", 400, r"cannot write the object \(InvalidArgument"),
    ],
)
def test_errors_a_user_must_fix_are_not_retried(s3_bucket, code, status, message):
    sleeps = []
    flaky = FlakyClient(s3_bucket.client, 1, client_error(code, status))
    store = ObjectStore(flaky, sleep=sleeps.append)
    with pytest.raises(ObjectStoreError, match=message):
        store.put_bytes(b"p", S3Uri(s3_bucket.name, "r/x.json"))
    assert flaky.calls == 1 and sleeps == []

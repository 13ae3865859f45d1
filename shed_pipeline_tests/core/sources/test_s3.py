"""s3:// sources: which objects a source is, the local mirror, the listing version, and that an S3
source reads exactly like the same files on disk."""

import gzip
import hashlib
import json

import pytest

from shed_pipeline.core.objectstore import ObjectStore, S3Uri
from shed_pipeline.core.sources import FieldMapping, SourceError, load_source, scan_s3_source
from shed_pipeline.core.sources.s3 import list_source_objects, listing_version, mirror_source, mirrored, normalize
from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl


class CountingStore(ObjectStore):
    def __init__(self, client):
        super().__init__(client)
        self.downloads = 0

    def download(self, uri, dest, etag=None):
        self.downloads += 1
        return super().download(uri, dest, etag)


def test_a_source_is_one_object_or_the_supported_objects_under_a_prefix(s3_bucket, tmp_path):
    b, c = s3_bucket.name, s3_bucket.client
    for key in [
        "data/a.jsonl",
        "data/sub/b.csv",
        "data/.hidden.jsonl",
        "data/readme.txt",
        "data-other/c.jsonl",
        "data/sub/",
    ]:
        c.put_object(Bucket=b, Key=key, Body=b"{}\n")
    store = ObjectStore(c)
    assert [o.key for o in list_source_objects(store, f"s3://{b}/data")] == ["data/a.jsonl", "data/sub/b.csv"]
    assert [o.key for o in list_source_objects(store, f"s3://{b}/data/")] == ["data/a.jsonl", "data/sub/b.csv"]
    assert [o.key for o in list_source_objects(store, f"s3://{b}/data/a.jsonl")] == ["data/a.jsonl"]
    assert normalize(f"s3://{b}/data/") == normalize(f"s3://{b}/data") == f"s3://{b}/data"
    with pytest.raises(SourceError, match=rf"s3://{b}/empty: no .*objects at this location"):
        list_source_objects(store, f"s3://{b}/empty")
    with pytest.raises(SourceError, match="s3://missing-bucket-x: no such bucket"):
        list_source_objects(store, "s3://missing-bucket-x/data")


def test_mirror_downloads_only_new_or_rewritten_objects_and_drops_removed_ones(s3_bucket, tmp_path):
    b = s3_bucket.name
    rows = make_rows(30)
    s3_bucket.put("in/a.jsonl", write_jsonl(tmp_path / "a.jsonl", rows[:10]))
    s3_bucket.put("in/b.jsonl", write_jsonl(tmp_path / "b.jsonl", rows[10:20]))
    store = CountingStore(s3_bucket.client)
    mirror = tmp_path / "mirror"
    first = mirror_source(store, f"s3://{b}/in", list_source_objects(store, f"s3://{b}/in"), mirror)
    assert store.downloads == 2 and [m.location for m in first] == [f"s3://{b}/in/a.jsonl", f"s3://{b}/in/b.jsonl"]
    assert first[0].sha256 == hashlib.sha256((tmp_path / "a.jsonl").read_bytes()).hexdigest()
    again = mirror_source(store, f"s3://{b}/in", list_source_objects(store, f"s3://{b}/in"), mirror)
    assert store.downloads == 2 and [m.sha256 for m in again] == [m.sha256 for m in first]
    s3_bucket.put("in/b.jsonl", write_jsonl(tmp_path / "b2.jsonl", rows[10:25]))  # rewritten
    s3_bucket.client.delete_object(Bucket=b, Key="in/a.jsonl")
    (mirror / ".b.jsonl.7-1a2b.partial").write_bytes(b"another run's download under way")
    third = mirror_source(store, f"s3://{b}/in", list_source_objects(store, f"s3://{b}/in"), mirror)
    assert store.downloads == 3 and len(third) == 1
    # The removed object's copy is gone; hidden names (other runs' temporaries) are left alone.
    assert sorted(p.name.startswith(".") for p in mirror.iterdir()) == [False, True]


class RewritingStore(CountingStore):
    """Rewrites the object just before the first `times` downloads: a writer racing the reader."""

    def __init__(self, bucket, times):
        super().__init__(bucket.client)
        self.bucket, self.times = bucket, times

    def download(self, uri, dest, etag=None):
        if self.downloads < self.times:
            self.bucket.put(uri.key, f'{{"v": {self.downloads}, "of": {self.times}}}\n'.encode())
        return super().download(uri, dest, etag)


def test_an_object_rewritten_while_mirroring_is_listed_again_and_read_whole(s3_bucket, tmp_path):
    s3_bucket.put("in/a.jsonl", b'{"v": "old"}\n')
    store = RewritingStore(s3_bucket, times=1)
    with mirrored(store, f"s3://{s3_bucket.name}/in/", tmp_path / "m") as (objs, files):
        assert files[0].path.read_bytes() == b'{"v": 0, "of": 1}\n'  # the rewritten bytes, not a mix
        assert objs[0].etag == store.head(S3Uri(s3_bucket.name, "in/a.jsonl")).etag  # and the listing that matches them
    assert store.downloads == 2
    with pytest.raises(SourceError, match="changed while it was being read .*kept changing over 3 listings"):
        with mirrored(RewritingStore(s3_bucket, times=10), f"s3://{s3_bucket.name}/in/", tmp_path / "m2"):
            pass


def test_listing_version_changes_on_add_or_rewrite_but_not_on_the_same_bytes(s3_bucket, tmp_path):
    b = s3_bucket.name
    f = write_jsonl(tmp_path / "a.jsonl", make_rows(10))
    s3_bucket.put("w/a.jsonl", f)
    store = ObjectStore(s3_bucket.client)
    v1 = scan_s3_source(store, f"s3://{b}/w")
    s3_bucket.put("w/a.jsonl", f)  # same bytes again: same ETag
    assert scan_s3_source(store, f"s3://{b}/w").fingerprint == v1.fingerprint
    s3_bucket.put("w/b.jsonl", f)
    v2 = scan_s3_source(store, f"s3://{b}/w")
    assert v2.fingerprint != v1.fingerprint and sorted(v2.files) == ["w/a.jsonl", "w/b.jsonl"]
    assert v2.fingerprint == listing_version(list_source_objects(store, f"s3://{b}/w"))


def test_an_s3_source_reads_like_the_same_files_on_disk(s3_bucket, tmp_path):
    b = s3_bucket.name
    folder = tmp_path / "local"
    write_jsonl(folder / "a.jsonl", make_rows(40), BAD_LINES)
    write_jsonl(folder / "b.jsonl", make_rows(60)[40:])
    for f in sorted(folder.iterdir()):
        s3_bucket.put(f"src/{f.name}", f)
    args = dict(
        rows=None,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=tmp_path / "cache",
        log=lambda m: None,
    )
    local = load_source(str(folder), FieldMapping(), **args)
    remote = load_source(
        f"s3://{b}/src/", FieldMapping(), **args, store=ObjectStore(s3_bucket.client), mirror_dir=tmp_path / "mirror"
    )
    assert remote.label == f"s3://{b}/src" and remote.version.startswith("s3-")
    assert remote.fingerprint == local.fingerprint  # content hash: where the bytes live does not matter
    assert remote.rows.drop("source_file").equals(local.rows.drop("source_file"))
    assert set(remote.rows["source_file"]) == {f"s3://{b}/src/a.jsonl", f"s3://{b}/src/b.jsonl"}
    assert remote.quarantine.height == local.quarantine.height == len(BAD_LINES)
    assert set(remote.quarantine["source_file"]) == {f"s3://{b}/src/a.jsonl"}
    with pytest.raises(ValueError, match="needs an object store"):
        load_source(f"s3://{b}/src/", FieldMapping(), **args)
    assert str(S3Uri.parse(remote.label).child("x")) == f"s3://{b}/src/x"


def test_s3_objects_follow_the_local_folder_rule_and_what_is_not_read_is_reported(s3_bucket, tmp_path):
    b, c = s3_bucket.name, s3_bucket.client
    rows = make_rows(3)
    c.put_object(Bucket=b, Key="in/a.jsonl", Body=json.dumps(rows[0]).encode() + b"\n")
    c.put_object(Bucket=b, Key="in/b.jsonl.gz", Body=gzip.compress(json.dumps(rows[1]).encode() + b"\n"))
    c.put_object(
        Bucket=b, Key="in/.cache/c.jsonl", Body=json.dumps(rows[2]).encode() + b"\n"
    )  # in a hidden folder: was read
    c.put_object(Bucket=b, Key="in/d.parquet.gz", Body=b"x")
    c.put_object(Bucket=b, Key="in/e.txt", Body=b"x")
    store = ObjectStore(c)
    skipped = []
    assert [o.key for o in list_source_objects(store, f"s3://{b}/in", skipped)] == ["in/a.jsonl", "in/b.jsonl.gz"]
    assert [(n, w.split(" (")[0]) for n, w in skipped] == [
        (f"s3://{b}/in/.cache/c.jsonl", "hidden"),
        (f"s3://{b}/in/d.parquet.gz", "compressed Parquet"),
        (f"s3://{b}/in/e.txt", "unsupported file type '.txt'"),
    ]
    assert [o.key for o in list_source_objects(store, f"s3://{b}/in/b.jsonl.gz")] == ["in/b.jsonl.gz"]
    loaded = load_source(
        f"s3://{b}/in",
        FieldMapping(),
        rows=None,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=tmp_path / "cache",
        log=lambda m: None,
        store=store,
        mirror_dir=tmp_path / "mirror",
    )
    assert (
        loaded.rows["source_file"].to_list() == [f"s3://{b}/in/a.jsonl", f"s3://{b}/in/b.jsonl.gz"]
        and loaded.skipped == skipped
    )

"""A manifest lists the files that belong together, with their sizes and digests."""

import hashlib
import json

from shed_pipeline.core.manifest import write_manifest


def test_a_manifest_lists_each_files_bytes_and_sha256(tmp_path):

    a, b = tmp_path / "curated.jsonl", tmp_path / "curated.parquet"
    a.write_bytes(b'{"x": 1}\n')
    b.write_bytes(b"PAR1" * 1000)
    m = json.loads(write_manifest(tmp_path / "curated.manifest.json", [a, b], run_id="r1", rows=1).read_text())
    assert m == {
        "run_id": "r1",
        "rows": 1,
        "files": {
            f.name: {"bytes": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()} for f in (a, b)
        },
    }

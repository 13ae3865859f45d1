import os

import pytest

from shed_pipeline.core.sources import SourceError, scan_source, source_fingerprint


def test_scan_reuses_hashes_of_untouched_files_and_matches_the_run_fingerprint(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"instruction": "x", "output": "y"}\n')
    (tmp_path / "b.jsonl").write_text('{"instruction": "z", "output": "w"}\n')
    first = scan_source(tmp_path)
    assert first.hashed == 2
    assert first.fingerprint == source_fingerprint(sorted(tmp_path.iterdir()))
    again = scan_source(tmp_path, first.to_cursor())
    assert again.hashed == 0 and again.fingerprint == first.fingerprint
    # Touching a file re-hashes it but the content, hence the fingerprint, is the same.
    st = (tmp_path / "a.jsonl").stat()
    os.utime(tmp_path / "a.jsonl", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = scan_source(tmp_path, again.to_cursor())
    assert touched.hashed == 1 and touched.fingerprint == first.fingerprint
    (tmp_path / "c.jsonl").write_text('{"instruction": "q", "output": "r"}\n')
    grown = scan_source(tmp_path, touched.to_cursor())
    assert grown.hashed == 1 and grown.fingerprint != first.fingerprint


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="nothing"):
        scan_source(tmp_path / "nothing")

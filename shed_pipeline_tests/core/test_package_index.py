"""Source archives fetched from a package index's simple API (a file:// index built in the test)."""

import hashlib

import pytest

from shed_pipeline.core import package_index


def make_index(root, payload, sha):
    project = root / "simple" / "demo-pkg"
    project.mkdir(parents=True)
    files = root / "files"
    files.mkdir()
    (files / "demo_pkg-1.0.tar.gz").write_bytes(payload)
    (project / "index.html").write_text(
        f'<html><body><a href="../../files/demo_pkg-1.0.tar.gz#sha256={sha}">demo_pkg-1.0.tar.gz</a></body></html>'
    )
    return f"file://{root / 'simple'}"


def test_sdist_is_downloaded_from_the_index_and_checked(tmp_path, monkeypatch):
    payload = b"archive bytes" * 1000
    monkeypatch.setenv("PIP_INDEX_URL", make_index(tmp_path / "idx", payload, hashlib.sha256(payload).hexdigest()))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    got = package_index.pip_download("demo_pkg==1.0", "demo_pkg-1.0.tar.gz", tmp_path / "cache", log=lambda m: None)
    assert got == tmp_path / "cache" / "demo_pkg-1.0.tar.gz" and got.read_bytes() == payload
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["demo_pkg-1.0.tar.gz"]  # no temporary left


def test_a_corrupt_download_is_refused_and_never_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", make_index(tmp_path / "idx", b"tampered", "0" * 64))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    with pytest.raises(RuntimeError, match="does not match the index"):
        package_index.pip_download("demo_pkg==1.0", "demo_pkg-1.0.tar.gz", tmp_path / "cache", log=lambda m: None)
    assert list((tmp_path / "cache").iterdir()) == []  # neither the file nor a temporary
    with pytest.raises(RuntimeError, match="no configured index lists it"):
        package_index.pip_download("other==1.0", "other-1.0.tar.gz", tmp_path / "cache", log=lambda m: None)


def test_credentials_in_an_index_url_become_basic_auth_and_are_never_shown(tmp_path, monkeypatch):
    url, headers = package_index.split_credentials("https://alice:s%40cret@pkgs.example.com:8443/simple/")
    assert url == "https://pkgs.example.com:8443/simple/" and headers["Authorization"].startswith("Basic ")
    import base64

    assert base64.b64decode(headers["Authorization"][6:]).decode() == "alice:s@cret"
    assert package_index.split_credentials("https://pypi.org/simple") == ("https://pypi.org/simple", {})
    # An index that cannot be reached is reported without its password, and the next one is tried.
    monkeypatch.setenv("PIP_INDEX_URL", "http://bob:hunter2@127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", make_index(tmp_path / "idx", b"ok", hashlib.sha256(b"ok").hexdigest()))
    got = package_index.pip_download("demo_pkg==1.0", "demo_pkg-1.0.tar.gz", tmp_path / "cache", log=lambda m: None)
    assert got.read_bytes() == b"ok"
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    with pytest.raises(RuntimeError) as exc:
        package_index.pip_download("other==1.0", "other-1.0.tar.gz", tmp_path / "cache2", log=lambda m: None)
    assert "hunter2" not in str(exc.value) and "127.0.0.1:9" in str(exc.value)

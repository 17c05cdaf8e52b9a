"""Downloading datasets: mirrors, resumable transfers, checksums, safe archive extraction.

- Each file is tried at every mirror in turn (``$TRAINLAB_MIRROR``, comma-separated base URLs serving
  ``<base>/<dataset>/<file>``, comes first; then the official URLs).
- It is written to ``<file>.part``. A transfer that breaks off leaves the part file; the next attempt (in the
  same call, or a later ``trainlab data get``) asks only for the missing bytes with an HTTP ``Range`` header
  and appends them when the server answers 206 (a server that ignores ranges sends the whole file again).
- The part file is renamed to its final name only after its MD5 matches the published one; a mismatch
  deletes it and tries the next mirror.
- Archives are extracted into a temporary folder beside the data, member by member checked first: no
  absolute paths, no ``..``, no links pointing outside, no device files (and Python's ``data`` extraction
  filter on top); the result is moved into place only when the whole archive extracted.
- Offline, the error names the URLs tried and the exact files and folder expected, so the files can be
  placed by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from trainlab.data.base import DatasetSource, Resource
from trainlab.errors import DataError

CHUNK = 1 << 20  # bytes read per call
TIMEOUT_S = 30.0  # per socket operation
USER_AGENT = "trainlab (dataset download)"

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Incomplete(Exception):
    """The transfer ended before the announced length: resumable."""


def md5_file(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _transfer(url: str, part: Path, timeout: float, log: Log) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size; raise _Incomplete if cut short."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is complete (the checksum decides)
            return
        raise
    with resp:
        mode = "wb"
        if have and resp.status == 206:
            start = _range_start(resp.headers.get("Content-Range"))
            if start == have:
                mode = "ab"
                log(f"  resuming at {have / 2**20:.1f} MB")
        remaining = resp.headers.get("Content-Length")
        expected = int(remaining) if remaining and remaining.isdigit() else None
        got = 0
        with part.open(mode) as f:
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
            except (http.client.IncompleteRead, OSError) as exc:  # includes socket timeouts and resets
                partial = getattr(exc, "partial", b"")
                if partial:
                    f.write(partial)
                raise _Incomplete(f"transfer interrupted ({type(exc).__name__})") from None
        if expected is not None and got < expected:
            total = (have if mode == "ab" else 0) + got
            raise _Incomplete(f"connection closed after {total} bytes, {expected - got} short")


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range or "")
    return int(m.group(1)) if m else None


def fetch(
    urls: list[str],
    dest: Path,
    md5: str | None,
    *,
    attempts: int = 3,
    timeout: float = TIMEOUT_S,
    backoff_s: float = 1.0,
    log: Log = _stderr,
) -> Path:
    """Download ``dest`` from the first of ``urls`` that delivers a file with the right MD5.

    Interrupted transfers are resumed up to ``attempts`` times per URL (waiting ``backoff_s``, doubling);
    a URL that cannot be reached or whose file has the wrong checksum gives way to the next. Raises
    :class:`DataError` listing every URL and what went wrong; a partial ``.part`` file is left for the next
    call to resume.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    problems: list[str] = []
    for url in urls:
        for attempt in range(attempts):
            if attempt == 0:
                log(f"downloading {url} -> {dest}")
            try:
                _transfer(url, part, timeout, log)
            except _Incomplete as exc:
                problems.append(f"{url}: {exc}")
                if attempt + 1 < attempts:
                    log(f"  {exc}; retrying")
                    time.sleep(backoff_s * 2**attempt)
                continue
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", None) or exc
                problems.append(f"{url}: {reason}")
                break  # unreachable or refused: next mirror
            got = md5_file(part)
            if md5 and got != md5:
                part.unlink()
                problems.append(f"{url}: checksum mismatch (MD5 {got}, expected {md5}); file discarded")
                break
            os.replace(part, dest)
            return dest
    raise DataError(f"cannot download {dest.name}: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------------------
# Archives


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse a member that could write outside the extraction folder or is not a plain file/folder/link."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise DataError(f"{archive}: unsafe member path '{name}' (absolute or containing '..'); not extracted")
    if member.issym() or member.islnk():
        # A symlink's target is relative to its own folder, a hard link's to the archive's top.
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise DataError(f"{archive}: link '{name}' -> '{member.linkname}' points outside the archive")
    elif not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: member '{name}' is a device or special file; not extracted")


def safe_extract(archive: Path, dest: Path) -> list[str]:
    """Extract a tar archive (any compression) into ``dest`` after checking every member; return the names."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, archive)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.TarError as exc:
        raise DataError(f"{archive}: cannot extract ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{archive}: truncated or unreadable archive ({exc})") from None
    return [m.name for m in members]


# ------------------------------------------------------------------------------------------------------
# Whole datasets


def mirrors_for(src: DatasetSource) -> list[str]:
    """Base URLs to try for ``src``: ``$TRAINLAB_MIRROR`` entries (``<base>/<name>/``) first, then the official."""
    extra = [m.strip() for m in os.environ.get("TRAINLAB_MIRROR", "").split(",") if m.strip()]
    return [f"{m.rstrip('/')}/{src.name}/" for m in extra] + list(src.mirrors)


def manual_instructions(src: DatasetSource, root: Path) -> str:
    """How to place the files by hand: the URLs and the exact files and folder expected."""
    files = [r.filename for r in src.resources]
    if len(files) == 1:
        what = " or ".join(m + files[0] for m in src.mirrors)
    else:
        others = f" (or {', '.join(src.mirrors[1:])})" if len(src.mirrors) > 1 else ""
        what = f"{', '.join(files)} from {src.mirrors[0]}{others}"
    return (
        f"To install {src.name} by hand, download {what} and put {'it' if len(files) == 1 else 'them'} in {root} "
        f"(expected there: {src.layout}); or set data.root to a folder that already holds them."
    )


def _install(res: Resource, urls: list[str], root: Path, fetch_kwargs: dict) -> None:
    dest = root / res.filename
    if dest.is_file() and not res.extract and md5_file(dest) == res.md5:
        return  # already downloaded and intact
    if res.size:
        fetch_kwargs.get("log", _stderr)(f"{res.filename}: {res.size / 2**20:.0f} MB")
    fetch(urls, dest, res.md5, **fetch_kwargs)
    if not res.extract:
        return
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        safe_extract(dest, tmp)
        for entry in sorted(tmp.iterdir()):
            target = root / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dest.unlink()  # the extracted folder is what is read; the archive would double the disk use


def download_dataset(
    src: DatasetSource,
    root: Path,
    *,
    mirrors: list[str] | None = None,
    log: Log = _stderr,
    **fetch_kwargs,
) -> Path:
    """Download (and extract) every resource of ``src`` into ``root``; raise :class:`DataError` if offline.

    ``mirrors`` replaces the mirror list (tests point it at a local server).
    """
    if not src.resources:
        raise DataError(f"{src.name} is not downloaded: {src.description}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{src.name}: cannot create the data folder {root} ({exc.strerror or exc})") from None
    bases = mirrors if mirrors is not None else mirrors_for(src)
    for res in src.resources:
        try:
            _install(res, [b + res.filename for b in bases], root, {"log": log, **fetch_kwargs})
        except DataError as exc:
            raise DataError(f"{src.name}: {exc}. {manual_instructions(src, root)}") from None
    return root

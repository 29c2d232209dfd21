"""fmnist's own files under its data root: the warm cache, the records that say which files are
fmnist's, and the content digests proven on this machine.

A dataset's folder ``<root>/<name>/`` holds what fmnist downloaded, its warm cache (the
decompressed IDX files, ``<root>/<name>/<stem>``, written read-only and only ever replaced by
rename) and one record file, ``.fmnist-cache.json``:

- ``files``: each cache file fmnist wrote, stamped with its device, inode, size, mtime and ctime
  and the content SHA-256 it was verified to have. Only a file whose stamp matches in full is
  mapped without being hashed again; ctime changes with any write, chmod or rename, so a file
  rewritten in place (its mtime put back) no longer matches.
- ``downloads``: the device and inode of each file fmnist downloaded there, so that fmnist
  replaces only its own files; a file anyone else put at such a path is never replaced.
- ``proven``: content SHA-256s established on this machine from a verified published form (a
  .gz whose stored digest matched, a member of a verified archive, keras's .npz), each with the
  published digest that proved it: the proof for a decompressed copy when the registry has no
  content digest of its own.

Everything here is optional: a read-only or full root, a record file that cannot be read or
written, any failure to write, and the load still returns verified data (the caller logs a
warning). ``FMNIST_CACHE=0`` (or ``cache=False``) turns the warm cache and the records off.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .datasets import FileInfo
from .idx import atomic_write

RECORDS = ".fmnist-cache.json"
#: A temporary file of ``idx.atomic_write``: ``<name>.<12 hex digits>.partial``.
TEMPORARY = re.compile(r".+\.[0-9a-f]{12}\.partial")
LOCK = ".lock"

#: Each record file's last parsed version: path -> ((inode, size, mtime_ns), records).
_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def enabled(cache: bool | None = None) -> bool:
    if cache is not None:
        return cache
    return os.environ.get("FMNIST_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cacheable(info: FileInfo) -> bool:
    """Whether ``info`` is kept in the warm cache: files of one-byte elements, which map as the
    native arrays loads return (the others are big-endian on disk and would need a byteswap)."""
    return np.dtype(info.dtype).itemsize == 1


def identity(st: os.stat_result) -> dict[str, int]:
    """What a stamp records of a file: changed by any write, chmod, rename or replacement."""
    return {
        "dev": st.st_dev,
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }


class Home:
    """One folder of fmnist's own under its data root (a dataset's, or an archive's)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._snapshot: dict[str, Any] | None = None

    def path(self, info: FileInfo) -> Path:
        """The warm cache file of ``info``."""
        return self.folder / info.stem

    # --- the record file --------------------------------------------------------------------

    def records(self, reread: bool = False) -> dict[str, Any]:
        """The record file's contents (a deep enough copy for callers to change), as this object
        first read them unless ``reread`` (do, with the lock held, before changing them). Parsed
        once per version of the file: it is only ever replaced by rename, so its inode, size and
        mtime name a version, and a warm load costs a stat, not a parse."""
        if self._snapshot is None or reread:
            self._snapshot = self._read_records()
        return {k: dict(v) for k, v in self._snapshot.items()}

    def entry(self, section: str, key: str) -> dict[str, Any] | None:
        """One entry of the records as first read (not a copy: read it, do not change it)."""
        if self._snapshot is None:
            self._snapshot = self._read_records()
        entry = self._snapshot.get(section, {}).get(key)
        return entry if isinstance(entry, dict) else None

    def _read_records(self) -> dict[str, Any]:
        path = self.folder / RECORDS
        try:
            st = path.stat()
            version = (st.st_ino, st.st_size, st.st_mtime_ns)
            known = _PARSED.get(path)
            if known is None or known[0] != version:
                data = json.loads(_read_small(path))
                known = (version, _upgraded(data) if isinstance(data, dict) else {})
                _PARSED[path] = known
            return {k: v for k, v in known[1].items() if isinstance(v, dict)}
        except (OSError, ValueError):
            return {}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The folder's cross-process lock: one process downloads or writes here at a time."""
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / LOCK)):
            yield

    # --- what is fmnist's -------------------------------------------------------------------

    def owns(self, path: Path, section: str, key: str, st: os.stat_result | None = None) -> bool:
        """Whether the file at ``path`` (whose ``lstat`` is ``st``, when the caller has it) is the
        one fmnist recorded under ``section``/``key`` (same device and inode): only such a file may
        fmnist replace."""
        entry = self.entry(section, key)
        if entry is None:
            return False
        if st is None:
            try:
                st = path.lstat()
            except OSError:
                return False
        if entry.get("legacy"):  # written by an earlier fmnist: its size, mtime and read-only mode
            same = (entry.get("size"), entry.get("mtime_ns")) == (st.st_size, st.st_mtime_ns)
            return same and stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o444
        return (entry.get("dev"), entry.get("ino")) == (st.st_dev, st.st_ino)

    def record_download(self, path: Path) -> None:
        """Records the file fmnist just renamed into place at ``path`` as its own."""
        st = path.lstat()
        records = self.records(reread=True)
        records.setdefault("downloads", {})[path.name] = {"dev": st.st_dev, "ino": st.st_ino}
        self.save(records)

    # --- the warm cache ---------------------------------------------------------------------

    def stamp(self, info: FileInfo) -> dict[str, Any] | None:
        return self.entry("files", info.stem)

    def fresh(self, info: FileInfo) -> tuple[bool, str | None]:
        """(whether the cache file of ``info`` is fmnist's and unchanged since it was stamped,
        the content SHA-256 stamped for it). A file fmnist did not write, or anything but a
        regular file, is never fresh."""
        entry = self.stamp(info)
        if entry is None:
            return False, None
        try:
            st = self.path(info).lstat()
        except OSError:
            return False, None
        digest = entry.get("content_sha256")
        digest = digest if isinstance(digest, str) else None
        if not stat.S_ISREG(st.st_mode) or not self.owns(self.path(info), "files", info.stem, st):
            return False, None
        return all(entry.get(k) == v for k, v in identity(st).items()), digest

    def map(self, info: FileInfo) -> npt.NDArray[Any]:
        """The cache file of ``info`` mapped copy-on-write (writeable; writes stay private; no file
        descriptor held); the engine checks its header and length. On Windows, which cannot
        replace a mapped file, it is read instead."""
        path = str(self.path(info))
        if os.name == "nt":
            (outcome,) = _core.read([_core.Request(path)], max_bytes=info.content_size)
            array: npt.NDArray[Any] = outcome.array
        else:
            array = _core.map_idx(path, info.dtype, list(info.shape))
        return array

    def write(self, info: FileInfo, array: npt.NDArray[Any], content_sha256: str) -> dict[str, Any] | None:
        """Writes the verified ``array`` as the cache file of ``info`` (read-only, by rename) and
        returns its stamp, for ``save``. None, writing nothing, when a file fmnist did not write
        is at the cache path (it is never replaced). OSError when the folder cannot be written."""
        path = self.path(info)
        if (path.exists() or path.is_symlink()) and not self.owns(path, "files", info.stem):
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        _writable_on_windows(path)
        header = _core.idx_header(info.dtype, list(info.shape))
        # Not fsynced: a cache file lost in a crash no longer matches its stamp, so it is hashed
        # again before any use.
        atomic_write(str(path), header, np.ascontiguousarray(array).reshape(-1).data, fsync=False, mode=0o444)
        return self.stamp_of(info, content_sha256)

    def stamp_of(self, info: FileInfo, content_sha256: str) -> dict[str, Any]:
        """The stamp of fmnist's cache file of ``info`` as it is now, verified to hold
        ``content_sha256``."""
        return {**identity(self.path(info).lstat()), "content_sha256": content_sha256}

    def save(self, records: dict[str, Any]) -> None:
        """Replaces the record file (by rename) with ``records``."""
        _PARSED.pop(self.folder / RECORDS, None)
        self._snapshot = None
        body = json.dumps({"version": 2, **records}, indent=1, sort_keys=True) + "\n"
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(str(self.folder / RECORDS), body.encode(), fsync=False)

    def clean_temporaries(self) -> None:
        """Removes the temporary files of fmnist's writers that died before their rename
        (``<file>.<12 hex digits>.partial``; never a download's resumable ``<file>.partial``).
        Call with the lock held: then no live writer of this folder has one open."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            if TEMPORARY.fullmatch(name):
                try:
                    os.unlink(self.folder / name)
                except FileNotFoundError:
                    pass

    # --- proofs -----------------------------------------------------------------------------

    def proven(self, info: FileInfo, by: str) -> dict[str, str]:
        """The content SHA-256 proven for ``info`` on this machine by the published digest ``by``
        (e.g. "stored_md5:8d4f..."), with what proved it: {digest: where}."""
        entry = self.entry("proven", info.name)
        if entry is None or entry.get("by") != by or not isinstance(entry.get("content_sha256"), str):
            return {}
        where = entry.get("where", "a verified copy")
        return {entry["content_sha256"]: f"{where} (recorded in {self.folder / RECORDS})"}


def _upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """The records as this version keeps them. An earlier fmnist's stamps file (no "version":
    ``{stem: {size, mtime_ns, content_sha256}}``, or ``path`` for a copy it mapped elsewhere)
    keeps its cache files fmnist's: each is marked ``legacy``, owned while its size, mtime and
    read-only mode are the stamp's, never fresh (hashed against its stamped content before its
    first use, then stamped in full). Its stamps of copies elsewhere are dropped: those were never
    fmnist's."""
    if data.get("version") == 2:
        return data
    files = {
        stem: {
            "size": e.get("size"),
            "mtime_ns": e.get("mtime_ns"),
            "content_sha256": e.get("content_sha256"),
            "legacy": True,
        }
        for stem, e in data.items()
        if isinstance(e, dict) and "path" not in e and isinstance(e.get("content_sha256"), str)
    }
    return {"files": files}


def _read_small(path: Path) -> bytes:
    """A record file's bytes: a regular file of at most 1 MiB (anything else reads as empty)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return b"{}"
        return f.read(1 << 20)


def _writable_on_windows(path: Path) -> None:
    """Windows refuses to replace or delete a read-only file: make fmnist's own writable first.
    POSIX needs no such step (renaming over a file depends on its folder)."""
    if os.name == "nt":
        try:
            os.chmod(path, 0o666)
        except OSError:
            pass

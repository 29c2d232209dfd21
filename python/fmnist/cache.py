"""The warm cache: decompressed IDX files in the data root, mapped instead of read.

After a file is verified, its decompressed IDX is written beside the download
(``<root>/<dataset>/<stem>``, e.g. ``train-images-idx3-ubyte``: 55 MB for all of Fashion-MNIST)
and stamped with its size, modification time and content SHA-256 in ``.fmnist-cache.json``.
A later load maps it copy-on-write: the array is writeable, native, and costs no read until its
pages are touched. The file is hashed again only when its size or mtime no longer match the
stamp; a file that then fails its digest (corrupt, truncated) is deleted and rebuilt, never
returned. ``FMNIST_CACHE=0`` (or ``cache=False``) turns the cache off: nothing in it is read or
written.

A verified decompressed copy found elsewhere (torchvision's ``raw/`` folder) is not copied: it is
mapped where it lies, and its stamp records its path, so later loads map it without hashing it
again while its size and mtime are unchanged. A mapping holds no file descriptor.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .datasets import FileInfo
from .errors import IdxFormatError
from .idx import atomic_write

STAMPS = ".fmnist-cache.json"

#: Each stamps file's last parsed version: (inode, size, mtime_ns) -> its entries.
_PARSED_STAMPS: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def enabled(cache: bool | None = None) -> bool:
    if cache is not None:
        return cache
    return os.environ.get("FMNIST_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


class Cache:
    """The cache of one dataset folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, info: FileInfo) -> Path:
        return self.folder / info.stem

    def _stamps(self) -> dict[str, Any]:
        """The stamps file's entries (a copy: callers may change it). Read once per version of the
        file: a warm load asks for every file's stamp, and reading the JSON each time cost a
        quarter of the load (a stat costs a fifth of a read). The file is only ever replaced by
        rename, so its inode, size and mtime name a version."""
        path = self.folder / STAMPS
        try:
            st = path.stat()
            version = (st.st_ino, st.st_size, st.st_mtime_ns)
            known = _PARSED_STAMPS.get(path)
            if known is None or known[0] != version:
                stamps = json.loads(path.read_text())
                known = (version, stamps if isinstance(stamps, dict) else {})
                _PARSED_STAMPS[path] = known
            return dict(known[1])
        except (OSError, ValueError):
            return {}

    def _stamp(self, info: FileInfo, sha256: str, elsewhere: Path | None = None) -> None:
        st = (elsewhere or self.path(info)).stat()
        stamps = self._stamps()
        entry: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "content_sha256": sha256}
        if elsewhere is not None:
            entry["path"] = str(elsewhere.absolute())
        stamps[info.stem] = entry
        _PARSED_STAMPS.pop(self.folder / STAMPS, None)
        atomic_write(str(self.folder / STAMPS), (json.dumps(stamps, indent=1, sort_keys=True) + "\n").encode())

    def status(self, info: FileInfo) -> str:
        """'fresh' (stamp matches), 'stale' (file changed since its stamp), or 'absent'. Anything
        that is not a regular file at the cache path (a FIFO, a folder, a device) counts as
        absent: it is never opened, and a rebuild replaces it by rename where it can."""
        try:
            st = self.path(info).stat()
        except (FileNotFoundError, NotADirectoryError):
            return "absent"
        if not stat.S_ISREG(st.st_mode):
            return "absent"
        entry = self._stamps().get(info.stem)
        if entry and "path" not in entry and (entry.get("size"), entry.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
            return "fresh"
        return "stale"

    def in_place(self, info: FileInfo) -> tuple[Path, npt.NDArray[Any]] | None:
        """A decompressed copy elsewhere that was verified and stamped (``stamp_in_place``) and has
        not changed since (same size and mtime): its path and its array, mapped. None otherwise:
        then discovery looks for it (and verifies it) again. Never deletes it: it is not ours."""
        entry = self._stamps().get(info.stem)
        if not entry or "path" not in entry:
            return None
        path = Path(entry["path"])
        try:
            st = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or (entry.get("size"), entry.get("mtime_ns")) != (st.st_size, st.st_mtime_ns):
            return None
        array = map_idx(path, info)
        return None if array is None else (path, array)

    def stamp_in_place(self, info: FileInfo, path: Path, content_sha256: str) -> bool:
        """Records a verified decompressed copy at ``path`` (outside the cache) to be mapped in place
        by later loads; a cache file of our own for it is removed (the stamp now points elsewhere)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.discard(info)
            self._stamp(info, content_sha256, elsewhere=path)
            return True
        except OSError:
            return False

    def verified_content(self, info: FileInfo) -> str | None:
        """The content SHA-256 recorded when a copy of ``info`` was verified (and cached or
        stamped): proof for a decompressed copy whose registry entry has no content digest."""
        digest = self._stamps().get(info.stem, {}).get("content_sha256")
        return digest if isinstance(digest, str) else None

    def get(self, info: FileInfo) -> npt.NDArray[Any] | None:
        """The cached array, or None (absent, or found corrupt and deleted). A file at the cache
        path with neither a stamp nor a registry content digest to judge it by (another loader's
        decompressed copy, where the cache shares torchvision's folder) is left alone."""
        status = self.status(info)
        if status == "absent":
            return None
        path = self.path(info)
        if status == "stale":
            if not (info.content_sha256 or self.verified_content(info)):
                return None
            problem, digest = self.check(info)
            if problem:
                self.discard(info)
                return None
            self._stamp(info, digest)
        array = map_idx(path, info)
        if array is None:
            self.discard(info)
        return array

    def check(self, info: FileInfo) -> tuple[str, str]:
        """Hashes the cache file (as it streams past: nothing is decoded into an array only to
        be dropped) and compares it with the known content SHA-256, else the one stamped when it
        was written. Returns (problem, or "" if it matches; the digest found)."""
        known = info.content_sha256
        whose = "the known content SHA-256" if known else "the SHA-256 stamped when it was verified"
        expected = known or self._stamps().get(info.stem, {}).get("content_sha256")
        if not isinstance(expected, str):
            return "no content SHA-256 to check it by", ""
        (outcome,) = _core.read(
            [str(self.path(info))],
            mode="digests",
            expected=[[("content_sha256", expected, whose)]],
            strict=False,
            errors="return",
        )
        if isinstance(outcome, BaseException):
            return f"unreadable: {outcome}", ""
        (verdict,) = outcome.verdicts
        return ("" if verdict.matched else verdict.message), verdict.actual

    def audit(self, info: FileInfo) -> str | None:
        """For ``fmnist verify`` and ``info``, which trust no stamp: None if there is no cache
        file; else hashes it, discards it if it fails (the next load rebuilds it), and returns
        the problem ("" when it is good)."""
        if self.status(info) == "absent":
            return None
        problem, _ = self.check(info)
        if problem:
            self.discard(info)
        return problem

    def clean_temporaries(self) -> list[Path]:
        """Removes the temporary files of cache writers that died before their rename
        (``<file>.<12 hex digits>.partial``; never a download's resumable ``<file>.gz.partial``).
        Call with the dataset lock held: then no live writer of this folder has one open."""
        removed: list[Path] = []
        try:
            names = os.listdir(self.folder)
        except OSError:
            return removed
        for name in names:
            if TEMPORARY.fullmatch(name):
                try:
                    os.unlink(self.folder / name)
                    removed.append(self.folder / name)
                except FileNotFoundError:
                    pass
        return removed

    def put(self, info: FileInfo, array: npt.NDArray[Any], content_sha256: str) -> bool:
        """Caches a verified array; False if the folder cannot be written (the cache is optional)."""
        if array.shape != info.shape or array.dtype != np.dtype(info.dtype) or not array.flags.c_contiguous:
            raise ValueError(f"{info.name}: expected a C-contiguous {info.shape} {info.dtype} array")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Not fsynced: a cache file lost in a crash has another size or mtime than its
            # stamp, so it is hashed again (and rebuilt) before any use. Read-only (0444), and
            # replaced only by rename: a file mapped by an earlier load never changes under it.
            _writable_on_windows(self.path(info))
            header = _core.idx_header(info.dtype, list(info.shape))
            atomic_write(str(self.path(info)), header, array.reshape(-1).data, fsync=False, mode=0o444)
            self._stamp(info, content_sha256)
            return True
        except OSError:
            return False

    def discard(self, info: FileInfo) -> None:
        """Removes the cache file (a regular file only; anything else there is left alone)."""
        if self.status(info) == "absent":
            return
        _writable_on_windows(self.path(info))
        try:
            self.path(info).unlink()
        except FileNotFoundError:
            pass


#: A temporary file of ``idx.atomic_write``: ``<name>.<12 hex digits>.partial``.
TEMPORARY = re.compile(r".+\.[0-9a-f]{12}\.partial")


def _writable_on_windows(path: Path) -> None:
    """Windows refuses to replace or delete a read-only file: make it writable first. POSIX
    needs no such step (renaming over or unlinking a file depends on its folder)."""
    if os.name == "nt":
        try:
            os.chmod(path, 0o666)
        except OSError:
            pass


def map_idx(path: Path, info: FileInfo) -> npt.NDArray[Any] | None:
    """Maps a decompressed IDX file copy-on-write as an array of ``info``'s shape and dtype
    (writeable; writes stay private; no file descriptor is held); None if it is not exactly such
    an IDX file (the engine parses its header and checks its length), or not a regular file."""
    if os.name == "nt":
        # Windows cannot replace or delete a file while it is mapped, and the cache must stay
        # replaceable (a rebuild, `fmnist verify`): there the file is read instead.
        try:
            (outcome,) = _core.read([str(path)], max_bytes=info.content_size)
        except (OSError, IdxFormatError):
            return None
        array = outcome.array
        return array if array is not None and array.shape == info.shape and array.dtype == info.dtype else None
    try:
        return _core.map_idx(str(path), info.dtype, list(info.shape))
    except (OSError, IdxFormatError):
        return None

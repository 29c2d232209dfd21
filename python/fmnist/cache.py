"""The warm cache: decompressed IDX files in the data root, mapped instead of read.

After a file is verified, its decompressed IDX is written beside the download
(``<root>/<dataset>/<stem>``, e.g. ``train-images-idx3-ubyte``: 55 MB for all of Fashion-MNIST)
and stamped with its size, modification time and content SHA-256 in ``.fmnist-cache.json``.
A later load maps it copy-on-write: the array is writeable, native, and costs no read until its
pages are touched. The file is hashed again only when its size or mtime no longer match the
stamp; a file that then fails its digest (corrupt, truncated) is deleted and rebuilt, never
returned. ``FMNIST_CACHE=0`` (or ``cache=False``) turns the cache off.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .datasets import FileInfo
from .idx import atomic_write

STAMPS = ".fmnist-cache.json"


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
        try:
            stamps = json.loads((self.folder / STAMPS).read_text())
            return stamps if isinstance(stamps, dict) else {}
        except (OSError, ValueError):
            return {}

    def _stamp(self, info: FileInfo, sha256: str) -> None:
        st = self.path(info).stat()
        stamps = self._stamps()
        stamps[info.stem] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "content_sha256": sha256}
        atomic_write(str(self.folder / STAMPS), (json.dumps(stamps, indent=1, sort_keys=True) + "\n").encode())

    def status(self, info: FileInfo) -> str:
        """'fresh' (stamp matches), 'stale' (file changed since its stamp), or 'absent'."""
        try:
            st = self.path(info).stat()
        except FileNotFoundError:
            return "absent"
        entry = self._stamps().get(info.stem)
        if entry and (entry.get("size"), entry.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
            return "fresh"
        return "stale"

    def get(self, info: FileInfo) -> npt.NDArray[Any] | None:
        """The cached array, or None (absent, or found corrupt and deleted)."""
        status = self.status(info)
        if status == "absent":
            return None
        path = self.path(info)
        if status == "stale":
            expected = info.content_sha256 or self._stamps().get(info.stem, {}).get("content_sha256")
            # Hashed as it streams past: nothing is decoded into an array only to be dropped.
            (outcome,) = _core.read_idx_digests([str(path)], [["content_sha256"]], decode=False)
            if isinstance(outcome, BaseException) or outcome[1]["content_sha256"] != expected:
                self.discard(info)
                return None
            self._stamp(info, outcome[1]["content_sha256"])
        array = _map(path, info)
        if array is None:
            self.discard(info)
        return array

    def put(self, info: FileInfo, array: npt.NDArray[Any], content_sha256: str) -> bool:
        """Caches a verified array; False if the folder cannot be written (the cache is optional)."""
        if array.shape != info.shape or array.dtype != np.uint8 or not array.flags.c_contiguous:
            raise ValueError(f"{info.name}: expected a C-contiguous {info.shape} uint8 array")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Not fsynced: a cache file lost in a crash has another size or mtime than its
            # stamp, so it is hashed again (and rebuilt) before any use.
            atomic_write(str(self.path(info)), _header(info), array.reshape(-1).data, fsync=False)
            self._stamp(info, content_sha256)
            return True
        except OSError:
            return False

    def discard(self, info: FileInfo) -> None:
        try:
            self.path(info).unlink()
        except FileNotFoundError:
            pass


def _header(info: FileInfo) -> bytes:
    """The IDX header of a uint8 file of ``info.shape``."""
    return bytes([0, 0, 8, len(info.shape)]) + np.array(info.shape, ">u4").tobytes()


def _map(path: Path, info: FileInfo) -> npt.NDArray[Any] | None:
    """Maps a cached IDX file copy-on-write as an array of ``info.shape``; None if its header or
    length is not the expected one."""
    header = _header(info)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size != info.content_size or f.read(len(header)) != header:
            return None
        if os.name == "nt":
            # Windows cannot replace or delete a file while it is mapped, and the cache must
            # stay replaceable (a rebuild, `fmnist verify`): there the file is read instead.
            return np.fromfile(f, dtype=np.uint8, count=size - len(header)).reshape(info.shape)
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    return np.ndarray(info.shape, dtype=np.uint8, buffer=mm, offset=len(header))

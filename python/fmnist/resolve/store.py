"""fmnist's own folder of a dataset (or an archive) under its data root, and its record file,
``.fmnist-cache.json``, written atomically and durably. Its sections, each entry an identity
(device, inode, size, mtime, ctime) and a digest:

- ``files``: the warm cache (``<folder>/<stem>``, the decompressed IDX file, read-only), each
  stamped with the content SHA-256 it was verified to have;
- ``downloads``: the files fmnist downloaded; ``placed``: those it placed in torchvision's folder;
  ``partials``: downloads under way (``fetch``); ``proven``: content SHA-256s proven here by a
  published digest, keyed by it.

A file is fmnist's (``owns``) while it is a regular file with one link, of the recorded device,
inode and size, and with the recorded ctime or, when only the ctime moved (a chmod), the recorded
digest: an inode handed back for someone else's file fails both. Everything here is optional: a
root that cannot be written, a record file that cannot be read (malformed, or nested deeper
than Python's recursion limit), and the load returns verified data all the same.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _core, idx
from ..datasets import FileInfo
from ..idx import read_json, read_small

RECORDS = ".fmnist-cache.json"
FIELDS = ("dev", "ino", "size", "mtime_ns", "ctime_ns")

#: Each record file's last parsed version: path -> ((inode, size, mtime_ns), records).
_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def identity(st: os.stat_result) -> dict[str, int]:
    """What a record says of a file: changed by any write, chmod, rename or replacement."""
    return {k: getattr(st, "st_" + k) for k in FIELDS}


def lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:
        return None


def regular(st: os.stat_result | None) -> bool:
    """A regular file with one link (no name elsewhere can change it)."""
    return st is not None and stat.S_ISREG(st.st_mode) and st.st_nlink == 1


class Store:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._snapshot: dict[str, Any] | None = None

    def path(self, info: FileInfo) -> Path:
        """The warm cache file of ``info``."""
        return self.folder / info.stem

    def records(self, reread: bool = False) -> dict[str, dict[str, Any]]:
        """The records (a copy to change, after ``reread`` with the lock held), parsed once per
        version of the file (only ever replaced by rename): a warm load costs a stat."""
        if self._snapshot is None or reread:
            path = self.folder / RECORDS
            try:
                st = path.stat()
                version, known = (st.st_ino, st.st_size, st.st_mtime_ns), _PARSED.get(path)
                if known is None or known[0] != version:
                    data = read_json(read_small(path))
                    known = _PARSED[path] = (version, data if isinstance(data, dict) else {})
                self._snapshot = {k: v for k, v in known[1].items() if isinstance(v, dict)}
            except (OSError, ValueError):
                self._snapshot = {}
        return {k: dict(v) for k, v in self._snapshot.items()}

    def entry(self, section: str, key: str) -> dict[str, Any] | None:
        entry = (self._snapshot if self._snapshot is not None else self.records()).get(section, {}).get(key)
        return entry if isinstance(entry, dict) else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The folder's cross-process lock: one process downloads or writes here at a time."""
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".lock")):
            yield

    def record(self, section: str, key: str, value: dict[str, Any] | None) -> None:
        """Sets (or with None drops) one entry; the file replaced atomically and durably (lock held)."""
        records = self.records(reread=True)
        if value is None:
            records.get(section, {}).pop(key, None)
        else:
            records.setdefault(section, {})[key] = value
        _PARSED.pop(self.folder / RECORDS, None)
        self._snapshot = None
        self.folder.mkdir(parents=True, exist_ok=True)
        idx.write(
            self.folder / RECORDS, [(json.dumps({"version": 3, **records}, indent=1, sort_keys=True) + "\n").encode()]
        )

    def mark(self, path: Path, section: str, key: str, digest: str) -> None:
        """Records the file fmnist just put at ``path`` as its own, verified to have ``digest``."""
        self.record(section, key, {**identity(path.lstat()), "digest": digest})

    def owns(self, path: Path, section: str, key: str) -> bool:
        """Whether ``path`` is the file recorded under ``section``/``key`` (see the module's comment)."""
        entry, st = self.entry(section, key) or {}, lstat(path)
        now = identity(st) if st is not None and regular(st) else {}
        if not now or any(entry.get(k) != now[k] for k in ("dev", "ino", "size")):
            return False
        if entry.get("ctime_ns") == now["ctime_ns"]:
            return True
        kind, _, hex = str(entry.get("digest", "")).partition(":")
        if kind not in idx.KINDS:
            return False
        request = _core.Request(os.fspath(path), _core.Mode.DIGESTS, [_core.Expected(idx.KINDS[kind], hex)])
        (o,) = _core.read([request], strict=False, errors=_core.Errors.RETURN)
        return not isinstance(o, BaseException) and o.verdicts[0].matched

    def stamped(self, info: FileInfo, accepted: set[str], st: os.stat_result | None = None) -> str | None:
        """The content SHA-256 of the cache file of ``info`` when its stamp proves it: unchanged since
        stamped (identity in full, one link) and stamped with a digest the registry accepts today
        (``st``: the file's ``lstat``, when the caller has it)."""
        entry, st = self.entry("files", info.stem), st or lstat(self.path(info))
        if entry is None or st is None or not regular(st) or any(entry.get(k) != v for k, v in identity(st).items()):
            return None
        digest = str(entry.get("digest", "")).partition(":")[2]
        return digest if digest in accepted else None

    def map(self, info: FileInfo) -> npt.NDArray[Any]:
        """The cache file mapped copy-on-write (writes stay private; no descriptor held; the engine
        checks its header and length). Windows, which cannot replace a mapped file, reads it."""
        path = str(self.path(info))
        if os.name == "nt":
            array: npt.NDArray[Any] = _core.read([_core.Request(path)], max_bytes=info.content_size)[0].array
            return array
        return _core.map_idx(path, info.dtype, list(info.shape))

    def write(self, info: FileInfo, array: npt.NDArray[Any], content_sha256: str) -> str | None:
        """Writes the verified ``array`` as the cache file (read-only, by rename over whatever regular
        file was there) and stamps it; or says why not: anything else there is left alone."""
        path, st = self.path(info), lstat(self.path(info))
        if st is not None and not stat.S_ISREG(st.st_mode):
            return f"{path} is not a regular file fmnist can replace; left alone"
        if os.name == "nt" and st is not None:  # Windows refuses to replace a read-only file
            os.chmod(path, 0o666)
        self.folder.mkdir(parents=True, exist_ok=True)
        header = _core.idx_header(info.dtype, list(info.shape))
        # Not fsynced: a cache file lost in a crash fails its stamp and its hash, and is replaced.
        idx.write(path, [header, np.ascontiguousarray(array).reshape(-1).data], mode=0o444, durable=False)
        self.mark(path, "files", info.stem, f"content_sha256:{content_sha256}")
        return None

    def clean(self) -> None:
        """Removes temporaries of writers killed before their rename (lock held: no live writer has
        one), but the partials of downloads to resume."""
        keep = {p.get("name") for p in self.records(reread=True).get("partials", {}).values()}
        for name in os.listdir(self.folder):
            if idx.TEMPORARY.fullmatch(name) and name not in keep:
                (self.folder / name).unlink(missing_ok=True)

    def proven(self, info: FileInfo, by: set[str]) -> dict[str, str]:
        """The content SHA-256 proven here for ``info`` by one of the published digests ``by``,
        with what proved it: {digest: where}."""
        e = self.entry("proven", info.name)
        if e is None or e.get("by") not in by or not isinstance(e.get("content_sha256"), str):
            return {}
        return {e["content_sha256"]: f"{e.get('where', 'a verified copy')} (recorded in {self.folder / RECORDS})"}

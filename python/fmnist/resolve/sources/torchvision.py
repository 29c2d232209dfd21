"""torchvision's rules in torchvision's folder (``fmnist.torch``): the decompressed files torchvision
reads from ``<root>/<Name>/raw/`` are what is loaded when they are there: verified when a published
or proven digest matches, else (a subset, custom data of the right type) loaded all the same with
an ``UnverifiedDataWarning``, unless the policy verifies. A file fmnist placed there and nobody
changed since (``Store.owns``) is served from fmnist's own cache of the same content."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from ...datasets import FileInfo
from ...errors import UnverifiedDataWarning
from ..judge import Read, accepted, read_files, refused, report
from ..results import Copy, Proof, Report, Source
from . import Known, regular
from . import Source as Base
from .warm import cacheable


class TorchvisionRaw(Base):
    def __init__(self, known: Known) -> None:
        assert known.policy.torchvision is not None
        self.raw, self.verify = known.policy.torchvision.raw, known.policy.torchvision.verify

    def looked_in(self) -> list[str]:
        return [f"{self.raw} (torchvision, its rules)"]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        at = self.raw / info.stem
        return [Copy(at, Source.TORCHVISION, decompressed=True)] if regular(at) else []

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> Report:
        out = {k: r for k, (i, c) in enumerate(heads) if (r := self._placed(i, c, known)) is not None}
        todo = [k for k in range(len(heads)) if k not in out]
        reads = read_files(
            [heads[k][1] for k in todo], [heads[k][0] for k in todo], [known.proven(heads[k][0]) for k in todo]
        )
        for k, read in zip(todo, reads):
            (info, copy), array = heads[k], read.unproven
            if read.proof is None and array is not None and not self.verify:
                if array.dtype != info.dtype or array.ndim != len(info.shape) or array.shape[1:] != info.shape[1:]:
                    read = refused(
                        f"{array.shape} {array.dtype}, where torchvision's class reads {info.dtype} (N, ...)"
                    )
                else:
                    what = f"{copy.path}: not verified ({read.message}); loaded by torchvision's rules"
                    warnings.warn(UnverifiedDataWarning(what), stacklevel=6)
                    read = Read(array, f"not verified ({read.message})", Proof.UNVERIFIED, read.sha)
            out[k] = report(info, copy, read)
        return sum((out[k] for k in range(len(heads))), Report())

    def _placed(self, info: FileInfo, copy: Copy, known: Known) -> Report | None:
        """fmnist's own cache of the file fmnist placed at ``copy.path``, when nobody changed it."""
        store, key = known.store, str(copy.path.absolute())
        if not known.cache or not cacheable(info) or not store.owns(copy.path, "placed", key):
            return None
        digest = str((store.entry("placed", key) or {}).get("digest", "")).partition(":")[2]
        if digest not in accepted(info, known.proven(info)) or store.stamped(info, {digest}) != digest:
            return None
        try:
            array = store.map(info)
        except (OSError, ValueError):
            return None
        rule = "torchvision's file as fmnist placed it, unchanged (its record); served from fmnist's own cache"
        cache = Copy(store.path(info), Source.WARM_CACHE, decompressed=True)
        return report(info, cache, Read(array, rule, Proof.STAMP, digest), mapped=True)

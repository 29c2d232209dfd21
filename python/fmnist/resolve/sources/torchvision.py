"""torchvision's rules in its folder (``fmnist.torch``): the decompressed files torchvision reads from
``<root>/<Name>/raw/`` are what loads when they are there: verified when a published or proven
digest matches, else (a subset, custom data of the right type) loaded all the same with an
``UnverifiedDataWarning``, unless the policy verifies (a file longer than the IDX file is turned
down from ``stat``). A file fmnist placed there and nobody
changed since (``Store.owns``) is served from fmnist's own cache of the same content."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

from ...datasets import FileInfo
from ...errors import UnverifiedDataWarning
from ..judge import accepted, read_files
from ..results import Copy, Judgment, Proof, Source, judged
from . import Known, regular
from . import Source as Base
from .warm import cacheable


class TorchvisionRaw(Base):
    def __init__(self, known: Known) -> None:
        assert known.policy.torchvision is not None
        self.raw, self.verify = known.policy.torchvision.raw, known.policy.torchvision.verify
        self.places = [f"{self.raw} (torchvision, its rules)"]

    def candidates(self, info: FileInfo, known: Known) -> list[Copy]:
        at = self.raw / info.stem
        return [Copy(at, Source.TORCHVISION, decompressed=True)] if regular(at) else []

    def judge(self, heads: Sequence[tuple[FileInfo, Copy]], known: Known) -> list[Judgment]:
        placed = [self._placed(info, copy, known) for info, copy in heads]
        read = iter(read_files([h for h, p in zip(heads, placed) if p is None], known.proofs, exact=self.verify))
        return [p or self._rules(next(read)) for p in placed]

    def _rules(self, j: Judgment) -> Judgment:
        a, info = j.unproven, j.info
        if j.ok or a is None or self.verify:
            return j
        if a.dtype != info.dtype or a.ndim != len(info.shape) or a.shape[1:] != info.shape[1:]:
            return replace(j, message=f"{a.shape} {a.dtype}, where torchvision's class reads {info.dtype} (N, ...)")
        warnings.warn(
            UnverifiedDataWarning(f"{j.path}: not verified ({j.message}); loaded by torchvision's rules"), stacklevel=7
        )
        return replace(j, message=f"not verified ({j.message})", proof=Proof.UNVERIFIED, array=a)

    def _placed(self, info: FileInfo, copy: Copy, known: Known) -> Judgment | None:
        """fmnist's own cache of the file fmnist placed at ``copy.path``, when nobody changed it."""
        store, key = known.store, str(copy.path.absolute())
        if not known.cache or not cacheable(info) or not store.owns(copy.path, "placed", key):
            return None
        digest = str((store.entry("placed", key) or {}).get("digest", "")).partition(":")[2]
        if digest not in accepted(info, known.proofs.get(info.name, {})) or store.stamped(info, {digest}) != digest:
            return None
        try:
            array = store.map(info)
        except (OSError, ValueError):
            return None
        rule = "torchvision's file as fmnist placed it, unchanged (its record); served from fmnist's own cache"
        cache = Copy(store.path(info), Source.WARM_CACHE, decompressed=True)
        return judged(info, cache, rule, Proof.STAMP, mapped=True, array=array, sha=digest)

"""The one pipeline: ``resolve(dataset, files, policy)`` finds, proves and, when asked, downloads and
caches a dataset's files, and returns each array with its provenance.

It walks the sources in order; each judges its candidates for the files still wanted a round at a
time, and ``resolve`` folds the judgments in: the first copy accepted gives a file
(``Audit.every_copy`` judges every one), and a content digest proven by a published one in a round
proves copies in other forms in the next. Then, when the policy caches, fmnist's own folder is
brought up to date under its lock: each array not read from the warm cache written to it (replacing
what failed there), files adopted by their content stamped, proofs recorded; a failure there is a
warning, never a failed load. ``load``, ``load_data``, ``download``, the command line and
``fmnist.torch`` are policies over it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from .. import _core, idx
from ..datasets import Dataset, FileInfo
from .judge import proof_key, proof_keys
from .policy import Policy, data_root
from .results import Judgment, Proof, Resolution, Source
from .sources import Known
from .sources import Source as Base
from .sources.folders import Folders, Whole
from .sources.mirrors import Mirrors
from .sources.torchvision import TorchvisionRaw
from .sources.warm import WarmCache, cacheable
from .store import Store, lstat

log = logging.getLogger("fmnist")  #: found, turned down, downloaded, cached (INFO); warm hits (DEBUG)
#: What proves a copy's content for its other forms (a digest proven here, to record).
TEACHES = (Proof.STORED_MD5, Proof.STORED_SHA256, Proof.ARCHIVE, Proof.KERAS_NPZ)


def _sources(known: Known, urls: list[str]) -> list[Callable[[], Base]]:
    """The sources in order, each made only when a file is still wanted (a warm load makes one)."""
    p, ds, own = known.policy, known.dataset, not known.policy.discover
    return (
        [partial(TorchvisionRaw, known)] * (p.torchvision is not None)
        + [partial(WarmCache, known)] * known.cache
        + [partial(Folders, known, own_only=own)]
        + [partial(Whole, known, own_only=own)] * bool(ds.archive or (p.discover and ds.keras_npz))
        + [partial(Mirrors, known, urls)] * p.download
    )


def resolve(dataset: Dataset, files: Sequence[FileInfo], policy: Policy | None = None) -> Resolution:
    """The arrays of ``files`` (of ``dataset``) with their provenance, as ``policy`` allows (None:
    ``Policy()``, ``load``'s with ``download=False``)."""
    policy = policy or Policy()
    urls = policy.check(dataset)  # before anything is read
    root, cache = data_root(policy.root), policy.caching
    store = Store(root / dataset.name)
    proofs = {i.name: store.proven(i, proof_keys(dataset, i)) for i in files} if cache else {}
    known = Known(dataset, policy, root, store, cache, proofs)
    every = policy.audit is not None and policy.audit.every_copy
    found: dict[str, Judgment] = {}
    judgments: list[Judgment] = []
    looked_in, pending = [], list(files)
    for make in _sources(known, urls):
        if not (pending or every):
            break
        source = make()
        looked_in += source.places
        queues = {i.name: source.candidates(i, known) for i in pending}
        while heads := [(i, queues[i.name].pop(0)) for i in pending if queues[i.name]]:
            for j in source.judge(heads, known):
                judgments.append(j)
                log.log(logging.DEBUG if j.source == Source.WARM_CACHE else logging.INFO, "%s: %s", j.info.name, j)
                if j.ok:
                    found.setdefault(j.info.name, j)
                if j.proof in TEACHES and j.sha:  # proves the content's other forms, from the next round
                    proven = {**known.proofs.get(j.info.name, {}), j.sha: f"the verified {j.where}"}
                    known = replace(known, proofs={**known.proofs, j.info.name: proven})
            pending = pending if every else [i for i in pending if i.name not in found]
    warnings = _keep(known, found, judgments) if cache and policy.audit is None else []
    warnings += _place(known, found) if policy.torchvision is not None and policy.torchvision.place else []
    for w in warnings:
        log.warning("%s", w)
    return Resolution(dataset, tuple(files), found, tuple(judgments), tuple(looked_in), tuple(warnings))


def _keep(known: Known, found: dict[str, Judgment], judgments: list[Judgment]) -> list[str]:
    """Brings fmnist's folder up to date (see the module's comment); returns the warnings. A warm load
    changes nothing, and takes no lock."""
    store, ds = known.store, known.dataset
    learnt = [j for j in judgments if j.proof in TEACHES and j.sha and not j.info.content_sha256]
    fresh = [j for j in found.values() if j.source != Source.WARM_CACHE and j.proof != Proof.UNVERIFIED]
    write = [j for j in fresh if cacheable(j.info) and j.sha]
    adopt = [j for j in found.values() if j.source == Source.WARM_CACHE and j.proof != Proof.STAMP]
    out: list[str] = []
    try:
        if write or adopt or learnt:
            with store.lock():
                store.clean()  # temporaries of writers killed before their rename
                for j in write:
                    if store.stamped(j.info, {j.sha}) != j.sha:  # else already cached, unchanged
                        why = store.write(j.info, j.array, j.sha)
                        out += [f"{j.info.name}: not cached: {why}"] if why else []
                        log.info("%s: %s", j.info.name, why or f"cached as {store.path(j.info)}")
                for j in adopt:
                    store.mark(j.path, "files", j.info.stem, f"content_sha256:{j.sha}")
                for j in learnt:
                    store.record(
                        "proven",
                        j.info.name,
                        {
                            "content_sha256": j.sha,
                            "by": proof_key(ds, j.info, j.proof == Proof.KERAS_NPZ),
                            "where": j.where,
                        },
                    )
    except OSError as e:  # a read-only or full root, a lock that cannot be made, ...
        out.append(f"{ds.name}: the warm cache was not written ({e}); the data returned is verified all the same")
    return out


def _place(known: Known, found: dict[str, Judgment]) -> list[str]:
    """fmnist.torch's download: torchvision's decompressed files in its raw folder, as torchvision
    writes them (IDX, mode from the umask), only where no file is, so that nothing of anyone's is
    replaced; each recorded, so that while it is unchanged a load serves fmnist's own cache."""
    tv, out, placed = known.policy.torchvision, [], []
    assert tv is not None
    for j in (j for j in found.values() if j.proof != Proof.UNVERIFIED and lstat(tv.raw / j.info.stem) is None):
        try:
            tv.raw.mkdir(parents=True, exist_ok=True)
            if idx.write(tv.raw / j.info.stem, [_core.encode_idx(j.array)], replace=False):
                placed.append((tv.raw / j.info.stem, j.sha))
                log.info("%s: wrote torchvision's decompressed %s", j.info.name, tv.raw / j.info.stem)
        except OSError as e:
            out.append(f"{j.info.name}: could not write torchvision's {tv.raw / j.info.stem} ({e})")
    try:
        if placed and known.cache:
            with known.store.lock():
                for target, sha in placed:
                    known.store.mark(target, "placed", str(target.absolute()), f"content_sha256:{sha}")
    except OSError as e:
        out.append(f"{known.dataset.name}: the record of the files placed in {tv.raw} was not written ({e})")
    return out

"""The one pipeline: ``resolve(dataset, files, policy)`` finds, proves and, when asked, downloads
and caches a dataset's files, and returns each array with its provenance.

It walks the sources in order, each judging its candidates for the files still wanted a round at a
time and returning an immutable report, which ``resolve`` folds in: the first candidate that proves
itself gives a file (``Audit.every_copy`` judges them all), and a content digest proven in one round
proves copies in other forms in the next. Then, when the policy caches, fmnist's own folder is
brought up to date under its lock: every array not read from the warm cache is written to it
(replacing a file there that failed), files adopted by content are stamped, proofs are recorded;
any failure there is a warning, never a failed load. ``load``, ``load_data``, ``download``, the
command line and ``fmnist.torch`` are policies over it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace

from .. import _core, idx
from ..datasets import Dataset, FileInfo
from .judge import proof_key
from .policy import Policy, data_root
from .results import Found, Learnt, Proof, Report, Resolution, Source
from .sources import Known
from .sources import Source as Base
from .sources.archives import Archives
from .sources.folders import Folders, KerasNpz
from .sources.mirrors import Mirrors
from .sources.torchvision import TorchvisionRaw
from .sources.warm import WarmCache, cacheable
from .store import Store, lstat

#: The package's logger: what was found, rejected, downloaded and cached (INFO), warm cache hits
#: (DEBUG), what could not be written (WARNING).
log = logging.getLogger("fmnist")


def _sources(known: Known, urls: list[str]) -> Iterator[Base]:
    """The sources in order, each made only when files are still wanted."""
    policy, ds = known.policy, known.dataset
    if policy.torchvision is not None:
        yield TorchvisionRaw(known)
    if known.cache:
        yield WarmCache(known)
    yield Folders(known, own_only=not policy.discover)
    if policy.discover and ds.keras_npz:
        yield KerasNpz(known)
    if ds.archive is not None:
        yield Archives(known, own_only=not policy.discover)
    if policy.download:
        yield Mirrors(known, urls)


def resolve(dataset: Dataset, files: Sequence[FileInfo], policy: Policy | None = None) -> Resolution:
    """The arrays of ``files`` (of ``dataset``) with their provenance, as ``policy`` allows (None:
    ``Policy()``, ``load``'s with ``download=False``)."""
    policy = policy or Policy()
    urls = policy.check(dataset)  # before anything is read
    root, cache = data_root(policy.root), policy.caching
    store = Store(root / dataset.name)
    known = Known(
        dataset,
        policy,
        root,
        store,
        cache,
        {i.name: store.proven(i, proof_key(dataset, i)) for i in files} if cache else {},
    )
    every = policy.audit is not None and policy.audit.every_copy
    found: dict[str, Found] = {}
    folded, looked_in, pending = Report(), [], list(files)
    for source in _sources(known, urls):
        if not (pending or every):
            break
        looked_in += source.looked_in()
        queues = {i.name: source.candidates(i, known) for i in pending}
        while heads := [(i, queues[i.name].pop(0)) for i in pending if queues[i.name]]:
            report = source.judge(heads, known)
            folded += report
            for j in report.judgments:
                log.log(logging.DEBUG if j.source == Source.WARM_CACHE else logging.INFO, "%s: %s", j.info.name, j)
            for f in report.found:
                found.setdefault(f.info.name, f)
            for x in report.learnt:  # proofs for the next rounds
                proven = {**known.proofs.get(x.name, {}), x.content_sha256: f"the verified {x.where}"}
                known = replace(known, proofs={**known.proofs, x.name: proven})
            if not every:
                pending = [i for i in pending if i.name not in found]
    warnings = _keep(known, found, folded.learnt) if cache and policy.audit is None else []
    if policy.torchvision is not None and policy.torchvision.place:
        warnings += _place(known, found)
    for w in warnings:
        log.warning("%s", w)
    return Resolution(dataset, tuple(files), found, folded.judgments, tuple(looked_in), tuple(warnings))


def _keep(known: Known, found: dict[str, Found], learnt: tuple[Learnt, ...]) -> list[str]:
    """Brings fmnist's folder up to date (see the module's comment); returns the warnings. A warm
    load, which changes nothing, takes no lock and writes nothing."""
    store, infos = known.store, {f.info.name: f.info for f in found.values()}
    new = [x for x in learnt if x.name in infos and not infos[x.name].content_sha256]
    write = [
        f
        for f in found.values()
        if cacheable(f.info)
        and f.content_sha256
        and f.provenance.source != Source.WARM_CACHE
        and f.provenance.proof != Proof.UNVERIFIED
    ]
    adopted = [
        f for f in found.values() if f.provenance.source == Source.WARM_CACHE and f.provenance.proof != Proof.STAMP
    ]
    if not (write or adopted or new):
        return []
    out = []
    try:
        with store.lock():
            store.clean()  # temporaries of writers killed before their rename
            for f in write:
                if store.stamped(f.info, {f.content_sha256}) == f.content_sha256:
                    continue  # already cached, unchanged
                why = store.write(f.info, f.array, f.content_sha256)
                out += [f"{f.info.name}: not cached: {why}"] if why else []
                log.info("%s: %s", f.info.name, why or f"cached as {store.path(f.info)}")
            for f in adopted:
                store.mark(store.path(f.info), "files", f.info.stem, f"content_sha256:{f.content_sha256}")
            for x in new:
                store.record("proven", x.name, {"content_sha256": x.content_sha256, "by": x.by, "where": x.where})
    except OSError as e:  # a read-only or full root, a lock that cannot be made, ...
        out.append(
            f"{known.dataset.name}: the warm cache was not written ({e}); the data returned is verified all the same"
        )
    return out


def _place(known: Known, found: dict[str, Found]) -> list[str]:
    """fmnist.torch's download: torchvision's decompressed files in its raw folder, as torchvision
    writes them (IDX, mode from the umask), only where no file is: torchvision then finds the data,
    and nothing of anyone's is replaced. Each file placed is recorded, so that while it is unchanged
    a load serves fmnist's own cache of the same content."""
    tv = known.policy.torchvision
    assert tv is not None
    out, placed = [], []
    for f in found.values():
        target = tv.raw / f.info.stem
        if lstat(target) is not None or f.provenance.proof == Proof.UNVERIFIED:
            continue
        try:
            tv.raw.mkdir(parents=True, exist_ok=True)
            if idx.write(target, [_core.encode_idx(f.array)], replace=False):
                placed.append((target, f.content_sha256))
                log.info("%s: wrote torchvision's decompressed %s", f.info.name, target)
        except OSError as e:
            out.append(f"{f.info.name}: could not write torchvision's {target} ({e})")
    try:
        if placed and known.cache:
            with known.store.lock():
                for target, sha in placed:
                    known.store.mark(target, "placed", str(target.absolute()), f"content_sha256:{sha}")
    except OSError as e:
        out.append(f"{known.dataset.name}: the record of the files placed in {tv.raw} was not written ({e})")
    return out

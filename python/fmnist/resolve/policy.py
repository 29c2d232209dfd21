"""What one ``resolve`` may do (``Policy``), fmnist.torch's rules (``Torchvision``) and the command
line's audit (``Audit``) as small objects of their own; and where data lives."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..datasets import Dataset

PathArg = Union[str, "os.PathLike[str]", None]


@dataclass(frozen=True)
class Torchvision:
    """torchvision's rules in its raw folder: its decompressed files there come first and load
    even when nothing proves them (warned) unless ``verify``; downloads go there, and ``place``
    writes torchvision's decompressed files beside them."""

    raw: Path
    place: bool = False
    verify: bool = False


@dataclass(frozen=True)
class Audit:
    """``fmnist info`` and ``verify``: every copy hashed (no stamp trusted), nothing written;
    ``every_copy`` judges every candidate, not only until one proves itself."""

    every_copy: bool = False


@dataclass(frozen=True)
class Policy:
    """What one ``resolve`` may do. The defaults are ``load``'s with ``download=False``."""

    root: PathArg = None  #: fmnist's data root (``data_root``)
    cache: bool | None = None  #: the warm cache and records (None: ``$FMNIST_CACHE``, on by default)
    discover: bool = True  #: look at copies other loaders left (else only fmnist's own folder)
    download: bool = False  #: fetch what is still missing from the mirrors
    mirrors: Sequence[str] | None = None  #: base URLs (None: the registry's)
    timeout: float = 30.0
    retries: int = 3
    torchvision: Torchvision | None = None
    audit: Audit | None = None

    def check(self, dataset: Dataset) -> list[str]:
        """The mirrors to try; clear errors, before anything is read, for surprising arguments."""
        t, r = self.timeout, self.retries
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf:
            raise ValueError(f"timeout must be a positive number of seconds, finite, not {t!r}")
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"retries must be an int >= 1 (attempts per mirror), not {r!r}")
        if self.mirrors is None:
            return list(dataset.archive.mirrors if dataset.archive is not None else dataset.mirrors)
        if isinstance(self.mirrors, (str, bytes)):
            raise TypeError(f"mirrors must be a list of base URLs, not a single {type(self.mirrors).__name__}")
        urls = list(self.mirrors)
        if not urls:
            raise ValueError("mirrors is empty: pass None to use the registry's mirrors, or at least one base URL")
        bad = [u for u in urls if not isinstance(u, str) or not u.startswith(("http://", "https://", "file://"))]
        if bad:
            raise ValueError(f"mirrors must be http://, https:// or file:// URLs; not {bad[0]!r}")
        return urls

    @property
    def caching(self) -> bool:
        if self.cache is not None:
            return self.cache
        return os.environ.get("FMNIST_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def data_root(root: PathArg = None) -> Path:
    """``root``, else ``$FMNIST_HOME``, else the platform's user cache folder (``default_root``)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("FMNIST_HOME")
    return Path(env).expanduser() if env else default_root()


def default_root() -> Path:
    """platformdirs' user cache folder for fmnist: ``~/.cache/fmnist`` on Linux (or under
    ``$XDG_CACHE_HOME``), ``~/Library/Caches/fmnist`` on macOS, ``%LOCALAPPDATA%\\fmnist\\Cache``."""
    from platformdirs import user_cache_path

    return user_cache_path("fmnist", appauthor=False)


def search_roots() -> list[Path] | None:
    """The folders of ``$FMNIST_SEARCH_PATH`` (os.pathsep-separated); None when it is not set."""
    env = os.environ.get("FMNIST_SEARCH_PATH")
    return None if env is None else [Path(p).expanduser() for p in env.split(os.pathsep) if p]

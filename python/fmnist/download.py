"""Verified downloads: mirrors in order, timeouts, retries with backoff, HTTP Range resume.

Bytes go to ``<final>.partial`` beside the target; only a file that passes verification is
fsynced and renamed to its final name, so no partial or unverified file ever sits there. A
mirror that answers with an error status, an HTML page, a short body or bad bytes is skipped
for the next; the final error lists every mirror and why it failed. Callers hold the dataset's
cross-process lock (see ``loaders``), so concurrent processes download each file once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Callable

from ._core import __version__
from .datasets import FileInfo
from .verify import Verdict, read_verified

CHUNK = 1 << 16
USER_AGENT = f"fmnist/{__version__} (+https://github.com/zalandoresearch/fashion-mnist)"


class DownloadError(OSError):
    """No mirror gave a verified copy. ``attempts`` lists (url, why) for every try."""

    def __init__(self, name: str, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = list(attempts)
        lines = "\n".join(f"  {url}: {why}" for url, why in self.attempts) or "  (no mirror to try)"
        super().__init__(f"could not download a verified {name}; every mirror failed:\n{lines}")


class _Skip(Exception):
    """This mirror will not give the file (error status, HTML page, bad bytes): try the next."""


class _Retry(Exception):
    """A transient failure (timeout, dropped connection, 5xx): try this mirror again."""


def _progress(total: int | None, initial: int, name: str) -> Any:
    """A tqdm bar on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, leave=False)


def _get(url: str, partial: Path, timeout: float) -> None:
    """Downloads ``url`` into ``partial``, resuming from its current length when the server
    supports Range. Raises _Skip or _Retry."""
    # Imported here, not at the top: http.client and urllib cost ~37 ms of `import fmnist`, and
    # most loads never download.
    import http.client
    import socket
    import urllib.error
    import urllib.request

    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # our partial is already whole (or wrong): start over
            partial.unlink()
            raise _Retry("HTTP 416 for the resumed range; starting over") from None
        if e.code in (408, 425, 429) or e.code >= 500:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise _Skip(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise _Retry(f"connection failed: {reason}") from None
    with response:
        kind = response.headers.get("Content-Type", "")
        if "text/html" in kind:
            raise _Skip(f"served an HTML page (Content-Type: {kind}), not the file")
        mode = "wb"
        if have and response.status == 206:
            if not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                partial.unlink()
                raise _Retry(f"bad Content-Range {response.headers.get('Content-Range')!r}")
            mode = "ab"
        elif have:
            have = 0  # the server ignored Range: it sends the whole file again
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        bar = _progress(None if expected is None else expected + have, have, partial.name[: -len(".partial")])
        got = 0
        try:
            with open(partial, mode) as out:
                got = _copy(response, out, bar.update if bar is not None else None, sniff=(mode == "wb"))
                out.flush()
                os.fsync(out.fileno())
        except (socket.timeout, TimeoutError) as e:
            raise _Retry(f"timed out after {got} bytes: {e}") from None
        except (http.client.IncompleteRead, OSError) as e:
            raise _Retry(f"connection dropped after {got} bytes: {e}") from None
        finally:
            if bar is not None:
                bar.close()
        if expected is not None and got < expected:
            raise _Retry(f"short body: {got} of {expected} bytes")


def _copy(response: IO[bytes], out: IO[bytes], update: Callable[[int], Any] | None, sniff: bool) -> int:
    got = 0
    first = True
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            return got
        if first and sniff and chunk.lstrip()[:1] == b"<":
            raise _Skip("served an HTML page, not the file")
        first = False
        out.write(chunk)
        got += len(chunk)
        if update is not None:
            update(len(chunk))


def fetch(
    info: FileInfo,
    folder: Path,
    mirrors: Sequence[str],
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> tuple[Any, Verdict, Path]:
    """Downloads ``info`` into ``folder`` from the first mirror that gives a verified copy.
    Returns (array, verdict, final path). The caller holds the dataset lock."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / info.name
    partial = folder / (info.name + ".partial")
    attempts: list[tuple[str, str]] = []
    for base in mirrors:
        url = base if base.endswith(info.name) else base.rstrip("/") + "/" + info.name
        fresh_tries = 1  # one restart from scratch if a resumed file fails verification
        attempt = 0
        while attempt < retries:
            try:
                resumed = partial.exists() and partial.stat().st_size > 0
                _get(url, partial, timeout)
            except _Skip as e:
                attempts.append((url, str(e)))
                partial.unlink(missing_ok=True)
                break
            except _Retry as e:
                attempts.append((url, str(e)))
                attempt += 1
                if attempt < retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                continue
            ((array, verdict),) = read_verified([partial], [info])
            if verdict.ok:
                os.replace(partial, final)
                _fsync_dir(folder)
                return array, verdict, final
            partial.unlink(missing_ok=True)
            if resumed and fresh_tries:
                fresh_tries -= 1
                attempts.append((url, "resumed file failed verification; downloading again from the start"))
                continue
            attempts.append((url, "served bytes that failed verification: " + "; ".join(verdict.problems)))
            break
        else:
            partial.unlink(missing_ok=True)  # this mirror is done with; do not resume its bytes elsewhere
    raise DownloadError(info.name, attempts)


def _fsync_dir(folder: Path) -> None:
    """Makes a rename in ``folder`` durable. Windows has no directory fsync (``os.open`` of a
    folder fails there, and NTFS journals the rename itself): nothing to do."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

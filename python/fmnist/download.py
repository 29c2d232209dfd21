"""Verified downloads: mirrors in order, timeouts, retries with backoff, HTTP Range resume.

Bytes go to ``<final>.partial`` beside the target; only a file that passes verification is
fsynced and renamed to its final name, so no partial or unverified file ever sits there. A
mirror that answers with an error status, an HTML page, a short body or bad bytes is skipped
for the next; the final error lists every mirror and why it failed. Callers hold the dataset's
cross-process lock (see ``loaders``), so concurrent processes download each file once.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from . import _core
from ._core import __version__
from .datasets import FileInfo
from .errors import Error
from .verify import Judged

#: The download's own logger, a child of fmnist's: which mirror and attempt is under way, and
#: why one failed. The command line shows it on stderr while it downloads.
log = logging.getLogger("fmnist.download")

CHUNK = 1 << 16
#: curl's low-speed rule (``--speed-limit``/``--speed-time``): an attempt that receives fewer
#: than this many bytes in any ``timeout`` seconds is abandoned, so a server that drips bytes
#: holds a download for about twice the timeout, not for the file's size at a trickle.
LOW_SPEED_BYTES = 4 << 10


def size_limit(info: FileInfo) -> int:
    """The most bytes a mirror may send for ``info``: its published size when the registry
    knows it, with room for a mirror that recompressed it (1/8 more, and 64 KiB), else what any
    gzip or xz of its content could need (the engine's bound)."""
    if info.stored_size:
        return info.stored_size + info.stored_size // 8 + (1 << 16)
    return int(_core.max_compressed_size(info.dtype, list(info.shape)))


def _open_partial(partial: Path, append: bool) -> IO[bytes]:
    """Opens ``partial`` for writing without ever following a link there: a symlink (or anything
    but a regular file) planted at the name is removed, never written through."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    return os.fdopen(os.open(partial, flags, 0o666), "ab" if append else "wb")  # the umask decides


def _resumable_size(partial: Path) -> int:
    """Bytes of an earlier attempt to resume from: those of a regular file at ``partial``. A
    symlink or anything else there is removed (not followed) and the download starts over."""
    try:
        st = partial.lstat()
    except FileNotFoundError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    partial.unlink()
    return 0


class _LocalWrite(Exception):
    """Writing the downloaded bytes failed here (disk full, quota, ...): not a network fault."""

    def __init__(self, error: OSError) -> None:
        self.error = error


USER_AGENT = f"fmnist/{__version__} (+https://github.com/zalandoresearch/fashion-mnist)"


class DownloadError(Error, OSError):
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
    """A tqdm bar on a terminal; in a Jupyter kernel (whose stderr is no terminal) tqdm's
    notebook display, through tqdm.auto; nothing elsewhere (logs, CI, pipes)."""
    if sys.stderr.isatty():
        from tqdm import tqdm
    elif "ipykernel" in sys.modules:
        from tqdm.auto import tqdm
    else:
        return None
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, leave=False)


def _get(url: str, partial: Path, timeout: float, limit: int) -> None:
    """Downloads ``url`` into ``partial``, resuming from its current length when the server
    supports Range. At most ``limit`` bytes in all; abandoned when fewer than LOW_SPEED_BYTES
    arrive in any ``timeout`` seconds. Raises _Skip or _Retry; an OSError from writing here is
    raised as it is, with the path (a full disk is not a network fault)."""
    # Imported here, not at the top: http.client and urllib cost ~37 ms of `import fmnist`, and
    # most loads never download.
    import http.client
    import socket
    import urllib.error
    import urllib.request

    have = _resumable_size(partial)
    if url.startswith("file://"):
        # urllib opens a file:// URL with open(), which blocks on a FIFO until a writer comes.
        local = urllib.request.url2pathname(url[len("file://") :])
        try:
            if not stat.S_ISREG(os.stat(local).st_mode):
                raise _Skip(f"{local} is not a regular file")
        except OSError as e:
            raise _Skip(f"cannot read {local}: {e.strerror}") from None
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.build_opener(_redirect_handler()).open(request, timeout=timeout)
    except _RefusedRedirect as e:
        raise _Skip(str(e)) from None
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
        append = False
        if have and response.status == 206:
            if not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                partial.unlink()
                raise _Retry(f"bad Content-Range {response.headers.get('Content-Range')!r}")
            append = True
        elif have:
            have = 0  # the server ignored Range: it sends the whole file again
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        if expected is not None and have + expected > limit:
            raise _Skip(f"announces {have + expected} bytes, more than the {limit} the file can have")
        bar = _progress(None if expected is None else expected + have, have, partial.name[: -len(".partial")])
        copied = [0]
        try:
            with _open_partial(partial, append) as out:
                _copy(response, out, bar, sniff=not append, room=limit - have, window=timeout, copied=copied)
                out.flush()
                os.fsync(out.fileno())
        except _LocalWrite as e:
            raise OSError(e.error.errno, f"cannot write the download: {e.error.strerror}", str(partial)) from None
        except _TooSlow as e:
            raise _Retry(
                f"too slow: {e.got} bytes in {timeout:g} s after {copied[0]} bytes (an attempt is abandoned "
                f"when fewer than {LOW_SPEED_BYTES} bytes arrive in the timeout)"
            ) from None
        except (socket.timeout, TimeoutError) as e:
            raise _Retry(f"timed out after {copied[0]} bytes: {e}") from None
        except (http.client.IncompleteRead, OSError) as e:
            raise _Retry(f"connection dropped after {copied[0]} bytes: {e}") from None
        finally:
            if bar is not None:
                bar.close()
        if expected is not None and copied[0] < expected:
            raise _Retry(f"short body: {copied[0]} of {expected} bytes")


class _RefusedRedirect(Exception):
    """A redirect to anything but http:// or https:// (mirrors are refused in other schemes too)."""


def _redirect_handler() -> Any:
    import urllib.parse
    import urllib.request

    class HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
                raise _RefusedRedirect(f"redirected (HTTP {code}) to {newurl}, not an http:// or https:// URL")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return HttpRedirectsOnly


class _TooSlow(Exception):
    """Fewer than LOW_SPEED_BYTES arrived in one window of ``timeout`` seconds."""

    def __init__(self, got: int) -> None:
        self.got = got


def _copy(response: Any, out: IO[bytes], bar: Any, *, sniff: bool, room: int, window: float, copied: list[int]) -> None:
    """Copies the body to ``out`` as it arrives (``read1``: a drip is seen byte by byte), at
    most ``room`` bytes; raises _TooSlow when fewer than LOW_SPEED_BYTES arrive in ``window``
    seconds. ``copied[0]`` counts what was written."""
    first = True
    started, got = time.monotonic(), 0
    while True:
        now = time.monotonic()
        if now - started >= window:
            if got < LOW_SPEED_BYTES:
                raise _TooSlow(got)
            started, got = now, 0
        chunk = response.read1(CHUNK)
        got += len(chunk)
        if not chunk:
            return
        if first and sniff and chunk.lstrip()[:1] == b"<":
            raise _Skip("served an HTML page, not the file")
        first = False
        if copied[0] + len(chunk) > room:
            raise _Skip(f"sent more than the {room} bytes the file can have; stopped there")
        try:
            out.write(chunk)
        except OSError as e:
            raise _LocalWrite(e) from None
        copied[0] += len(chunk)
        if bar is not None:
            bar.update(len(chunk))


def fetch(
    name: str,
    folder: Path,
    mirrors: Sequence[str],
    check: Callable[[Path], Judged],
    limit: int,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> tuple[Judged, Path]:
    """Downloads the published file ``name`` into ``folder`` from the first mirror that gives a
    copy ``check`` accepts, at most ``limit`` bytes. Returns (its judgment, the final path). The
    caller holds the folder's lock and has made sure the final path is free or fmnist's."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    partial = folder / (name + ".partial")
    attempts: list[tuple[str, str]] = []
    for base in mirrors:
        url = base if base.endswith(name) else base.rstrip("/") + "/" + name
        fresh_tries = 1  # one restart from scratch if a resumed file fails verification
        attempt = 0
        while attempt < retries:
            try:
                resumed = _resumable_size(partial) > 0
                log.info("%s: waiting on %s (attempt %d of %d, %g s timeout)", name, url, attempt + 1, retries, timeout)
                _get(url, partial, timeout, limit)
            except _Skip as e:
                log.info("%s: %s: %s; next mirror", name, url, e)
                attempts.append((url, str(e)))
                partial.unlink(missing_ok=True)
                break
            except _Retry as e:
                log.info("%s: %s: %s", name, url, e)
                attempts.append((url, str(e)))
                attempt += 1
                if attempt < retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                continue
            judged = check(partial)
            if judged.ok:
                os.replace(partial, final)
                _fsync_dir(folder)
                return judged, final
            partial.unlink(missing_ok=True)
            if resumed and fresh_tries:
                fresh_tries -= 1
                attempts.append((url, "resumed file failed verification; downloading again from the start"))
                continue
            attempts.append((url, "served bytes that failed verification: " + judged.message))
            break
        else:
            partial.unlink(missing_ok=True)  # this mirror is done with; do not resume its bytes elsewhere
    raise DownloadError(name, attempts)


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

"""Verified downloads: mirrors in order, retries with backoff, HTTP Range resume.

Bytes go to a file of fmnist's own beside the target (``idx.temporary``: a unique name, so ranks
sharing a folder never collide), made with ``O_EXCL`` and held open until it is renamed, recorded
for a later process to resume; only a copy the check accepts is fsynced, checked and renamed to its
final name. Any failure of an attempt (an error status, an HTML page, a short body, bad bytes, an
answer that is not HTTP, a status line and headers that do not arrive within the timeout, a body
slower than curl's low-speed rule, any exception of the HTTP layer) fails that attempt only; a name
that does not resolve is not retried. The error lists every attempt and why it failed.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import stat
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from .. import idx
from .._core import __version__
from ..errors import Error
from .store import Store, identity

log = logging.getLogger("fmnist.download")
#: curl's low-speed rule: an attempt receiving fewer bytes than this in a timeout is abandoned.
LOW_SPEED_BYTES = 4 << 10
USER_AGENT = f"fmnist/{__version__} (+https://github.com/zalandoresearch/fashion-mnist)"


class DownloadError(Error, OSError):
    """No mirror gave a verified copy. ``attempts`` lists (url, why) for every try."""

    def __init__(self, name: str, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = list(attempts)
        lines = "\n".join(f"  {url}: {why}" for url, why in self.attempts) or "  (no mirror to try)"
        super().__init__(f"could not download a verified {name}; every mirror failed:\n{lines}")


class _Skip(Exception):
    """This mirror will not give the file: try the next."""


class _Retry(Exception):
    """A transient failure: try this mirror again (``restart``: from the first byte)."""

    def __init__(self, why: str, restart: bool = False) -> None:
        super().__init__(why)
        self.restart = restart


def _partial(store: Store, final: Path) -> tuple[Path, int]:
    """The recorded partial of ``final`` to resume (the recorded inode, a regular file with one
    link, this user's), else a new one, recorded; opened for reading and writing."""
    entry = store.entry("partials", str(final)) or {}
    if isinstance(entry.get("name"), str):
        path = final.with_name(entry["name"])
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
            st = os.fstat(fd)
            mine = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and mine and entry.get("ino") == st.st_ino:
                return path, fd
            os.close(fd)
        except OSError:
            pass
    path = idx.temporary(final)
    fd = idx.create(path)
    _remember(store, final, path)
    return path, fd


def _remember(store: Store, final: Path, path: Path | None) -> None:
    try:
        store.record("partials", str(final), None if path is None else {**identity(path.lstat()), "name": path.name})
    except OSError as e:  # a root that cannot be written: no resume, the download goes on
        log.info("%s: not recorded as resumable: %s", final.name, e)


def _cut(conn: Any) -> None:
    try:
        conn.sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


def _open(url: str, have: int, timeout: float) -> tuple[Any, Any]:
    """(connection, response) for ``url``, following up to five http(s) redirects. The status line
    and headers must arrive within ``timeout`` of the request: a watchdog ends the connection then
    (a shutdown wakes a blocked read; a close does not)."""
    for _ in range(6):
        parts = urllib.parse.urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname or "", parts.port, timeout=timeout)
        watchdog, asked = threading.Timer(timeout, _cut, (conn,)), time.monotonic()
        watchdog.start()
        try:
            conn.connect()
            headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), headers=headers)
            response = conn.getresponse()
        except socket.gaierror as e:
            conn.close()
            raise _Skip(f"the name does not resolve: {e}") from None
        except Exception as e:  # a banner, a 64 KiB header line, 101 headers, the deadline, a refusal
            conn.close()
            if time.monotonic() - asked >= timeout:  # the watchdog fired (or the connection timed out)
                raise _Retry(f"the status line and headers did not arrive within {timeout:g} s") from None
            raise _Retry(f"no HTTP answer: {type(e).__name__}: {e}") from None
        finally:
            watchdog.cancel()
        if response.status not in (301, 302, 303, 307, 308):
            return conn, response
        url = urllib.parse.urljoin(url, response.getheader("Location") or "")
        conn.close()
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise _Skip(f"redirected (HTTP {response.status}) to {url}, not an http:// or https:// URL")
    raise _Skip("more than five redirects")


def _copy(source: Any, out: IO[bytes], room: int, window: float, bar: Any, sniff: bool) -> int:
    """Copies ``source`` to ``out`` as it arrives, at most ``room`` bytes, abandoned when fewer than
    LOW_SPEED_BYTES arrive in ``window`` seconds; returns the bytes copied."""
    copied, got, started = 0, 0, time.monotonic()
    read = getattr(source, "read1", source.read)
    while True:
        if time.monotonic() - started >= window:
            if got < LOW_SPEED_BYTES:
                raise _Retry(
                    f"too slow: {got} bytes in {window:g} s after {copied} bytes (an attempt is abandoned when "
                    f"fewer than {LOW_SPEED_BYTES} bytes arrive in the timeout)"
                )
            started, got = time.monotonic(), 0
        try:
            chunk = read(1 << 16)
        except Exception as e:  # a dropped connection, a timeout, a broken body
            raise _Retry(f"connection dropped after {copied} bytes: {type(e).__name__}: {e}") from None
        if not chunk:
            return copied
        if sniff and copied == 0 and chunk.lstrip()[:1] == b"<":
            raise _Skip("served an HTML page, not the file")
        got += len(chunk)
        if copied + len(chunk) > room:
            raise _Skip(f"sent more than the {room} bytes the file can have; stopped there")
        out.write(chunk)  # an OSError here (a full disk) is the caller's, not the mirror's
        copied += len(chunk)
        if bar is not None:
            bar.update(len(chunk))


def _get(url: str, out: IO[bytes], have: int, timeout: float, limit: int, name: str) -> None:
    """One attempt: ``url`` into ``out``, after the ``have`` bytes there when the server resumes."""
    if url.startswith("file://"):
        local = urllib.request.url2pathname(url[len("file://") :])
        try:
            if not stat.S_ISREG(os.stat(local).st_mode):
                raise _Skip(f"{local} is not a regular file")
            src = open(local, "rb")
        except OSError as e:
            raise _Skip(f"cannot read {local}: {e.strerror or e}") from None
        with src:
            out.seek(0)
            out.truncate()
            _copy(src, out, limit, timeout, None, sniff=False)
        return
    conn, response = _open(url, have, timeout)
    try:
        status, kind = response.status, response.getheader("Content-Type") or ""
        if status == 416 and have:
            raise _Retry("HTTP 416 for the resumed range; starting over", restart=True)
        if status >= 400 or status in (408, 425, 429):
            raise (_Retry if status in (408, 425, 429) or status >= 500 else _Skip)(f"HTTP {status} {response.reason}")
        if "text/html" in kind:
            raise _Skip(f"served an HTML page (Content-Type: {kind}), not the file")
        resumed = have > 0 and status == 206
        if resumed and not (response.getheader("Content-Range") or "").startswith(f"bytes {have}-"):
            raise _Retry(f"bad Content-Range {response.getheader('Content-Range')!r}", restart=True)
        have = have if resumed else 0
        length = response.getheader("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        if expected is not None and have + expected > limit:
            raise _Skip(f"announces {have + expected} bytes, more than the {limit} the file can have")
        out.seek(have)
        out.truncate()
        bar = _progress(None if expected is None else expected + have, have, name)
        try:
            copied = _copy(response, out, limit - have, timeout, bar, sniff=not resumed)
        finally:
            if bar is not None:
                bar.close()
        if expected is not None and copied < expected:
            raise _Retry(f"short body: {copied} of {expected} bytes")
    finally:
        conn.close()


def _progress(total: int | None, initial: int, name: str) -> Any:
    """A tqdm bar on a terminal, tqdm's notebook display in Jupyter, nothing elsewhere."""
    if not sys.stderr.isatty() and "ipykernel" not in sys.modules:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, leave=False)


def fetch(
    final: Path,
    mirrors: Sequence[str],
    check: Callable[[Path], list[Any]],
    limit: int,
    store: Store,
    *,
    replace: bool,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> list[Any]:
    """Downloads ``final`` from the first mirror giving a copy ``check`` accepts (the ``proof`` of
    its first judgment), at most ``limit`` bytes: its judgments.
    ``replace``: the final path is fmnist's to replace; else a file another process put there first
    wins, and is judged. A download cut short (an error, a kill) stays recorded in ``store``, to resume."""
    final.parent.mkdir(parents=True, exist_ok=True)
    name, attempts = final.name, []
    partial, fd = _partial(store, final)
    with os.fdopen(fd, "r+b") as out:
        for base in mirrors:
            url, fresh, attempt = base if base.endswith(name) else base.rstrip("/") + "/" + name, True, 0
            while attempt < retries:
                have = os.fstat(fd).st_size
                log.info("%s: waiting on %s (attempt %d of %d, %g s timeout)", name, url, attempt + 1, retries, timeout)
                try:
                    _get(url, out, have, timeout, limit, name)
                    out.flush()
                    os.fsync(fd)
                except (_Skip, _Retry) as e:
                    log.info("%s: %s: %s%s", name, url, e, "; next mirror" if isinstance(e, _Skip) else "")
                    attempts.append((url, str(e)))
                    if isinstance(e, _Skip):
                        break
                    attempt += 1
                    if e.restart:
                        out.truncate(0)
                    time.sleep(backoff * 2 ** (attempt - 1) if attempt < retries else 0)
                    continue
                except OSError as e:  # writing here failed: not the mirror's fault, not retried
                    raise OSError(e.errno, f"cannot write the download: {e.strerror}", str(partial)) from None
                judged = check(partial)
                if judged[0].proof is not None:
                    idx.mine(partial, fd)
                    placed = idx.finish(partial, final, replace=replace)
                    _remember(store, final, None)
                    return judged if placed else check(final)
                out.truncate(0)
                if have and fresh:
                    fresh = False
                    attempts.append((url, "resumed file failed verification; downloading again from the start"))
                    continue
                attempts.append((url, "served bytes that failed verification: " + judged[0].message))
                break
            out.truncate(0)  # this mirror is done with: its bytes are resumed nowhere else
    os.unlink(partial)
    _remember(store, final, None)
    raise DownloadError(name, attempts)

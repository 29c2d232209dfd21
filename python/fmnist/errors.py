"""fmnist's exceptions: ``fmnist.Error`` is the base of every one, and each keeps the
standard-library class code already catches (``ValueError``, ``OSError``, ``gzip.BadGzipFile``,
``lzma.LZMAError``). The Rust engine raises the first five; this module imports nothing of
fmnist's, so the engine can import it at any time."""

from __future__ import annotations

import gzip
import lzma
import zipfile


class Error(Exception):
    """The base of every exception fmnist defines: ``except fmnist.Error`` catches them all."""


class IdxFormatError(Error, ValueError):
    """Not IDX, or malformed IDX: magic, type code, sizes or length. The message names the source."""


class ChecksumError(Error, ValueError):
    """A digest did not match. The message names the file, the algorithm, what was hashed,
    expected and actual; so do the attributes: ``path`` (None for bytes in memory),
    ``algorithm`` ("md5" or "sha256"), ``covers`` ("stored" or "content"), ``expected`` and
    ``actual`` (hex)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        algorithm: str = "",
        covers: str = "",
        expected: str = "",
        actual: str = "",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.algorithm = algorithm
        self.covers = covers
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[object, ...]:
        fields = {k: getattr(self, k) for k in ("path", "algorithm", "covers", "expected", "actual")}
        return (_checksum_error, (str(self), fields))


def _checksum_error(message: str, fields: dict[str, str | None]) -> ChecksumError:
    return ChecksumError(message, **fields)  # type: ignore[arg-type]


class BadGzipFile(Error, gzip.BadGzipFile):
    """Corrupt or truncated gzip: a bad member header, deflate stream, CRC32 or ISIZE."""


class BadZipFile(Error, zipfile.BadZipFile):
    """A zip archive (EMNIST's ``gzip.zip``) that cannot be read, or one of its members that is
    corrupt (a bad CRC or deflate stream), encrypted, compressed in a way fmnist does not read,
    or larger than the registry's shape allows: the message names the archive and the member."""


class XzError(Error, lzma.LZMAError):
    """Corrupt or truncated xz, an index that claims more than the file can hold, or a stream
    that asks for more decoder memory than its content justifies."""


class InternalError(Error, RuntimeError):
    """A bug in fmnist (a Rust panic), reported as an ordinary exception. Please report it."""


class UnverifiedDataWarning(UserWarning):
    """Data loaded by torchvision's rules from torchvision's folder although no published or proven
    digest matched it (a subset, custom data): the message names the file and what did not match.
    ``fmnist.torch``'s ``verify=True`` refuses such files instead."""

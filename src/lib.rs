//! fmnist: fast, verified IDX (MNIST-format) reading and writing.
//!
//! The engine is plain Rust: [`element`] is the table of element types, [`idx`] every IDX fact
//! (header encode/decode, sizes, limits), [`codec`] tells raw, gzip and xz apart, [`gzip`] and
//! [`xz`] decode them, [`digest`] hashes and judges digests, [`reader`] is the one read call
//! (sources in, outcomes out), [`writer`] encodes, [`batches`] feeds training loops from
//! [`rows`], [`augment`] augments what it feeds, `mapping` maps files copy-on-write (Unix).
//! Only `python/` (feature `python`) knows about pyo3 and numpy. No module imports one that
//! imports it back.

use std::fmt;

pub mod augment;
pub mod batches;
pub mod codec;
pub mod digest;
pub mod element;
pub mod gzip;
pub mod idx;
#[cfg(unix)]
pub mod mapping;
pub mod reader;
pub mod rows;
pub mod streaming;
pub mod writer;
pub mod xz;

#[cfg(feature = "python")]
mod python;

/// Every failure the engine reports. The binding maps each kind to one Python exception class.
#[derive(Debug)]
pub enum Error {
    /// The operating system's error, kept as it is (its kind picks the OSError subclass).
    Io(std::io::Error),
    /// Not IDX, or malformed IDX: magic, type code, sizes, length.
    Format(String),
    /// A payload over the caller's `max_bytes` (an IdxFormatError too), judged from the header alone.
    Limit(String),
    /// Corrupt or truncated gzip, CRC32 or ISIZE mismatch.
    Gzip(String),
    /// Corrupt or truncated xz: a bad stream, index or integrity check.
    Xz(String),
    /// A digest did not match.
    Checksum(Box<digest::Mismatch>),
    /// A bad argument (not bad data): a malformed expected digest, an impossible option.
    Usage(String),
    /// The allocator refused the memory a valid file needs.
    Memory(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Checksum(m) => write!(f, "{m}"),
            Error::Format(m) | Error::Gzip(m) | Error::Xz(m) | Error::Limit(m) | Error::Usage(m) | Error::Memory(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

/// An empty vector with room for `len` items, or `Error::Memory` saying what it was for: every
/// allocation whose size a caller or a file chose goes through here (or `try_reserve`), never
/// through an allocation that aborts the process when refused.
pub fn with_room<T>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::Memory(format!("cannot allocate {} bytes for {}", len.saturating_mul(std::mem::size_of::<T>()), what()))
    })?;
    Ok(v)
}

/// `len` copies of `value`, allocated as `with_room` allocates.
pub fn filled<T: Clone>(len: usize, value: T, what: impl FnOnce() -> String) -> Result<Vec<T>, Error> {
    let mut v = with_room(len, what)?;
    v.resize(len, value);
    Ok(v)
}

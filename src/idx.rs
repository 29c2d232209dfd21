//! The IDX header: type codes, dimensions, sizes and their validation.
//!
//! Layout (big-endian): two zero bytes, a type code, the number of dimensions `n`, then `n`
//! unsigned 32-bit sizes, then the payload in C order. A file is valid only if its length is
//! exactly `header_len + product(sizes) * itemsize`.

use std::fmt;

pub use crate::element::ElementType as Dtype;
use crate::Error;

/// The element types IDX can hold, by their type code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub dtype: Dtype,
    pub dims: Vec<usize>,
    /// Number of elements: the product of `dims` (1 for zero dimensions).
    pub count: usize,
    /// Payload bytes: `count * itemsize`, overflow-checked.
    pub payload_len: usize,
}

impl Header {
    pub fn new(dtype: Dtype, dims: Vec<usize>) -> Result<Header, Error> {
        if dtype.idx_code().is_none() {
            return Err(Error::Usage(format!(
                "IDX cannot hold {dtype}: use uint8, int8, int16, int32, float32 or float64"
            )));
        }
        if dims.len() > 255 {
            return Err(Error::Format(format!("{} dimensions; IDX holds at most 255", dims.len())));
        }
        if let Some(d) = dims.iter().find(|&&d| d > u32::MAX as usize) {
            return Err(Error::Format(format!("dimension {d} does not fit IDX's 32-bit sizes")));
        }
        let too_big = || Error::Format(format!("sizes {} overflow this machine's address space", fmt_dims(&dims)));
        // numpy skips zero sizes when it checks that an array fits (nbytes of the non-zero
        // sizes must fit an npy_intp): so must we, or `FFFFFFFF x FFFFFFFF x 0` would reach
        // numpy's bare "array is too big".
        let nonzero = dims.iter().filter(|&&d| d != 0).try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if nonzero.is_none_or(|n| n > isize::MAX as usize) {
            return Err(too_big());
        }
        let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(too_big)?;
        let payload_len = count.checked_mul(dtype.size()).ok_or_else(too_big)?;
        // The whole file must be addressable too (isize::MAX is Rust's and numpy's allocation limit).
        if payload_len > isize::MAX as usize - header_len(dims.len()) {
            return Err(too_big());
        }
        Ok(Header { dtype, dims, count, payload_len })
    }

    pub fn header_len(&self) -> usize {
        header_len(self.dims.len())
    }

    /// The complete file length this header declares.
    pub fn total_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len());
        out.extend_from_slice(&[
            0,
            0,
            self.dtype.idx_code().expect("a header holds an IDX type"),
            self.dims.len() as u8,
        ]);
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out
    }
}

impl fmt::Display for Header {
    /// "60000 x 28 x 28 uint8" - how messages describe a header.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", fmt_dims(&self.dims), self.dtype.name())
    }
}

pub fn fmt_dims(dims: &[usize]) -> String {
    if dims.is_empty() {
        return "scalar".to_string();
    }
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" x ")
}

pub fn header_len(ndim: usize) -> usize {
    4 + 4 * ndim
}

/// How many leading bytes `parse` needs, given what is known so far: 4 until the dimension count
/// is seen, then the full header length.
pub fn needed(prefix: &[u8]) -> usize {
    if prefix.len() < 4 {
        4
    } else {
        header_len(prefix[3] as usize)
    }
}

/// Parses the header at the start of `prefix` (which may hold more than the header).
pub fn parse(prefix: &[u8]) -> Result<Header, Error> {
    if prefix.len() < 4 {
        return Err(Error::Format(format!(
            "too short for an IDX header: expected at least 4 bytes, found {}",
            prefix.len()
        )));
    }
    if prefix[0] != 0 || prefix[1] != 0 {
        return Err(Error::Format(format!(
            "not an IDX file: expected magic bytes 00 00, found {:02x} {:02x}",
            prefix[0], prefix[1]
        )));
    }
    let dtype = Dtype::from_idx_code(prefix[2]).ok_or_else(|| {
        Error::Format(format!(
            "unknown IDX type code 0x{:02X}: expected one of 0x08 (uint8), 0x09 (int8), 0x0B (int16), \
             0x0C (int32), 0x0D (float32), 0x0E (float64)",
            prefix[2]
        ))
    })?;
    let ndim = prefix[3] as usize;
    let hlen = header_len(ndim);
    if prefix.len() < hlen {
        return Err(Error::Format(format!(
            "truncated IDX header: {ndim} dimensions need {hlen} header bytes, found {}",
            prefix.len()
        )));
    }
    let dims = prefix[4..hlen].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    Header::new(dtype, dims)
}

/// Checks that a source of `found` bytes is exactly as long as `header` declares.
pub fn check_len(header: &Header, found: usize) -> Result<(), Error> {
    let expected = header.total_len();
    if found != expected {
        let how = if found < expected { "truncated" } else { "trailing bytes" };
        return Err(Error::Format(format!(
            "IDX length mismatch ({how}): header declares {header} = {} payload bytes, \
             {expected} bytes in all; found {found}",
            header.payload_len
        )));
    }
    Ok(())
}

/// The most stored bytes any gzip or xz of the content `header` declares needs: deflate and
/// LZMA2 store incompressible data with a few bytes of overhead per 64 KiB (1/8 more is far
/// more than enough), and 1 MiB is left for member and stream headers. What a download of a
/// file whose stored size is unknown may send.
pub fn max_compressed_len(header: &Header) -> usize {
    let total = header.total_len();
    total.saturating_add(total / 8).saturating_add(1 << 20)
}

/// Refuses a payload over the caller's limit, before anything is allocated for it.
pub fn check_max(header: &Header, max_bytes: Option<usize>) -> Result<(), Error> {
    match max_bytes {
        Some(max) if header.payload_len > max => {
            Err(Error::Limit(format!("payload of {header} is {} bytes, over max_bytes={max}", header.payload_len)))
        }
        _ => Ok(()),
    }
}

/// Where the content turned out longer or shorter than the buffer the caller sized for it.
#[derive(Debug, PartialEq, Eq)]
pub enum Fit {
    Exact,
    /// All members decoded, giving this many bytes (fewer than the buffer).
    Short(usize),
    /// A member produced more than the space left.
    Long,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_table_round_trips() {
        for d in Dtype::ALL.into_iter().filter(|d| d.idx_code().is_some()) {
            assert_eq!(Dtype::from_idx_code(d.idx_code().unwrap()), Some(d));
        }
        assert_eq!(Dtype::from_idx_code(0x0A), None);
    }

    #[test]
    fn parses_fashion_mnist_images_header() {
        let h = parse(&[0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]).unwrap();
        assert_eq!(h.dims, vec![60000, 28, 28]);
        assert_eq!(h.payload_len, 47_040_000);
        assert_eq!(h.total_len(), 47_040_016);
        assert_eq!(h.encode(), vec![0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]);
        assert_eq!(h.to_string(), "60000 x 28 x 28 uint8");
    }

    #[test]
    fn zero_dims_is_a_scalar_and_zero_size_is_empty() {
        let h = parse(&[0, 0, 0x0E, 0]).unwrap();
        assert_eq!((h.count, h.payload_len), (1, 8));
        let h = parse(&[0, 0, 0x0C, 2, 0, 0, 0, 0, 0, 0, 0, 5]).unwrap();
        assert_eq!((h.count, h.payload_len), (0, 0));
    }

    #[test]
    fn rejects_bad_magic_type_and_truncation() {
        let msg = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert!(msg(&[1, 0, 8, 1]).contains("magic"));
        assert!(msg(&[0, 0, 7, 1]).contains("type code 0x07"));
        assert!(msg(&[0, 0, 8, 2, 0, 0, 0, 1]).contains("need 12 header bytes, found 8"));
        assert!(msg(&[0, 0]).contains("at least 4 bytes, found 2"));
    }

    #[test]
    fn sizes_are_overflow_checked() {
        let mut b = vec![0, 0, 0x0E, 3];
        for _ in 0..3 {
            b.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        assert!(parse(&b).unwrap_err().to_string().contains("overflow"));
    }

    #[test]
    fn length_and_limit_checks() {
        let h = Header::new(Dtype::I16, vec![3]).unwrap();
        assert!(check_len(&h, 14).is_ok());
        assert!(check_len(&h, 13).unwrap_err().to_string().contains("truncated"));
        assert!(check_len(&h, 15).unwrap_err().to_string().contains("found 15"));
        assert!(check_max(&h, Some(5)).is_err());
        assert!(check_max(&h, Some(6)).is_ok());
        assert_eq!(max_compressed_len(&h), 14 + 1 + (1 << 20));
    }
}

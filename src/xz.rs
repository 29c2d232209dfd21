//! xz files (QMNIST's 400,000-example split is published as .xz): liblzma, built from its
//! bundled source. Like the gzip path, the content is decoded straight into the caller's final
//! buffer, once; before that, the size the streams' indexes record is compared with what the
//! IDX header declares, so a forged header is refused before anything is allocated for it.
//! Every stream's integrity check (CRC32, CRC64 or SHA-256) is verified by liblzma; concatenated
//! streams and stream padding are read as `xz` and Python's `lzma` read them.

use liblzma::stream::{Action, Status, Stream, CONCATENATED};

use crate::idx::Fit;
use crate::Error;

/// The six bytes every xz stream starts with.
pub const MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];

pub fn is_xz(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// A stream footer's size, and the alignment of everything around it.
const FOOTER: usize = 12;

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Xz(format!("corrupt or truncated xz data: {what}"))
}

/// Bytes of a file or a buffer, read at any position: what walking the indexes back from the end
/// needs, without holding the whole file.
pub trait At {
    fn size(&self) -> usize;
    /// `n` bytes at `pos` (`pos + n <= size()`).
    fn at(&mut self, pos: usize, n: usize) -> Result<&[u8], Error>;
}

impl At for &[u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn at(&mut self, pos: usize, n: usize) -> Result<&[u8], Error> {
        Ok(&self[pos..pos + n])
    }
}

/// A regular file of `len` bytes, read at positions through a window of up to 64 KiB (stream
/// padding is walked four bytes at a time: one read a window, not one a step).
pub struct FileAt<'f> {
    file: &'f std::fs::File,
    len: usize,
    start: usize,
    window: Vec<u8>,
}

impl<'f> FileAt<'f> {
    pub fn new(file: &'f std::fs::File, len: usize) -> FileAt<'f> {
        FileAt { file, len, start: 0, window: Vec::new() }
    }
}

impl At for FileAt<'_> {
    fn size(&self) -> usize {
        self.len
    }

    fn at(&mut self, pos: usize, n: usize) -> Result<&[u8], Error> {
        use std::io::{Read, Seek, SeekFrom};
        if !(pos >= self.start && pos + n <= self.start + self.window.len()) {
            // A window ending at pos + n (the walk goes backwards), at least n bytes long.
            let end = pos + n;
            let start = end.saturating_sub((64 << 10).max(n));
            self.window.clear();
            self.window
                .try_reserve_exact(end - start)
                .map_err(|_| Error::Memory(format!("cannot allocate {n} bytes for an xz index")))?;
            let mut f = self.file;
            f.seek(SeekFrom::Start(start as u64))?;
            f.take((end - start) as u64).read_to_end(&mut self.window)?;
            if self.window.len() != end - start {
                return Err(corrupt("the file changed size while its indexes were read"));
            }
            self.start = start;
        }
        Ok(&self.window[pos - self.start..pos - self.start + n])
    }
}

/// The total uncompressed size recorded in the indexes of the streams that make up `data` (the
/// whole file), read backwards from the last stream's footer; nothing is decoded. The block
/// data itself is checked later, by decoding.
pub fn uncompressed_size(mut data: impl At) -> Result<u64, Error> {
    let mut end = data.size();
    let mut total: u64 = 0;
    let mut streams = 0;
    while end > 0 {
        // Stream padding: zero bytes, four at a time, between and after streams.
        while end >= 4 && data.at(end - 4, 4)? == [0; 4] {
            end -= 4;
        }
        if end == 0 && streams > 0 {
            break;
        }
        if end < FOOTER + MAGIC.len() || !end.is_multiple_of(4) {
            return Err(corrupt("the file does not end with a whole stream footer"));
        }
        let (index, size) = stream_index(&mut data, end)?;
        total = total.checked_add(index).ok_or_else(|| corrupt("uncompressed size overflows"))?;
        end = end.checked_sub(size).ok_or_else(|| corrupt("a stream claims to be larger than the file"))?;
        if end + MAGIC.len() > data.size() || data.at(end, MAGIC.len())? != MAGIC {
            return Err(corrupt("a stream's index does not lead back to a stream header"));
        }
        streams += 1;
    }
    Ok(total)
}

/// The stream of `data` that ends (with its footer) at `end`: its uncompressed size, and its
/// total size in the file.
fn stream_index(data: &mut impl At, end: usize) -> Result<(u64, usize), Error> {
    use liblzma_sys as sys;
    let mut footer = [0u8; FOOTER];
    footer.copy_from_slice(data.at(end - FOOTER, FOOTER)?);
    // SAFETY: lzma_stream_flags is plain data (integers and reserved fields): all-zero is a
    // valid value for the decoder to overwrite; it reads exactly FOOTER bytes from `footer`.
    let mut flags: sys::lzma_stream_flags = unsafe { std::mem::zeroed() };
    if unsafe { sys::lzma_stream_footer_decode(&mut flags, footer.as_ptr()) } != sys::LZMA_OK {
        return Err(corrupt("bad stream footer"));
    }
    let index_len = usize::try_from(flags.backward_size).map_err(|_| corrupt("bad index size"))?;
    let index_start = (end - FOOTER).checked_sub(index_len).ok_or_else(|| corrupt("bad index size"))?;
    let index = data.at(index_start, index_len)?;
    let mut idx: *mut sys::lzma_index = std::ptr::null_mut();
    let mut memlimit: u64 = 64 << 20; // an index of a few hundred blocks needs kilobytes
    let mut pos: usize = 0;
    // SAFETY: liblzma reads `index.len()` bytes from `index`, and on success stores a new index
    // in `idx`, which is freed below with lzma_index_end (the default allocator).
    let ret = unsafe {
        sys::lzma_index_buffer_decode(&mut idx, &mut memlimit, std::ptr::null(), index.as_ptr(), &mut pos, index.len())
    };
    if ret != sys::LZMA_OK || idx.is_null() {
        return Err(corrupt("bad stream index"));
    }
    // SAFETY: `idx` is the valid index decoded above, freed exactly once after its last use.
    let (size, stream) = unsafe {
        let sizes = (sys::lzma_index_uncompressed_size(idx), sys::lzma_index_stream_size(idx));
        sys::lzma_index_end(idx, std::ptr::null());
        sizes
    };
    let stream = usize::try_from(stream).map_err(|_| corrupt("bad stream size"))?;
    Ok((size, stream))
}

/// The most content `compressed` bytes of xz can claim (in their indexes) before anything is
/// allocated for it: `xz` itself packs at most about 6,900:1 (1 GiB of zeros, at any preset,
/// is 156 KB), so 65,536:1 (and 1 MiB for tiny files) refuses only forged indexes.
pub const MAX_RATIO: u64 = 1 << 16;

/// Refuses a claimed content size no xz of `compressed` bytes can hold.
pub fn check_claim(claimed: u64, compressed: usize) -> Result<(), Error> {
    let most = (compressed as u64).saturating_mul(MAX_RATIO).saturating_add(1 << 20);
    if claimed > most {
        return Err(corrupt(format!(
            "the streams' index claims {claimed} bytes of content, more than {compressed} bytes of xz can hold \
             (at most {most}: xz packs at most about 7,000:1)"
        )));
    }
    Ok(())
}

/// The most memory a decoder may use for `content` bytes of content: a dictionary as large as
/// the content (rounded up to a size xz can record: at most 1.5 times it) and the decoder's
/// own state, and never less than the 128 MiB every preset (xz -9 needs 65 MiB) fits in. A
/// stream asking for more (a 1.5 GiB dictionary over a small file) is refused before liblzma
/// allocates it.
pub fn memlimit(content: u64) -> u64 {
    (content.saturating_mul(3) / 2).saturating_add(16 << 20).max(128 << 20)
}

pub fn decoder(limit: u64) -> Result<Stream, Error> {
    Stream::new_stream_decoder(limit, CONCATENATED).map_err(|e| Error::Memory(format!("xz decoder: {e}")))
}

/// liblzma's errors as the engine reports them: a stream over the memory limit, or corrupt data.
pub fn error(limit: u64) -> impl Fn(liblzma::stream::Error) -> Error {
    move |e| match e {
        liblzma::stream::Error::MemLimit => Error::Xz(format!(
            "the xz stream asks for more decoder memory than the {} MiB its content justifies",
            limit >> 20
        )),
        e => corrupt(e),
    }
}

/// Decodes `data` into `head`, then `out`, then `spill` (for a caller that wants to know whether
/// there is more); returns how many bytes of content there were (at most all three lengths), and
/// whether the end of the last stream was reached.
fn decode(data: &[u8], parts: &mut [&mut [u8]], limit: u64) -> Result<(usize, bool), Error> {
    let mut stream = decoder(limit)?;
    let mut part = 0;
    let mut filled = 0; // in parts[part]
    let mut total = 0;
    loop {
        while part < parts.len() && filled == parts[part].len() {
            part += 1;
            filled = 0;
        }
        if part == parts.len() {
            return Ok((total, false));
        }
        let (before_in, before_out) = (stream.total_in(), stream.total_out());
        let status = stream
            .process(&data[before_in as usize..], &mut parts[part][filled..], Action::Finish)
            .map_err(error(limit))?;
        let produced = (stream.total_out() - before_out) as usize;
        filled += produced;
        total += produced;
        match status {
            Status::StreamEnd => return Ok((total, true)),
            _ if stream.total_in() == before_in && produced == 0 => {
                return Err(corrupt("the data ends before the last stream does"))
            }
            _ => {}
        }
    }
}

/// The first `n` bytes of the content (fewer if the content is shorter): the IDX header.
pub fn read_prefix(data: &[u8], n: usize, limit: u64) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; n];
    let (got, _) = decode(data, &mut [&mut out], limit)?;
    out.truncate(got);
    Ok(out)
}

/// Decodes all of `data` into `head` and then `out`, every stream's check verified:
/// `Fit::Exact` when the content fills both exactly, else how it differs.
pub fn decode_into(data: &[u8], head: &mut [u8], out: &mut [u8], limit: u64) -> Result<Fit, Error> {
    let room = head.len() + out.len();
    let mut spill = [0u8; 1];
    let (got, _) = decode(data, &mut [head, out, &mut spill], limit)?;
    Ok(if got < room {
        Fit::Short(got)
    } else if got > room {
        Fit::Long
    } else {
        Fit::Exact
    })
}

/// Checks the whole of `data` (every block and check) without keeping the content: which error
/// a corrupt stream gives, for callers that found something else wrong first.
pub fn check_stream(data: &[u8], limit: u64) -> Result<(), Error> {
    let mut stream = decoder(limit)?;
    let mut sink = vec![0u8; 1 << 16];
    loop {
        let (before_in, before_out) = (stream.total_in(), stream.total_out());
        let status = stream.process(&data[before_in as usize..], &mut sink, Action::Finish).map_err(error(limit))?;
        if status == Status::StreamEnd {
            return Ok(());
        }
        if stream.total_in() == before_in && stream.total_out() == before_out {
            return Err(corrupt("the data ends before the last stream does"));
        }
    }
}

/// Compresses `content` as one xz stream (CRC64 check), at `preset` 0-9.
pub fn compress(content: &[u8], preset: u32) -> Result<Vec<u8>, Error> {
    let mut stream = Stream::new_easy_encoder(preset, liblzma::stream::Check::Crc64)
        .map_err(|e| Error::Usage(format!("xz preset {preset}: {e}")))?;
    let what = || format!("the xz of {} bytes", content.len());
    let mut out = crate::with_room(content.len() / 4 + 1024, what)?;
    loop {
        let before = stream.total_in() as usize;
        if out.capacity() == out.len() {
            out.try_reserve(out.len().max(1 << 16))
                .map_err(|_| Error::Memory(format!("cannot allocate {} bytes for {}", 2 * out.len(), what())))?;
        }
        let status = stream
            .process_vec(&content[before..], &mut out, Action::Finish)
            .map_err(|e| Error::Memory(format!("xz encoder: {e}")))?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_declared_size() {
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let packed = compress(&content, 6).unwrap();
        assert!(is_xz(&packed));
        assert_eq!(uncompressed_size(&packed[..]).unwrap(), content.len() as u64);
        let limit = memlimit(content.len() as u64);
        let (mut head, mut out) = (vec![0u8; 16], vec![0u8; content.len() - 16]);
        assert!(matches!(decode_into(&packed, &mut head, &mut out, limit).unwrap(), Fit::Exact));
        assert_eq!([head, out].concat(), content);
        assert_eq!(read_prefix(&packed, 10, limit).unwrap(), content[..10]);
        // Two concatenated streams with padding between: one content, as xz reads it.
        let mut two = packed.clone();
        two.extend_from_slice(&[0; 8]);
        two.extend_from_slice(&compress(b"tail", 0).unwrap());
        assert_eq!(uncompressed_size(&two[..]).unwrap(), content.len() as u64 + 4);
        let mut out = vec![0u8; content.len() + 4];
        assert!(matches!(decode_into(&two, &mut [], &mut out, limit).unwrap(), Fit::Exact));
        assert_eq!(&out[content.len()..], b"tail");
        let mut short = vec![0u8; content.len() - 1];
        assert!(matches!(decode_into(&packed, &mut [], &mut short, limit).unwrap(), Fit::Long));
        let mut long = vec![0u8; content.len() + 1];
        assert!(
            matches!(decode_into(&packed, &mut [0; 3], &mut long, limit).unwrap(), Fit::Short(n) if n == content.len())
        );
    }

    #[test]
    fn claims_and_memory_follow_the_content() {
        assert!(check_claim(8 << 30, 104).is_err());
        assert!(check_claim(1 << 20, 1).is_ok());
        assert!(check_claim(1 << 30, 156_316).is_ok()); // what xz makes of 1 GiB of zeros
        assert_eq!(memlimit(0), 128 << 20);
        assert_eq!(memlimit(1 << 30), (3 << 29) + (16 << 20));
    }

    #[test]
    fn corruption_is_an_xz_error_never_a_panic() {
        let packed = compress(&[7u8; 5000], 1).unwrap();
        for cut in [1, 6, 12, packed.len() / 2, packed.len() - 1] {
            let r = decode_into(&packed[..cut], &mut [], &mut [0u8; 5000], memlimit(5000));
            assert!(matches!(r, Err(Error::Xz(_))), "cut at {cut}: {r:?}");
            assert!(matches!(uncompressed_size(&packed[..cut]), Err(Error::Xz(_))));
        }
        for at in [packed.len() / 2, packed.len() - 9] {
            let mut bad = packed.clone();
            bad[at] ^= 0x55;
            assert!(
                matches!(decode_into(&bad, &mut [], &mut [0u8; 5000], memlimit(5000)), Err(Error::Xz(_))),
                "flip at {at}"
            );
        }
    }
}

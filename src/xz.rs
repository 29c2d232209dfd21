//! xz files (QMNIST's 400,000-example split is published as .xz): liblzma, built from its
//! bundled source. Like the gzip path, the content is decoded straight into the caller's final
//! buffer, once; before that, the size the streams' indexes record is compared with what the
//! IDX header declares, so a forged header is refused before anything is allocated for it.
//! Every stream's integrity check (CRC32, CRC64 or SHA-256) is verified by liblzma; concatenated
//! streams and stream padding are read as `xz` and Python's `lzma` read them.

use liblzma::stream::{Action, Status, Stream, CONCATENATED};

use crate::gzip::Fit;
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

/// The total uncompressed size recorded in the indexes of the streams that make up `data` (the
/// whole file), read backwards from the last stream's footer; nothing is decoded. The block
/// data itself is checked later, by decoding.
pub fn uncompressed_size(data: &[u8]) -> Result<u64, Error> {
    let mut end = data.len();
    let mut total: u64 = 0;
    let mut streams = 0;
    while end > 0 {
        // Stream padding: zero bytes, four at a time, between and after streams.
        while end >= 4 && data[end - 4..end] == [0; 4] {
            end -= 4;
        }
        if end == 0 && streams > 0 {
            break;
        }
        if end < FOOTER + MAGIC.len() || !end.is_multiple_of(4) {
            return Err(corrupt("the file does not end with a whole stream footer"));
        }
        let (index, size) = stream_index(&data[..end])?;
        total = total.checked_add(index).ok_or_else(|| corrupt("uncompressed size overflows"))?;
        end = end.checked_sub(size).ok_or_else(|| corrupt("a stream claims to be larger than the file"))?;
        if !is_xz(&data[end..]) {
            return Err(corrupt("a stream's index does not lead back to a stream header"));
        }
        streams += 1;
    }
    Ok(total)
}

/// The last stream of `data` (which ends at its footer): its uncompressed size, and its total
/// size in the file.
fn stream_index(data: &[u8]) -> Result<(u64, usize), Error> {
    use liblzma_sys as sys;
    let footer = &data[data.len() - FOOTER..];
    // SAFETY: lzma_stream_flags is plain data (integers and reserved fields): all-zero is a
    // valid value for the decoder to overwrite; it reads exactly FOOTER bytes from `footer`.
    let mut flags: sys::lzma_stream_flags = unsafe { std::mem::zeroed() };
    if unsafe { sys::lzma_stream_footer_decode(&mut flags, footer.as_ptr()) } != sys::LZMA_OK {
        return Err(corrupt("bad stream footer"));
    }
    let index_len = usize::try_from(flags.backward_size).map_err(|_| corrupt("bad index size"))?;
    let index_start = (data.len() - FOOTER).checked_sub(index_len).ok_or_else(|| corrupt("bad index size"))?;
    let index = &data[index_start..data.len() - FOOTER];
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

/// The most memory a decoder may use for `data`: what `xz -9` needs (65 MiB, mostly its
/// dictionary) with room to spare, plus the file's own size. A stream header asking for a larger
/// dictionary (up to 1.5 GiB) is refused before liblzma allocates it.
fn memlimit(data: &[u8]) -> u64 {
    (128 << 20) + data.len() as u64
}

fn decoder(data: &[u8]) -> Result<Stream, Error> {
    Stream::new_stream_decoder(memlimit(data), CONCATENATED).map_err(|e| Error::Memory(format!("xz decoder: {e}")))
}

fn corrupt_or_limit(data: &[u8]) -> impl Fn(liblzma::stream::Error) -> Error + '_ {
    move |e| match e {
        liblzma::stream::Error::MemLimit => Error::Xz(format!(
            "the xz stream asks for more decoder memory than the {} MiB allowed for a file of {} bytes",
            memlimit(data) >> 20,
            data.len()
        )),
        e => corrupt(e),
    }
}

/// Decodes `data` into `out`, then continues into `spill` (for a caller that wants to know
/// whether there is more); returns how much of `out` and `spill` was filled and whether the
/// end of the last stream was reached.
fn decode(data: &[u8], out: &mut [u8], spill: &mut [u8]) -> Result<(usize, usize, bool), Error> {
    let mut stream = decoder(data)?;
    let mut filled = 0;
    loop {
        let (before_in, before_out) = (stream.total_in(), stream.total_out());
        let input = &data[before_in as usize..];
        let status = if filled < out.len() {
            stream.process(input, &mut out[filled..], Action::Finish)
        } else {
            let spilled = (stream.total_out() as usize) - out.len();
            if spilled == spill.len() {
                return Ok((out.len(), spilled, false));
            }
            stream.process(input, &mut spill[spilled..], Action::Finish)
        }
        .map_err(corrupt_or_limit(data))?;
        let produced = (stream.total_out() - before_out) as usize;
        if filled < out.len() {
            filled += produced;
        }
        match status {
            Status::StreamEnd => {
                let total = stream.total_out() as usize;
                return Ok((filled, total - filled, true));
            }
            _ if stream.total_in() == before_in && produced == 0 => {
                return Err(corrupt("the data ends before the last stream does"))
            }
            _ => {}
        }
    }
}

/// A decoder for a stream read as it comes (its size unknown): the memory limit of an empty file.
pub fn streaming_decoder() -> Result<Stream, Error> {
    decoder(&[])
}

/// The first `n` bytes of the content (fewer if the content is shorter): the IDX header.
pub fn read_prefix(data: &[u8], n: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; n];
    let mut stream = decoder(data)?;
    let mut filled = 0;
    while filled < n {
        let before_in = stream.total_in();
        let status = stream
            .process(&data[before_in as usize..], &mut out[filled..], Action::Finish)
            .map_err(corrupt_or_limit(data))?;
        let produced = stream.total_out() as usize - filled;
        filled += produced;
        if status == Status::StreamEnd {
            break;
        }
        if stream.total_in() == before_in && produced == 0 {
            return Err(corrupt("the data ends before the last stream does"));
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// Decodes all of `data` into `out`, every stream's check verified: `Fit::Exact` when the
/// content fills `out` exactly, else how it differs.
pub fn decode_into(data: &[u8], out: &mut [u8]) -> Result<Fit, Error> {
    let mut spill = [0u8; 1];
    let (filled, spilled, _) = decode(data, out, &mut spill)?;
    Ok(if filled < out.len() {
        Fit::Short(filled)
    } else if spilled > 0 {
        Fit::Long
    } else {
        Fit::Exact
    })
}

/// Checks the whole of `data` (every block and check) without keeping the content: which error
/// a corrupt stream gives, for callers that found something else wrong first.
pub fn check_stream(data: &[u8]) -> Result<(), Error> {
    let mut stream = decoder(data)?;
    let mut sink = vec![0u8; 1 << 16];
    loop {
        let (before_in, before_out) = (stream.total_in(), stream.total_out());
        let status =
            stream.process(&data[before_in as usize..], &mut sink, Action::Finish).map_err(corrupt_or_limit(data))?;
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
    let mut out = Vec::with_capacity(content.len() / 4 + 1024);
    loop {
        let before = stream.total_in() as usize;
        if out.capacity() == out.len() {
            out.reserve(out.len().max(1 << 16));
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
        assert_eq!(uncompressed_size(&packed).unwrap(), content.len() as u64);
        let mut out = vec![0u8; content.len()];
        assert!(matches!(decode_into(&packed, &mut out).unwrap(), Fit::Exact));
        assert_eq!(out, content);
        assert_eq!(read_prefix(&packed, 10).unwrap(), content[..10]);
        // Two concatenated streams with padding between: one content, as xz reads it.
        let mut two = packed.clone();
        two.extend_from_slice(&[0; 8]);
        two.extend_from_slice(&compress(b"tail", 0).unwrap());
        assert_eq!(uncompressed_size(&two).unwrap(), content.len() as u64 + 4);
        let mut out = vec![0u8; content.len() + 4];
        assert!(matches!(decode_into(&two, &mut out).unwrap(), Fit::Exact));
        assert_eq!(&out[content.len()..], b"tail");
        let mut short = vec![0u8; content.len() - 1];
        assert!(matches!(decode_into(&packed, &mut short).unwrap(), Fit::Long));
    }

    #[test]
    fn corruption_is_an_xz_error_never_a_panic() {
        let packed = compress(&[7u8; 5000], 1).unwrap();
        for cut in [1, 6, 12, packed.len() / 2, packed.len() - 1] {
            let r = decode_into(&packed[..cut], &mut [0u8; 5000]);
            assert!(matches!(r, Err(Error::Xz(_))), "cut at {cut}: {r:?}");
            assert!(matches!(uncompressed_size(&packed[..cut]), Err(Error::Xz(_))));
        }
        for at in [packed.len() / 2, packed.len() - 9] {
            let mut bad = packed.clone();
            bad[at] ^= 0x55;
            assert!(matches!(decode_into(&bad, &mut [0u8; 5000]), Err(Error::Xz(_))), "flip at {at}");
        }
    }
}

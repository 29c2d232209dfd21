//! gzip (RFC 1952): member headers, inflation into a caller's buffer, CRC32/ISIZE checks.
//!
//! A gzip file is one or more members, each `header | deflate stream | CRC32 | ISIZE`, and (as
//! Python's gzip module and GNU gzip accept) zero bytes of padding after a member. libdeflate
//! decodes one deflate stream at a time into one contiguous buffer, so we walk the members here
//! and check every trailer ourselves.

use std::os::raw::c_void;

use flate2::{Decompress, FlushDecompress, Status};
use libdeflate_sys as sys;

use crate::idx::Fit;
use crate::Error;

pub const MAGIC: [u8; 2] = [0x1f, 0x8b];

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
const RESERVED: u8 = 0xE0;

/// deflate cannot expand its input by more than 1032:1 (258 bytes from a 1-bit length code and a
/// 1-bit distance code), so a header claiming more than this was never produced by a compressor.
pub const MAX_RATIO: usize = 1032;

pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Gzip(msg.into())
}

/// Parses the member header at `data[0..]`; returns its length.
pub fn member_header_len(data: &[u8]) -> Result<usize, Error> {
    let truncated = || bad("truncated gzip member header");
    let head = &data[..data.len().min(2)];
    if !MAGIC.starts_with(head) {
        return Err(bad(format!("not a gzip member: expected magic bytes 1f 8b, found {head:02x?}")));
    }
    if data.len() < 10 {
        return Err(truncated());
    }
    if data[2] != 8 {
        return Err(bad(format!("unknown gzip compression method {}: expected 8 (deflate)", data[2])));
    }
    let flags = data[3];
    if flags & RESERVED != 0 {
        return Err(bad(format!("gzip header has reserved flag bits set (flags 0x{flags:02x})")));
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = data.get(pos..pos + 2).ok_or_else(truncated)?;
        pos += 2 + u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
        if pos > data.len() {
            return Err(truncated());
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = data[pos..].iter().position(|&b| b == 0).ok_or_else(truncated)?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = data.get(pos..pos + 2).ok_or_else(truncated)?;
        let stored = u16::from_le_bytes([stored[0], stored[1]]);
        let actual = (libdeflater::crc32(&data[..pos]) & 0xffff) as u16;
        if stored != actual {
            return Err(bad(format!("gzip header CRC16 mismatch: header says {stored:04x}, computed {actual:04x}")));
        }
        pos += 2;
    }
    Ok(pos)
}

/// Skips the zero padding after a member; returns the offset of the next member, or None at the end.
fn next_member(data: &[u8], pos: usize) -> Option<usize> {
    data[pos..].iter().position(|&b| b != 0).map(|skip| pos + skip)
}

/// Judges a member's 8-byte trailer (CRC32, then ISIZE, little-endian) against the CRC32 and the
/// length of what the member gave: the one wording of both checks.
fn judge_trailer(trailer: &[u8], crc: u32, len: u32) -> Result<(), String> {
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if stored != crc {
        return Err(format!("CRC32 check failed: trailer says {stored:08x}, data gives {crc:08x}"));
    }
    if isize != len {
        return Err(format!("ISIZE check failed: trailer says {isize} bytes (mod 2^32), member gave {len}"));
    }
    Ok(())
}

const NO_TRAILER: &str = "truncated gzip member: CRC32/ISIZE trailer missing";

fn check_trailer(data: &[u8], pos: usize, produced: &[u8]) -> Result<(), Error> {
    let t = data.get(pos..pos + 8).ok_or_else(|| bad(NO_TRAILER))?;
    judge_trailer(t, libdeflater::crc32(produced), produced.len() as u32).map_err(bad)
}

/// Decodes just the first `n` bytes of the content (streaming, a few KiB of work at most), so the
/// IDX header is known before the output is allocated. Returns fewer bytes if the content is shorter.
pub fn read_prefix(data: &[u8], n: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; n];
    let mut filled = 0;
    let mut pos = 0;
    let mut z = Decompress::new(false); // one decoder, reset per member (files of many members)
    while filled < n {
        let Some(start) = next_member(data, pos) else { break };
        pos = start + member_header_len(&data[start..])?;
        z.reset(false);
        loop {
            let before_in = z.total_in();
            let before_out = z.total_out();
            let status = z
                .decompress(&data[pos..], &mut out[filled..], FlushDecompress::None)
                .map_err(|e| bad(format!("corrupt deflate data: {e}")))?;
            pos += (z.total_in() - before_in) as usize;
            filled += (z.total_out() - before_out) as usize;
            match status {
                Status::StreamEnd => break,
                _ if filled == n => return Ok(out),
                _ if z.total_in() == before_in && z.total_out() == before_out => {
                    return Err(bad("truncated gzip member: deflate stream ends early"))
                }
                _ => {}
            }
        }
        // A whole member ended inside the prefix: the trailer is checked by `inflate_into` later.
        pos += 8;
        if pos > data.len() {
            return Err(bad(NO_TRAILER));
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// Checks every member of `data` as the reference does (header, deflate stream, CRC32, ISIZE,
/// zero padding between members), inflating in 64 KiB steps into a scratch buffer: for telling
/// a corrupt stream (a gzip error) from well-formed gzip of malformed IDX, as the reference,
/// which inflates everything before it looks at the IDX header, tells them.
pub fn check_stream(data: &[u8]) -> Result<(), Error> {
    let mut scratch = vec![0u8; 64 << 10];
    let mut pos = 0;
    let mut members = 0;
    let mut z = Decompress::new(false);
    while let Some(start) = next_member(data, pos) {
        pos = start + member_header_len(&data[start..])?;
        z.reset(false);
        let mut crc = flate2::Crc::new();
        loop {
            let (before_in, before_out) = (z.total_in(), z.total_out());
            let status = z
                .decompress(&data[pos..], &mut scratch, FlushDecompress::None)
                .map_err(|e| bad(format!("corrupt deflate data: {e}")))?;
            pos += (z.total_in() - before_in) as usize;
            crc.update(&scratch[..(z.total_out() - before_out) as usize]);
            match status {
                Status::StreamEnd => break,
                _ if z.total_in() == before_in && z.total_out() == before_out => {
                    return Err(bad("corrupt or truncated deflate data"))
                }
                _ => {}
            }
        }
        let t = data.get(pos..pos + 8).ok_or_else(|| bad(NO_TRAILER))?;
        judge_trailer(t, crc.sum(), crc.amount()).map_err(bad)?;
        pos += 8;
        members += 1;
    }
    if members == 0 {
        return Err(bad("empty input: no gzip member"));
    }
    Ok(())
}

/// The content of a gzip stream as `Read`, member after member, skipping the zero padding after a
/// member as `inflate_into` does: for hashing the content of a file without holding it. Each
/// member's header is parsed here by the rules of `member_header_len` (any field length, the
/// header CRC16 checked), its deflate stream inflated by flate2, and its CRC32 and ISIZE checked.
pub struct Members<R: std::io::BufRead> {
    state: State<R>,
}

enum State<R: std::io::BufRead> {
    /// Between members (or at the start): the next member's header is read on the next `read`.
    Between(R),
    /// Inside a member's deflate stream, with the CRC of what it gave so far.
    Inflating(flate2::bufread::DeflateDecoder<R>, flate2::Crc),
    Done,
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads exactly `n` bytes (or fewer at the end of the input).
fn take_bytes(r: &mut impl std::io::BufRead, n: usize, into: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    r.take(n as u64).read_to_end(into)
}

/// Reads through the next NUL byte (included), however far it is.
fn take_through_nul(r: &mut impl std::io::BufRead, into: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let got = r.read_until(0, into)?;
        if got == 0 || into.last() == Some(&0) {
            return if into.last() == Some(&0) { Ok(()) } else { Err(invalid("truncated gzip member header")) };
        }
    }
}

/// Reads one member header from `r` (the magic bytes already known to be next), checking it as
/// `member_header_len` does.
fn read_member_header(r: &mut impl std::io::BufRead) -> std::io::Result<()> {
    let mut header = Vec::with_capacity(10);
    if take_bytes(r, 10, &mut header)? < 10 {
        return Err(invalid("truncated gzip member header"));
    }
    let flags = header[3];
    if header[..2] != MAGIC || header[2] != 8 || flags & RESERVED != 0 {
        return member_header_len(&header).map(drop).map_err(|e| invalid(e.to_string()));
    }
    if flags & FEXTRA != 0 {
        if take_bytes(r, 2, &mut header)? < 2 {
            return Err(invalid("truncated gzip member header"));
        }
        let xlen = u16::from_le_bytes([header[10], header[11]]) as usize;
        if take_bytes(r, xlen, &mut header)? < xlen {
            return Err(invalid("truncated gzip member header"));
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            take_through_nul(r, &mut header)?;
        }
    }
    if flags & FHCRC != 0 {
        let mut crc = Vec::with_capacity(2);
        if take_bytes(r, 2, &mut crc)? < 2 {
            return Err(invalid("truncated gzip member header"));
        }
        let (stored, actual) = (u16::from_le_bytes([crc[0], crc[1]]), (libdeflater::crc32(&header) & 0xffff) as u16);
        if stored != actual {
            return Err(invalid(format!(
                "gzip header CRC16 mismatch: header says {stored:04x}, computed {actual:04x}"
            )));
        }
    }
    Ok(())
}

impl<R: std::io::BufRead> Members<R> {
    pub fn new(reader: R) -> Members<R> {
        Members { state: State::Between(reader) }
    }
}

impl<R: std::io::BufRead> std::io::Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Between(mut r) => {
                    // Zero padding, then the next member or the end.
                    let more = loop {
                        let available = r.fill_buf()?;
                        if available.is_empty() {
                            break false;
                        }
                        let zeros = available.iter().take_while(|&&b| b == 0).count();
                        let more = zeros < available.len();
                        r.consume(zeros);
                        if more {
                            break true;
                        }
                    };
                    if !more {
                        return Ok(0);
                    }
                    read_member_header(&mut r)?;
                    self.state = State::Inflating(flate2::bufread::DeflateDecoder::new(r), flate2::Crc::new());
                }
                State::Inflating(mut d, mut crc) => {
                    let n = d.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        crc.update(&buf[..n]);
                        self.state = State::Inflating(d, crc);
                        return Ok(n);
                    }
                    let mut r = d.into_inner();
                    let mut trailer = Vec::with_capacity(8);
                    if take_bytes(&mut r, 8, &mut trailer)? < 8 {
                        return Err(invalid(NO_TRAILER));
                    }
                    judge_trailer(&trailer, crc.sum(), crc.amount()).map_err(invalid)?;
                    self.state = State::Between(r);
                }
            }
        }
    }
}

/// One libdeflate decompressor; freed on drop.
struct Inflater(*mut sys::libdeflate_decompressor);

impl Inflater {
    fn new() -> Inflater {
        // SAFETY: plain allocation call; a null result is checked before use.
        let d = unsafe { sys::libdeflate_alloc_decompressor() };
        assert!(!d.is_null(), "libdeflate could not allocate a decompressor");
        Inflater(d)
    }

    /// Inflates one deflate stream from the start of `input` into `out`.
    /// Returns (input bytes consumed, output bytes produced), or None if `out` is too small.
    fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<Option<(usize, usize)>, Error> {
        let (mut used, mut produced) = (0usize, 0usize);
        // SAFETY: the pointers and lengths come from live slices; libdeflate reads at most
        // `input.len()` bytes, writes at most `out.len()` bytes, and writes the two counts.
        let r = unsafe {
            sys::libdeflate_deflate_decompress_ex(
                self.0,
                input.as_ptr() as *const c_void,
                input.len(),
                out.as_mut_ptr() as *mut c_void,
                out.len(),
                &mut used,
                &mut produced,
            )
        };
        match r {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS => Ok(Some((used, produced))),
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Ok(None),
            _ => Err(bad("corrupt or truncated deflate data")),
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor and freed once.
        unsafe { sys::libdeflate_free_decompressor(self.0) }
    }
}

/// Inflates every member of `data` into `out`, checking each trailer. The buffer is filled in
/// place: nothing is decoded anywhere else first.
pub fn inflate_into(data: &[u8], out: &mut [u8]) -> Result<Fit, Error> {
    let mut inflater = Inflater::new();
    let mut filled = 0;
    let mut pos = 0;
    while let Some(start) = next_member(data, pos) {
        pos = start + member_header_len(&data[start..])?;
        let Some((used, produced)) = inflater.inflate(&data[pos..], &mut out[filled..])? else {
            return Ok(Fit::Long);
        };
        pos += used;
        check_trailer(data, pos, &out[filled..filled + produced])?;
        pos += 8;
        filled += produced;
    }
    if pos == 0 {
        return Err(bad("empty input: no gzip member"));
    }
    Ok(if filled == out.len() { Fit::Exact } else { Fit::Short(filled) })
}

/// Compresses `data` as one gzip member at `level` (0-12, libdeflate's scale; 0 stores).
pub fn compress(data: &[u8], level: i32) -> Result<Vec<u8>, Error> {
    let lvl = libdeflater::CompressionLvl::new(level).unwrap_or_default();
    let mut c = libdeflater::Compressor::new(lvl);
    let bound = c.gzip_compress_bound(data.len());
    let mut out = crate::filled(bound, 0u8, || format!("the gzip of {} bytes", data.len()))?;
    let n = c.gzip_compress(data, &mut out).expect("gzip_compress_bound is always enough");
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn inflate(data: &[u8], n: usize) -> Result<(Fit, Vec<u8>), Error> {
        let mut out = vec![0u8; n];
        let fit = inflate_into(data, &mut out)?;
        Ok((fit, out))
    }

    #[test]
    fn single_and_multi_member_with_padding() {
        let mut two = gz(b"hello ");
        two.extend(gz(b""));
        two.extend([0, 0, 0]);
        two.extend(gz(b"world"));
        two.extend([0, 0]);
        assert_eq!(inflate(&two, 11).unwrap(), (Fit::Exact, b"hello world".to_vec()));
        assert_eq!(inflate(&two, 12).unwrap().0, Fit::Short(11));
        assert_eq!(inflate(&two, 10).unwrap().0, Fit::Long);
        assert_eq!(read_prefix(&two, 8).unwrap(), b"hello wo");
        assert_eq!(read_prefix(&two, 50).unwrap(), b"hello world");
    }

    #[test]
    fn members_reads_what_inflate_into_reads() {
        use std::io::Read;
        let read_all = |data: &[u8]| {
            let mut out = Vec::new();
            Members::new(data).read_to_end(&mut out).map(|_| out)
        };
        let mut two = gz(b"hello ");
        two.extend(gz(b""));
        two.extend([0, 0, 0]);
        two.extend(gz(b"world"));
        two.extend([0, 0]);
        assert_eq!(read_all(&two).unwrap(), b"hello world");
        assert_eq!(read_all(&gz(b"abc")).unwrap(), b"abc");
        // Any header field length (flate2's own gzip reader refuses fields over 64 KiB).
        let mut long = vec![0x1f, 0x8b, 8, FCOMMENT, 0, 0, 0, 0, 0, 255];
        long.extend(vec![b'c'; 3 << 20]);
        long.push(0);
        long.extend(&gz(b"abc")[10..]);
        assert_eq!(read_all(&long).unwrap(), b"abc");
        assert_eq!(inflate(&long, 3).unwrap().1, b"abc");
        // What the engine rejects, this rejects: garbage after padding, a bad CRC32, a cut trailer.
        let mut garbage = gz(b"abc");
        garbage.extend([0, 0, 7]);
        assert!(read_all(&garbage).is_err() && check_stream(&garbage).is_err());
        let mut bad_crc = gz(b"abc");
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        assert!(read_all(&bad_crc).is_err() && check_stream(&bad_crc).is_err());
        let cut = &gz(b"abc")[..gz(b"abc").len() - 3];
        assert!(read_all(cut).is_err() && check_stream(cut).is_err());
    }

    #[test]
    fn all_header_fields_and_header_crc() {
        let body = gz(b"abc");
        let mut h = vec![0x1f, 0x8b, 8, FEXTRA | FNAME | FCOMMENT | FHCRC, 0, 0, 0, 0, 0, 255];
        h.extend([3, 0, b'x', b'y', b'z']);
        h.extend(b"name\0comment\0");
        let crc = (libdeflater::crc32(&h) & 0xffff) as u16;
        h.extend(crc.to_le_bytes());
        let mut member = h.clone();
        member.extend(&body[10..]);
        assert_eq!(inflate(&member, 3).unwrap().1, b"abc");
        let n = h.len();
        member[n - 1] ^= 1;
        assert!(inflate(&member, 3).unwrap_err().to_string().contains("CRC16"));
    }

    #[test]
    fn trailer_and_structure_errors() {
        let good = gz(b"some bytes here");
        let mut crc = good.clone();
        let n = crc.len();
        crc[n - 8] ^= 1;
        assert!(inflate(&crc, 15).unwrap_err().to_string().contains("CRC32"));
        let mut size = good.clone();
        size[n - 1] ^= 1;
        assert!(inflate(&size, 15).unwrap_err().to_string().contains("ISIZE"));
        assert!(inflate(&good[..n - 3], 15).unwrap_err().to_string().contains("trailer"));
        let mut garbage = good.clone();
        garbage.push(7);
        assert!(inflate(&garbage, 15).unwrap_err().to_string().contains("not a gzip member"));
        let mut method = good.clone();
        method[2] = 7;
        assert!(inflate(&method, 15).unwrap_err().to_string().contains("method"));
        assert!(inflate(&good[..5], 15).unwrap_err().to_string().contains("header"));
    }

    #[test]
    fn compress_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for level in [0, 1, 6, 9, 12] {
            let z = compress(&data, level).unwrap();
            assert_eq!(inflate(&z, data.len()).unwrap(), (Fit::Exact, data.clone()));
        }
    }
}

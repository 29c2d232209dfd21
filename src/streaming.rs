//! Decoding a compressed source as it is read: what the reader does with a file too large to hold
//! whole (over `reader::WHOLE` bytes) and with a pipe, a FIFO or a device, whose length is not
//! known. The stored bytes pass once through `Counted` (hashed, counted, and cut off at a bound
//! the IDX header justifies), the content comes out of `Decoder` in whatever pieces the caller
//! asks for: the header first, to be judged, then the payload straight into the caller's buffer.
//! Working memory is a read buffer and the decoder's own state (for xz its dictionary, bounded
//! by the memory limit), whatever the file's size.

use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex};

use liblzma::stream::{Action, Status, Stream, CONCATENATED};

use crate::codec::Codec;
use crate::digest::{Algo, Hasher};
use crate::gzip;
use crate::xz;
use crate::Error;

/// Bytes read from the file at a time.
const READ: usize = 1 << 20;

/// What `Counted` has seen of the stored bytes: their digests so far, how many, and the most
/// there may be (`u64::MAX` until the IDX header says).
pub struct Tally {
    pub hasher: Hasher,
    pub read: u64,
    pub limit: u64,
}

/// The stored bytes as they are read: hashed and counted, and refused past `Tally::limit`.
pub struct Counted<R> {
    inner: R,
    tally: Arc<Mutex<Tally>>,
}

/// The error `Counted` reads with when the stored bytes pass their bound.
#[derive(Debug)]
struct OverBound(u64);

impl std::fmt::Display for OverBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than the {} stored bytes any compression of the declared content needs", self.0)
    }
}

impl std::error::Error for OverBound {}

impl<R: Read> Counted<R> {
    pub fn new(inner: R, algos: &[Algo]) -> (Counted<R>, Arc<Mutex<Tally>>) {
        let tally = Arc::new(Mutex::new(Tally { hasher: Hasher::new(algos), read: 0, limit: u64::MAX }));
        (Counted { inner, tally: Arc::clone(&tally) }, tally)
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.tally.lock().expect("no reader panics holding the tally");
        t.read += n as u64;
        if t.read > t.limit {
            return Err(io::Error::other(OverBound(t.limit)));
        }
        t.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The content of a gzip or xz stream read from `R`, as `Read`.
pub enum Decoder<R: Read> {
    Gzip(gzip::Members<BufReader<R>>),
    Xz(XzReader<R>),
}

impl<R: Read> Decoder<R> {
    /// A decoder of `codec` (gzip or xz) over `inner`; `xz_limit` is the xz decoder's memory limit.
    pub fn new(codec: Codec, inner: R, xz_limit: u64) -> Result<Decoder<R>, Error> {
        Ok(match codec {
            Codec::Gzip => Decoder::Gzip(gzip::Members::new(BufReader::with_capacity(READ, inner))),
            Codec::Xz => Decoder::Xz(XzReader::new(inner, xz_limit)?),
            Codec::Raw => unreachable!("raw sources are read as they are"),
        })
    }

    /// Raises the xz decoder's memory limit once the content's size justifies more.
    pub fn set_xz_limit(&mut self, limit: u64) {
        if let Decoder::Xz(x) = self {
            let _ = x.stream.set_memlimit(limit.max(x.stream.memlimit()));
            x.limit = x.stream.memlimit();
        }
    }

    /// Fills `out` with content, or fewer bytes at the end of it; the engine's error otherwise.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let mut got = 0;
        while got < out.len() {
            match self.read(&mut out[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(got)
    }

    /// Reads the rest of the content, keeping none of it: its length (at most `most` + 1: more
    /// than `most` is all a caller needs to know).
    pub fn rest(&mut self, most: u64) -> Result<u64, Error> {
        let mut sink = [0u8; 1 << 12];
        let mut total = 0u64;
        while total <= most {
            let want = sink.len().min((most + 1 - total) as usize);
            let n = self.fill(&mut sink[..want])?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok(total)
    }

    /// The engine's error for a failed read: corrupt data is the codec's error, a stored byte
    /// past the bound the header justifies is too, the OS's errors stay `Error::Io`.
    pub fn error(&self, e: io::Error) -> Error {
        let codec_error = |m: String| match self {
            Decoder::Gzip(_) => Error::Gzip(m),
            Decoder::Xz(_) => Error::Xz(m),
        };
        if let Some(bound) = e.get_ref().and_then(|inner| inner.downcast_ref::<OverBound>()) {
            return codec_error(format!("trailing data after the IDX content: {bound}"));
        }
        if let (Decoder::Xz(x), Some(lz)) =
            (self, e.get_ref().and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>()))
        {
            return xz::error(x.limit)(*lz);
        }
        match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => match self {
                Decoder::Gzip(_) => Error::Gzip(format!("corrupt or truncated compressed data: {e}")),
                Decoder::Xz(_) => Error::Xz(format!("corrupt or truncated xz data: {e}")),
            },
            _ => Error::Io(e),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(g) => g.read(buf),
            Decoder::Xz(x) => x.read(buf),
        }
    }
}

/// xz streams (concatenated, with stream padding, as `xz` reads them) as `Read`, decoded by
/// liblzma from `READ`-byte pieces of the input.
pub struct XzReader<R> {
    inner: R,
    stream: Stream,
    limit: u64,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> XzReader<R> {
    fn new(inner: R, limit: u64) -> Result<XzReader<R>, Error> {
        let stream =
            Stream::new_stream_decoder(limit, CONCATENATED).map_err(|e| Error::Memory(format!("xz decoder: {e}")))?;
        Ok(XzReader { inner, stream, limit, buf: vec![0; READ], pos: 0, end: 0, eof: false, done: false })
    }
}

impl<R: Read> Read for XzReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if self.pos == self.end && !self.eof {
                self.end = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                self.eof = self.end == 0;
            }
            let action = if self.eof { Action::Finish } else { Action::Run };
            let (before_in, before_out) = (self.stream.total_in(), self.stream.total_out());
            let status = self
                .stream
                .process(&self.buf[self.pos..self.end], out, action)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = (self.stream.total_in() - before_in) as usize;
            let produced = (self.stream.total_out() - before_out) as usize;
            self.pos += used;
            if status == Status::StreamEnd {
                self.done = true;
            }
            if produced > 0 || self.done {
                return Ok(produced);
            }
            if self.eof && used == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the data ends before the last stream does"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_and_xz_stream_in_pieces_as_they_decode_whole() {
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for (codec, packed) in
            [(Codec::Gzip, gzip::compress(&content, 6).unwrap()), (Codec::Xz, xz::compress(&content, 1).unwrap())]
        {
            let (counted, tally) = Counted::new(&packed[..], &[Algo::Md5]);
            let mut d = Decoder::new(codec, counted, 128 << 20).unwrap();
            let mut head = [0u8; 16];
            assert_eq!(d.fill(&mut head).unwrap(), 16);
            let mut rest = vec![0u8; content.len() - 16];
            assert_eq!(d.fill(&mut rest).unwrap(), rest.len());
            assert_eq!(d.rest(10).unwrap(), 0);
            assert_eq!([&head[..], &rest].concat(), content);
            let t = tally.lock().unwrap();
            assert_eq!(t.read, packed.len() as u64);
        }
    }

    #[test]
    fn stored_bytes_past_the_bound_and_corrupt_data_are_the_codecs_errors() {
        let packed = gzip::compress(&[7u8; 100_000], 1).unwrap();
        let (counted, tally) = Counted::new(&packed[..], &[]);
        tally.lock().unwrap().limit = 10;
        let mut d = Decoder::new(Codec::Gzip, counted, 0).unwrap();
        let e = d.fill(&mut [0u8; 100]).unwrap_err();
        assert!(matches!(&e, Error::Gzip(m) if m.contains("trailing data")), "{e:?}");
        let mut bad = xz::compress(&[7u8; 100_000], 1).unwrap();
        let at = bad.len() / 2;
        bad[at] ^= 0x55;
        let mut d = Decoder::new(Codec::Xz, &bad[..], 128 << 20).unwrap();
        assert!(matches!(d.fill(&mut vec![0u8; 100_000]), Err(Error::Xz(_))));
        let cut = xz::compress(&[7u8; 1000], 1).unwrap();
        let mut d = Decoder::new(Codec::Xz, &cut[..cut.len() - 5], 128 << 20).unwrap();
        assert!(matches!(d.fill(&mut vec![0u8; 1001]), Err(Error::Xz(_))));
    }
}

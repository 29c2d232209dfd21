//! The one read call: sources in, outcomes out.
//!
//! A `Request` names a source (a path or bytes), what to make of it (`Mode`: an IDX array, only
//! digests, or the stored bytes themselves), the digests it is expected to have and those only
//! to report, and limits. Its `Outcome` says what was read and how (the codec, the IDX header),
//! every digest computed over those very bytes, and a `Verdict` on each expected digest. With
//! `strict`, the first mismatch is the error instead (`Error::Checksum`).
//!
//! Reading is split in two so that a caller can allocate the output in between (the binding
//! lets numpy allocate every array, with the GIL, and fills it without): `open` reads what the
//! header needs and judges it, before anything is allocated for the payload; `finish` decodes
//! into the caller's buffer of `Opened::output_len` bytes, hashes and judges. `open_many` and
//! `finish_many` do the same for many sources at once, largest first, on every core, hashing
//! the stored bytes of each source on one core while another inflates it.
//!
//! A path is judged before it is read (`open_path`): it is opened without blocking (a FIFO with
//! no writer, a device), its first bytes tell the codec, and the IDX header is judged as soon
//! as it is out (read from an uncompressed file, decoded from a compressed one): bad magic, a
//! bad type code, sizes over `max_bytes` or over what the file's length can hold are refused
//! before the rest is read or anything is allocated for it. A compressed file of at most `WHOLE`
//! bytes is then read whole and inflated by libdeflate in one call (the fastest way, and what
//! bytes in memory get); a larger one, and any pipe, FIFO or device, is decoded as it is read,
//! straight into the output (`streaming`), so that the working memory stays under `WHOLE`
//! whatever the file's size.
//!
//! One judgement for every way in: a path and the same bytes give the same result. When several
//! things are wrong, the error is the reference's (`fmnist.reference`): a stored digest that
//! does not match, then a corrupt stream, then a content digest, then malformed IDX (`settle`,
//! which streams a regular file again to find out; a pipe cannot be read twice, and its first
//! error stands).

use std::borrow::Cow;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::codec::Codec;
use crate::digest::{Algo, Hasher};
pub use crate::digest::{Covers, Digest, DigestKind, Expected, Mismatch, Verdict};
use crate::element;
use crate::gzip;
use crate::idx::Fit;
use crate::idx::{self, Header};
use crate::streaming::{Counted, Decoder, Tally};
use crate::xz;
use crate::Error;

/// Where the bytes come from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// What to make of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Decode the IDX payload into the caller's buffer.
    Array,
    /// Only the digests: the stored bytes hashed as they are read, the content as it streams out
    /// of the decoder; nothing decoded is kept.
    Digests,
    /// The stored bytes themselves, returned with their digests (an archive to open next: what
    /// was hashed is what is parsed).
    Stored,
}

/// One source to read, and what is required of it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub source: Source<'a>,
    pub mode: Mode,
    pub expected: Vec<Expected>,
    /// Digests to compute and report without a check.
    pub report: Vec<DigestKind>,
    /// A mismatch is the error (else it is a verdict in the outcome).
    pub strict: bool,
    /// Refuse a payload larger than this before allocating it.
    pub max_bytes: Option<usize>,
    /// Refuse more dimensions than this (numpy's limit), before allocating.
    pub max_ndim: usize,
}

impl<'a> Request<'a> {
    pub fn new(source: Source<'a>, mode: Mode) -> Request<'a> {
        Request { source, mode, expected: Vec::new(), report: Vec::new(), strict: true, max_bytes: None, max_ndim: 64 }
    }

    /// Every kind to compute: the expected ones and the reported ones, each once.
    fn kinds(&self) -> Vec<DigestKind> {
        let mut kinds: Vec<DigestKind> = Vec::new();
        for k in self.expected.iter().map(|e| e.kind).chain(self.report.iter().copied()) {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds
    }

    /// The kinds computed over the stored bytes, and those over the content, for `codec` (an
    /// uncompressed source has one set of bytes: everything is computed over them).
    fn split_kinds(&self, codec: Codec) -> (Vec<DigestKind>, Vec<DigestKind>) {
        self.kinds().into_iter().partition(|k| k.covers.of(codec) == Covers::Stored)
    }
}

/// What reading a source gave.
#[derive(Debug)]
pub struct Outcome {
    pub codec: Codec,
    /// The IDX header (`Mode::Array` only).
    pub header: Option<Header>,
    /// Every digest asked for (expected or reported), in the order first asked.
    pub digests: Vec<Digest>,
    /// One per expected digest, in order.
    pub verdicts: Vec<Verdict>,
    /// The stored bytes (`Mode::Stored`), when the engine read them into memory of its own (a
    /// pipe); a regular file is read into the caller's buffer, and bytes given are the caller's.
    pub stored: Option<Vec<u8>>,
}

/// A source after `open`: its header judged, nothing allocated for its payload yet.
pub struct Opened<'a> {
    req: &'a Request<'a>,
    body: Body<'a>,
}

enum Body<'a> {
    /// An uncompressed file (regular, or a stream): its header read and judged, the payload
    /// still in the file.
    RawFile { file: File, prefix: Vec<u8>, header: Header },
    /// Bytes in memory (given, or a compressed file of at most `WHOLE` bytes read whole): the
    /// header judged when an array is wanted.
    Bytes { data: Cow<'a, [u8]>, codec: Codec, header: Option<Header> },
    /// A compressed file over `WHOLE` bytes, or a compressed stream: its header decoded (`head`)
    /// and judged, the rest decoded in `finish` straight into the caller's buffer as it is read;
    /// the stored bytes are hashed as they pass (`tally`).
    Streamed {
        decoder: Mutex<Option<Box<StreamedDecoder>>>,
        tally: Arc<Mutex<Tally>>,
        codec: Codec,
        head: Vec<u8>,
        header: Header,
    },
    /// `Mode::Stored` of a regular file: read (and hashed) in `finish` straight into the caller's
    /// buffer of the file's length.
    StoredFile { file: File, len: usize },
    /// `Mode::Digests`: everything happens as the bytes stream past, in `finish`.
    Stream,
}

/// A file's content as it is decoded: the first bytes already read (to tell the codec), then
/// the rest of the file.
type StreamedDecoder = Decoder<Counted<std::io::Chain<Cursor<Vec<u8>>, File>>>;

/// The largest compressed file read whole (libdeflate inflates one stream from memory, about
/// twice as fast as inflating as it is read); larger ones, and streams, are decoded as they are
/// read, with a working memory of about a megabyte.
pub const WHOLE: usize = 64 << 20;

impl Opened<'_> {
    pub fn header(&self) -> Option<&Header> {
        match &self.body {
            Body::RawFile { header, .. } | Body::Streamed { header, .. } => Some(header),
            Body::Bytes { header, .. } => header.as_ref(),
            Body::StoredFile { .. } | Body::Stream => None,
        }
    }

    /// Whether `finish` fills the caller's buffer with the stored bytes (`Mode::Stored` of a
    /// regular file), rather than with an array's payload.
    pub fn fills_stored(&self) -> bool {
        matches!(self.body, Body::StoredFile { .. })
    }

    /// The bytes of output buffer `finish` needs: the payload, or for gzip the whole content
    /// (libdeflate inflates one contiguous stream; the payload is then moved to the start of the
    /// buffer in the pass that swaps its byte order). 0 when no array is wanted.
    pub fn output_len(&self) -> usize {
        match &self.body {
            Body::Bytes { codec: Codec::Gzip, header: Some(h), .. } => h.total_len(),
            Body::StoredFile { len, .. } => *len,
            _ => self.header().map_or(0, |h| h.payload_len),
        }
    }

    fn codec(&self) -> Codec {
        match &self.body {
            Body::RawFile { .. } => Codec::Raw,
            Body::Bytes { codec, .. } | Body::Streamed { codec, .. } => *codec,
            Body::StoredFile { .. } | Body::Stream => Codec::Raw,
        }
    }

    fn stored_bytes(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Bytes { data, .. } => Some(data),
            _ => None,
        }
    }
}

/// Reads what the header needs and judges it (see the module's comment). A compressed file is
/// read whole (libdeflate is one-shot); an uncompressed one only up to the end of its header.
pub fn open<'a>(req: &'a Request<'a>) -> Result<Opened<'a>, Error> {
    open_body(req).map(|body| Opened { req, body }).map_err(|e| settle(req, None, e))
}

fn open_body<'a>(req: &'a Request<'a>) -> Result<Body<'a>, Error> {
    let data = match (req.source, req.mode) {
        (_, Mode::Digests) => return Ok(Body::Stream),
        (Source::Bytes(data), _) => Cow::Borrowed(data),
        (Source::Path(path), mode) => match open_path(req, path, mode)? {
            PathRead::Body(body) => return Ok(body),
            PathRead::Whole(data) => Cow::Owned(data),
        },
    };
    let codec = Codec::of(&data);
    let header = match req.mode {
        Mode::Array => Some(judge_header(codec, &data, req)?),
        _ => None,
    };
    Ok(Body::Bytes { data, codec, header })
}

/// What opening a path gave: a body to finish, or a compressed file read whole (judged as bytes).
enum PathRead<'a> {
    Body(Body<'a>),
    Whole(Vec<u8>),
}

/// Opens `path` without waiting: a FIFO with no writer, or a device, opens at once (reads then
/// wait for data as it comes; a FIFO with no writer reads as empty). The file, and its length
/// when it is a regular file (a pipe's, a FIFO's or a device's is not known).
pub fn open_file(path: &Path) -> Result<(File, Option<usize>), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on a descriptor we own; a failure is an OS error.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
    }
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(Error::Io(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    Ok((file, meta.is_file().then_some(meta.len() as usize)))
}

/// Opens a path and judges what its first bytes tell, before the rest is read (see the module's
/// comment).
fn open_path<'a>(req: &Request<'_>, path: &Path, mode: Mode) -> Result<PathRead<'a>, Error> {
    let (mut file, known) = open_file(path)?;
    if let (Mode::Stored, Some(len)) = (mode, known) {
        return Ok(PathRead::Body(Body::StoredFile { file, len }));
    }
    let mut prefix = Vec::with_capacity(xz::MAGIC.len());
    (&mut file).take(2).read_to_end(&mut prefix)?;
    if prefix == xz::MAGIC[..2] {
        (&mut file).take(xz::MAGIC.len() as u64 - 2).read_to_end(&mut prefix)?;
    }
    let codec = Codec::of(&prefix);
    match (codec, mode) {
        (Codec::Raw, Mode::Array) => {
            (&mut file).take(4u64.saturating_sub(prefix.len() as u64)).read_to_end(&mut prefix)?;
            let want = idx::needed(&prefix);
            (&mut file).take(want.saturating_sub(prefix.len()) as u64).read_to_end(&mut prefix)?;
            if prefix.is_empty() && known.is_none() {
                return Err(Error::Format(
                    "nothing to read: a pipe, FIFO or device that gave no bytes (a FIFO with no writer?)".into(),
                ));
            }
            let header = idx::parse(&prefix)?;
            check_limits(&header, req)?;
            if let Some(len) = known {
                idx::check_len(&header, len)?;
            }
            Ok(PathRead::Body(Body::RawFile { file, prefix, header }))
        }
        (Codec::Gzip | Codec::Xz, Mode::Array) if known.is_none_or(|len| len > WHOLE) => {
            open_streamed(req, file, prefix, known, codec).map(PathRead::Body)
        }
        _ => {
            let mut data = Vec::new();
            let reserve = known.unwrap_or(0).max(prefix.len());
            data.try_reserve_exact(reserve)
                .map_err(|_| Error::Memory(format!("cannot allocate {reserve} bytes to read the file")))?;
            data.extend_from_slice(&prefix);
            file.read_to_end(&mut data)?;
            Ok(PathRead::Whole(data))
        }
    }
}

/// A compressed file over `WHOLE` bytes, or a compressed stream, whose first bytes are `prefix`:
/// decoded until its IDX header is out, and the header judged as `judge_header` judges bytes
/// (its limits; for a regular file, what its length can hold), before the rest is read. A
/// stream's stored bytes are then bounded by what the header justifies.
fn open_streamed<'a>(
    req: &Request<'_>,
    mut file: File,
    prefix: Vec<u8>,
    known: Option<usize>,
    codec: Codec,
) -> Result<Body<'a>, Error> {
    let recorded = match (codec, known) {
        (Codec::Xz, Some(len)) => {
            let claimed = xz::uncompressed_size(xz::FileAt::new(&file, len))?;
            xz::check_claim(claimed, len)?;
            file.seek(SeekFrom::Start(prefix.len() as u64))?;
            Some(claimed)
        }
        _ => None,
    };
    let algos: Vec<Algo> = req.split_kinds(codec).0.iter().map(|k| k.algo).collect();
    let (counted, tally) = Counted::new(Cursor::new(prefix).chain(file), &algos);
    let mut decoder = Decoder::new(codec, counted, xz::memlimit(recorded.unwrap_or(0)))?;
    let mut head = vec![0u8; 4];
    let n = decoder.fill(&mut head)?;
    head.truncate(n);
    if n == 4 {
        head.resize(idx::needed(&head), 0);
        let more = decoder.fill(&mut head[4..])?;
        head.truncate(4 + more);
    }
    let header = idx::parse(&head)?;
    check_limits(&header, req)?;
    match (codec, known, recorded) {
        (Codec::Gzip, Some(len), _) => {
            check_gzip_len(&header, len)?;
            check_gzip_trailing(&header, len)?;
        }
        (Codec::Xz, Some(_), Some(recorded)) => check_xz_recorded(&header, recorded)?,
        _ => {
            tally.lock().expect("not poisoned").limit = gzip_most(&header) as u64;
            decoder.set_xz_limit(xz::memlimit(header.total_len() as u64));
        }
    }
    Ok(Body::Streamed { decoder: Mutex::new(Some(Box::new(decoder))), tally, codec, head, header })
}

/// The content length the xz indexes record must be what the IDX header declares.
fn check_xz_recorded(header: &Header, recorded: u64) -> Result<(), Error> {
    if recorded != header.total_len() as u64 {
        return Err(Error::Format(format!(
            "IDX length mismatch: header declares {header} = {} bytes in all; the xz streams hold {recorded}",
            header.total_len()
        )));
    }
    Ok(())
}

/// The most stored bytes a gzip (or xz) of `header`'s content can need: see `check_gzip_trailing`.
fn gzip_most(header: &Header) -> usize {
    let total = header.total_len();
    total.saturating_add(total / 8).saturating_add(64 << 20)
}

/// The most stored bytes a gzip of `header`'s content can need: 1/8 more than the content (deflate
/// stores incompressible data with 5 bytes per 64 KiB) and 64 MiB of member headers, header
/// fields, empty members and zero padding. A longer file is refused (a sparse file of zeros
/// after a small member would otherwise be read to its end).
fn check_gzip_trailing(header: &Header, len: usize) -> Result<(), Error> {
    let (total, most) = (header.total_len(), gzip_most(header));
    if len > most {
        return Err(Error::Gzip(format!(
            "the file has {len} bytes, more than any gzip of the {total} bytes of content its IDX header \
             declares ({header}) needs (at most {most}): trailing data after the IDX content"
        )));
    }
    Ok(())
}

/// The header of an uncompressed source of `len` bytes starting with `prefix`, checked.
fn raw_header(prefix: &[u8], len: usize, req: &Request<'_>) -> Result<Header, Error> {
    let header = idx::parse(prefix)?;
    check_limits(&header, req)?;
    idx::check_len(&header, len)?;
    Ok(header)
}

/// The IDX header of `data` (whole), checked against the request and against what the stored
/// bytes can hold, before anything is allocated for the payload.
fn judge_header(codec: Codec, data: &[u8], req: &Request<'_>) -> Result<Header, Error> {
    match codec {
        Codec::Raw => raw_header(data, data.len(), req),
        Codec::Gzip => {
            let header = idx::parse(&gzip::read_prefix(data, idx::header_len(255))?)?;
            check_limits(&header, req)?;
            check_gzip_len(&header, data.len())?;
            check_gzip_trailing(&header, data.len())?;
            Ok(header)
        }
        Codec::Xz => {
            let limit = xz_limit(data)?;
            let header = idx::parse(&xz::read_prefix(data, idx::header_len(255), limit)?)?;
            check_limits(&header, req)?;
            check_xz_recorded(&header, xz::uncompressed_size(data)?)?;
            Ok(header)
        }
    }
}

/// The decoder memory limit for xz `data`, from the content size its indexes record, once that
/// size is one the compressed bytes can hold.
fn xz_limit(data: &[u8]) -> Result<u64, Error> {
    let claimed = xz::uncompressed_size(data)?;
    xz::check_claim(claimed, data.len())?;
    Ok(xz::memlimit(claimed))
}

/// Everything the header alone can tell against the request: numpy's dimension limit, max_bytes.
fn check_limits(header: &Header, req: &Request<'_>) -> Result<(), Error> {
    if header.dims.len() > req.max_ndim {
        return Err(Error::Format(format!(
            "IDX header declares {} dimensions; numpy holds at most {}",
            header.dims.len(),
            req.max_ndim
        )));
    }
    idx::check_max(header, req.max_bytes)
}

/// deflate expands at most 1032:1: a header declaring more content than the file can hold is
/// corrupt, or the file truncated; refused before allocating for it.
fn check_gzip_len(header: &Header, len: usize) -> Result<(), Error> {
    let total = header.total_len();
    let limit = len.saturating_mul(gzip::MAX_RATIO);
    if total > limit {
        return Err(Error::Format(format!(
            "IDX header declares {header} = {total} bytes, but {len} bytes of gzip can hold at most {limit} \
             (deflate expands at most {}:1): corrupt header or truncated file",
            gzip::MAX_RATIO
        )));
    }
    Ok(())
}

/// Decodes an opened source into `out` (`output_len` bytes; None when no array is wanted),
/// hashes, judges, and returns the outcome. After it, the payload fills `out[..payload_len]`
/// in native byte order.
pub fn finish(opened: Opened<'_>, out: Option<&mut [u8]>) -> Result<Outcome, Error> {
    let stored = stored_digests(&opened);
    let decoded = decode(&opened, out);
    conclude(opened, stored, decoded)
}

/// The digests of the stored bytes of a source held in memory (the rest come from `decode`).
fn stored_digests(op: &Opened<'_>) -> Vec<Digest> {
    match op.stored_bytes() {
        Some(data) => hash(&[data], &op.req.split_kinds(op.codec()).0),
        None => Vec::new(),
    }
}

/// Decodes (for `Mode::Array`) or streams (for `Mode::Digests`), returning the digests computed
/// on the way: over the content, or over everything for an uncompressed file read here.
fn decode(op: &Opened<'_>, out: Option<&mut [u8]>) -> Result<(Vec<Digest>, Codec), Error> {
    match (&op.body, out) {
        (Body::Stream, _) => digests_only(op.req.source, &op.req.kinds()),
        (Body::StoredFile { file, len }, Some(out)) => {
            let out = &mut out[..*len];
            advise_huge_pages(out);
            let got = read_fully(&mut &*file, out)?;
            let more = (&*file).read(&mut [0u8; 1])?;
            if got != out.len() || more != 0 {
                return Err(Error::Io(std::io::Error::other(format!(
                    "the file changed size while it was read ({len} bytes when opened)"
                ))));
            }
            // The stored bytes' digests only: nothing is decoded in this mode.
            let codec = Codec::of(out);
            Ok((hash(&[out], &op.req.split_kinds(codec).0), codec))
        }
        (_, out) => decode_into(op, out).map(|d| (d, op.codec())),
    }
}

fn decode_into(op: &Opened<'_>, out: Option<&mut [u8]>) -> Result<Vec<Digest>, Error> {
    let (_, content_kinds) = op.req.split_kinds(op.codec());
    match (&op.body, out) {
        (Body::Stream, _) => unreachable!("streamed by `decode`"),
        (Body::StoredFile { .. }, _) => unreachable!("read by `decode`"),
        (Body::Bytes { header: None, .. }, _) => Ok(Vec::new()),
        (Body::RawFile { file, prefix, header }, Some(out)) => {
            let out = &mut out[..header.payload_len];
            let hlen = header.header_len();
            out[..prefix.len() - hlen].copy_from_slice(&prefix[hlen..]);
            let have = prefix.len() - hlen;
            let got = have + read_fully(&mut &*file, &mut out[have..])?;
            let more = (&*file).read(&mut [0u8; 1])?;
            if got != out.len() || more != 0 {
                // The file changed size between the length check and the read.
                idx::check_len(header, hlen + got + more)?;
            }
            let digests = hash(&[&prefix[..hlen], out], &op.req.kinds());
            element::swap_in_place(out, header.dtype.size());
            Ok(digests)
        }
        (Body::Streamed { decoder, tally, head, header, .. }, Some(out)) => {
            let mut decoder = decoder.lock().expect("not poisoned").take().expect("decoded once");
            let out = &mut out[..header.payload_len];
            advise_huge_pages(out);
            let got = decoder.fill(out)?;
            if got < out.len() {
                idx::check_len(header, head.len() + got)?; // the content ended short
            }
            if decoder.rest(0)? > 0 {
                check_fit(header, Fit::Long)?;
            }
            let (_, content_kinds) = op.req.split_kinds(op.codec());
            let mut digests = hash(&[head, out], &content_kinds);
            let stored = std::mem::replace(&mut tally.lock().expect("not poisoned").hasher, Hasher::new(&[])).finish();
            for kind in op.req.split_kinds(op.codec()).0 {
                let hex = stored.iter().find(|(a, _)| *a == kind.algo).map(|(_, h)| h.clone()).expect("hashed as read");
                digests.push(Digest { kind, hex });
            }
            element::swap_in_place(out, header.dtype.size());
            Ok(digests)
        }
        (Body::Bytes { data, codec, header: Some(header) }, Some(out)) => {
            advise_huge_pages(out);
            let (hlen, size) = (header.header_len(), header.dtype.size());
            let fit = match codec {
                Codec::Raw => {
                    out[..header.payload_len].copy_from_slice(&data[hlen..]);
                    element::swap_in_place(&mut out[..header.payload_len], size);
                    return Ok(Vec::new()); // its digests are the stored bytes' (same bytes)
                }
                Codec::Gzip => gzip::inflate_into(data, out)?,
                Codec::Xz => {
                    let mut head = vec![0u8; hlen];
                    let fit = xz::decode_into(data, &mut head, &mut out[..header.payload_len], xz_limit(data)?)?;
                    check_fit(header, fit)?;
                    let digests = hash(&[&head, &out[..header.payload_len]], &content_kinds);
                    element::swap_in_place(&mut out[..header.payload_len], size);
                    return Ok(digests);
                }
            };
            check_fit(header, fit)?;
            let digests = hash(&[out], &content_kinds);
            element::move_swapped(out, hlen, header.payload_len, size);
            Ok(digests)
        }
        (_, None) => unreachable!("an array is decoded into the buffer its caller allocated"),
    }
}

/// Asks Linux to back a large buffer not yet written with transparent huge pages: inflating into
/// 4 KiB pages costs one page fault per 4 KiB, a sizeable share of the whole read (numpy's own
/// advice starts at a 4 KiB boundary; the kernel needs 2 MiB-aligned ranges). Elsewhere, and
/// for small buffers, it does nothing.
fn advise_huge_pages(buf: &mut [u8]) {
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if buf.len() < 2 * HUGE {
            return;
        }
        let start = buf.as_mut_ptr() as usize;
        let aligned = (start + HUGE - 1) & !(HUGE - 1);
        let end = (start + buf.len()) & !(HUGE - 1);
        if end > aligned {
            // SAFETY: the range lies inside `buf`; MADV_HUGEPAGE only changes how the kernel
            // backs it, never its contents. A failure (THP off) is harmless.
            unsafe { libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE) };
        }
    }
}

fn check_fit(header: &Header, fit: Fit) -> Result<(), Error> {
    match fit {
        Fit::Exact => Ok(()),
        Fit::Short(found) => idx::check_len(header, found),
        Fit::Long => Err(Error::Format(format!(
            "IDX length mismatch (trailing bytes): header declares {header} = {} bytes in all; \
             the decompressed content is longer",
            header.total_len()
        ))),
    }
}

/// Merges the stored digests and the decode's result into the outcome, judging every expected
/// digest (in strict mode the first mismatch, stored before content, is the error).
fn conclude(
    opened: Opened<'_>,
    stored: Vec<Digest>,
    decoded: Result<(Vec<Digest>, Codec), Error>,
) -> Result<Outcome, Error> {
    let req = opened.req;
    if req.strict {
        if let Some(v) = verdicts(req, opened.codec(), &stored).into_iter().find(|v| !v.matched()) {
            return Err(Error::Checksum(Box::new(v.mismatch())));
        }
    }
    let (decoded, codec) = match decoded {
        Ok(d) => d,
        Err(e) => return Err(settle(req, opened.stored_bytes(), e)),
    };
    let judged = |digests: &[Digest]| verdicts(req, codec, digests);
    let mut computed = stored;
    computed.extend(decoded);
    let verdicts = judged(&computed);
    if req.strict {
        if let Some(v) = verdicts.iter().find(|v| !v.matched()) {
            return Err(Error::Checksum(Box::new(v.mismatch())));
        }
    }
    let digests = req.kinds().into_iter().filter_map(|k| computed.iter().find(|d| d.kind == k).cloned()).collect();
    let header = opened.header().cloned();
    let stored = match (req.mode, opened.body) {
        // Bytes the engine read (from a pipe); the caller already holds borrowed ones, and a
        // regular file was read into the caller's buffer.
        (Mode::Stored, Body::Bytes { data: Cow::Owned(data), .. }) => Some(data),
        _ => None,
    };
    Ok(Outcome { codec, header, digests, verdicts, stored })
}

/// A verdict for every expected digest that was computed (stored ones first).
fn verdicts(req: &Request<'_>, codec: Codec, digests: &[Digest]) -> Vec<Verdict> {
    let mut out: Vec<Verdict> = Vec::new();
    for covers in [Covers::Stored, Covers::Content] {
        for e in req.expected.iter().filter(|e| e.kind.covers.of(codec) == covers) {
            if let Some(d) = digests.iter().find(|d| d.kind == e.kind) {
                out.push(Verdict { expected: e.clone(), actual: d.hex.clone(), codec });
            }
        }
    }
    out
}

/// Which error a source that failed with `err` reports: the reference's order. A stored digest
/// that does not match comes first (a wrong file is best reported as such); a malformed header
/// inside a corrupt stream is the corrupt stream; then a content digest. A payload over
/// `max_bytes` (`Error::Limit`) is judged from the header alone. Runs only on failure.
fn settle(req: &Request<'_>, data: Option<&[u8]>, err: Error) -> Error {
    if !matches!(err, Error::Format(_) | Error::Gzip(_) | Error::Xz(_) | Error::Limit(_)) {
        return err;
    }
    // What to judge again: the bytes in memory, or a regular file, streamed again (bounded
    // memory). A pipe, FIFO or device cannot be read twice: its first error stands.
    let source = match (data, req.source) {
        (Some(d), _) | (None, Source::Bytes(d)) => Source::Bytes(d),
        (None, Source::Path(p)) if std::fs::metadata(p).is_ok_and(|m| m.is_file()) => Source::Path(p),
        (None, Source::Path(_)) => return err,
    };
    let Ok(codec) = codec_of(source) else { return err };
    let (stored_kinds, content_kinds) = req.split_kinds(codec);
    let mismatch = |kinds: &[DigestKind]| -> Option<Error> {
        let (digests, _) = digests_only(source, kinds).ok()?;
        let v = verdicts(req, codec, &digests).into_iter().find(|v| !v.matched())?;
        Some(Error::Checksum(Box::new(v.mismatch())))
    };
    if req.strict && !stored_kinds.is_empty() {
        if let Some(e) = mismatch(&stored_kinds) {
            return e;
        }
    }
    if !matches!(err, Error::Format(_)) {
        return err;
    }
    let stream = match source {
        Source::Bytes(d) => check_stream(codec, d),
        Source::Path(_) if codec.is_compressed() => stream_check(source),
        Source::Path(_) => Ok(()),
    };
    if let Err(stream) = stream {
        return stream;
    }
    if req.strict && !content_kinds.is_empty() {
        if let Some(e) = mismatch(&content_kinds) {
            return e;
        }
    }
    err
}

/// The codec of a source, from its first bytes.
fn codec_of(source: Source<'_>) -> Result<Codec, Error> {
    match source {
        Source::Bytes(d) => Ok(Codec::of(d)),
        Source::Path(p) => {
            let (file, _) = open_file(p)?;
            let mut magic = Vec::with_capacity(xz::MAGIC.len());
            file.take(xz::MAGIC.len() as u64).read_to_end(&mut magic)?;
            Ok(Codec::of(&magic))
        }
    }
}

/// The whole stream in memory checked, content discarded: which error a corrupt stream gives.
fn check_stream(codec: Codec, data: &[u8]) -> Result<(), Error> {
    match codec {
        Codec::Raw => Ok(()),
        Codec::Gzip => gzip::check_stream(data),
        Codec::Xz => xz::check_stream(data, xz_limit(data)?),
    }
}

/// Decodes a source's whole stream (if compressed), keeping nothing: its codec error, if any.
fn stream_check(source: Source<'_>) -> Result<(), Error> {
    digests_only(source, &[DigestKind::CONTENT_MD5]).map(drop)
}

/// Hashes the concatenation of `parts` with every algorithm `kinds` names (MD5 and SHA-256 on two
/// cores when both are asked for); one digest per kind.
fn hash(parts: &[&[u8]], kinds: &[DigestKind]) -> Vec<Digest> {
    let need = |a: Algo| kinds.iter().any(|k| k.algo == a);
    let run = |a: Algo| {
        let mut h = Hasher::new(&[a]);
        for p in parts {
            for chunk in p.chunks(1 << 20) {
                h.update(chunk);
            }
        }
        h.finish().pop().map(|(_, hex)| hex).expect("one algorithm, one digest")
    };
    let (md5, sha) = thread::scope(|s| {
        let sha = need(Algo::Sha256).then(|| s.spawn(|| run(Algo::Sha256)));
        let md5 = need(Algo::Md5).then(|| run(Algo::Md5));
        (md5, sha.map(|h| h.join().expect("hashing does not panic")))
    });
    kinds
        .iter()
        .map(|&kind| {
            let hex = match kind.algo {
                Algo::Md5 => md5.clone(),
                Algo::Sha256 => sha.clone(),
            };
            Digest { kind, hex: hex.expect("computed above") }
        })
        .collect()
}

/// Like `read_exact`, but reports how much it got instead of failing at end of file.
fn read_fully(reader: &mut impl Read, out: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < out.len() {
        match reader.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Computes digests of a source without decoding it into an array: the stored bytes are hashed
/// as they are read, in 1 MiB steps; content digests of a compressed source are taken over its
/// decoded stream (gzip members, CRC32 and ISIZE checked; xz checks verified), never held whole.
fn digests_only(source: Source<'_>, kinds: &[DigestKind]) -> Result<(Vec<Digest>, Codec), Error> {
    let wants_content = |codec: Codec| kinds.iter().any(|k| k.covers.of(codec) == Covers::Content);
    // The input from its first byte, its codec, and for xz content the decoder's memory limit
    // from the indexes at its end (read at their positions in a regular file; a stream's is the
    // default).
    let (input, codec, limit): (Box<dyn Read + '_>, Codec, u64) = match source {
        Source::Bytes(b) => {
            let codec = Codec::of(b);
            let limit = if codec == Codec::Xz && wants_content(codec) { xz_limit(b)? } else { 0 };
            (Box::new(b), codec, limit)
        }
        Source::Path(p) => {
            let (mut file, known) = open_file(p)?;
            let mut magic = Vec::with_capacity(xz::MAGIC.len());
            (&mut file).take(xz::MAGIC.len() as u64).read_to_end(&mut magic)?;
            let codec = Codec::of(&magic);
            match known {
                Some(len) if codec == Codec::Xz && wants_content(codec) => {
                    let claimed = xz::uncompressed_size(xz::FileAt::new(&file, len))?;
                    xz::check_claim(claimed, len)?;
                    file.seek(SeekFrom::Start(0))?;
                    (Box::new(file), codec, xz::memlimit(claimed))
                }
                _ => (Box::new(Cursor::new(magic).chain(file)), codec, xz::memlimit(0)),
            }
        }
    };
    let (stored_kinds, content_kinds) =
        kinds.iter().partition::<Vec<DigestKind>, _>(|k| k.covers.of(codec) == Covers::Stored);
    let algos = |ks: &[DigestKind]| ks.iter().map(|k| k.algo).collect::<Vec<_>>();
    let mut content = Hasher::new(&algos(&content_kinds));
    let (counted, tally) = Counted::new(input, &algos(&stored_kinds));
    if content.is_empty() {
        let mut counted = counted;
        std::io::copy(&mut counted, &mut std::io::sink())?;
    } else {
        let mut decoder = Decoder::new(codec, counted, limit)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = decoder.fill(&mut buf)?;
            if n == 0 {
                break;
            }
            content.update(&buf[..n]);
        }
    }
    let stored = std::mem::replace(&mut tally.lock().expect("not poisoned").hasher, Hasher::new(&[])).finish();
    let content = content.finish();
    let digests = kinds
        .iter()
        .map(|&kind| {
            let from = if kind.covers.of(codec) == Covers::Stored { &stored } else { &content };
            let hex = from.iter().find(|(a, _)| *a == kind.algo).map(|(_, h)| h.clone()).expect("hashed");
            Digest { kind, hex }
        })
        .collect();
    Ok((digests, codec))
}

/// Runs `f(0..n)` on up to one thread per core, this one included (so one task starts no
/// thread at all); results in order.
fn in_parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = thread::available_parallelism().map_or(2, |c| c.get()).min(n);
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let work = || loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= n {
            break;
        }
        let r = f(k);
        slots.lock().expect("no worker panics holding the lock")[k] = Some(r);
    };
    thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(work);
        }
        work();
    });
    slots.into_inner().expect("workers done").into_iter().map(|r| r.expect("every task ran")).collect()
}

/// The order to work in: largest source first, so one core inflates the largest file while
/// the other hashes it and takes the smaller ones.
fn largest_first(sizes: impl Iterator<Item = u64>) -> Vec<usize> {
    let sizes: Vec<u64> = sizes.collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    order
}

/// `open` for every request, on every core; results in the order of `requests`.
pub fn open_many<'a>(requests: &'a [Request<'a>]) -> Vec<Result<Opened<'a>, Error>> {
    let order = largest_first(requests.iter().map(|r| match r.source {
        Source::Bytes(b) => b.len() as u64,
        Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
    }));
    let opened = in_parallel(order.len(), |k| open(&requests[order[k]]));
    let mut out: Vec<Option<Result<Opened<'a>, Error>>> = (0..requests.len()).map(|_| None).collect();
    for (&i, r) in order.iter().zip(opened) {
        out[i] = Some(r);
    }
    out.into_iter().map(|r| r.expect("every request opened")).collect()
}

/// What decoding a source gave: the digests computed on the way, and the codec it was in.
type Decoded = Result<(Vec<Digest>, Codec), Error>;

/// The work left on opened sources: decoding each, and hashing the stored bytes of each held in
/// memory (two tasks, which may run on two cores).
#[derive(Clone, Copy)]
enum Task {
    Decode(usize),
    HashStored(usize),
}

enum Done {
    Decoded(Decoded),
    Hashed(Vec<Digest>),
}

/// `finish` for every opened source with its output buffer, on every core; results in order.
pub fn finish_many(jobs: Vec<(Opened<'_>, Option<&mut [u8]>)>) -> Vec<Result<Outcome, Error>> {
    let order = largest_first(jobs.iter().map(|(op, _)| op.stored_bytes().map_or(op.output_len(), <[u8]>::len) as u64));
    let (opened, outs): (Vec<Opened<'_>>, Vec<Option<&mut [u8]>>) = jobs.into_iter().unzip();
    let outs: Vec<Mutex<Option<&mut [u8]>>> = outs.into_iter().map(Mutex::new).collect();
    let mut tasks = Vec::new();
    for &i in &order {
        tasks.push(Task::Decode(i));
        if opened[i].stored_bytes().is_some() && !opened[i].req.split_kinds(opened[i].codec()).0.is_empty() {
            tasks.push(Task::HashStored(i));
        }
    }
    let done = in_parallel(tasks.len(), |k| match tasks[k] {
        Task::Decode(i) => {
            let out = outs[i].lock().expect("one task per buffer").take();
            Done::Decoded(decode(&opened[i], out))
        }
        Task::HashStored(i) => Done::Hashed(stored_digests(&opened[i])),
    });
    let mut decoded: Vec<Option<Decoded>> = opened.iter().map(|_| None).collect();
    let mut stored: Vec<Vec<Digest>> = opened.iter().map(|_| Vec::new()).collect();
    for (task, d) in tasks.iter().zip(done) {
        match (*task, d) {
            (Task::Decode(i), Done::Decoded(r)) => decoded[i] = Some(r),
            (Task::HashStored(i), Done::Hashed(h)) => stored[i] = h,
            _ => unreachable!("each task yields its own kind of result"),
        }
    }
    opened
        .into_iter()
        .zip(stored)
        .zip(decoded)
        .map(|((op, st), dec)| conclude(op, st, dec.expect("every source decoded")))
        .collect()
}

/// For Rust callers (tests, fuzzing): reads one source into a buffer of its own: the payload
/// (`Mode::Array`), or a regular file's stored bytes (`Mode::Stored`); empty otherwise.
pub fn read_to_vec(req: &Request<'_>) -> Result<(Outcome, Vec<u8>), Error> {
    read_many_to_vec(std::slice::from_ref(req)).pop().expect("one request, one result")
}

/// `read_to_vec` for many sources, through `open_many` and `finish_many`.
pub fn read_many_to_vec(requests: &[Request<'_>]) -> Vec<Result<(Outcome, Vec<u8>), Error>> {
    let opened = open_many(requests);
    let mut bufs: Vec<Vec<u8>> =
        opened.iter().map(|o| o.as_ref().map_or(0, Opened::output_len)).map(|n| vec![0u8; n]).collect();
    let mut jobs = Vec::new();
    let mut slots = Vec::new();
    let mut kept: Vec<Option<usize>> = Vec::new();
    let mut errors: Vec<Option<Error>> = Vec::new();
    for (o, buf) in opened.into_iter().zip(bufs.iter_mut()) {
        match o {
            Ok(op) => {
                let wants_buffer = op.header().is_some() || op.fills_stored();
                let stored_len = op.fills_stored().then(|| op.output_len());
                jobs.push((op, wants_buffer.then_some(&mut buf[..])));
                kept.push(stored_len);
                slots.push(true);
                errors.push(None);
            }
            Err(e) => {
                slots.push(false);
                kept.push(None);
                errors.push(Some(e));
            }
        }
    }
    let mut finished = finish_many(jobs).into_iter();
    let results: Vec<Result<Outcome, Error>> = slots
        .iter()
        .zip(errors)
        .map(|(&ok, err)| if ok { finished.next().expect("one result per job") } else { Err(err.expect("an error")) })
        .collect();
    results
        .into_iter()
        .zip(bufs)
        .zip(kept)
        .map(|((r, mut buf), stored_len)| {
            r.map(|o| {
                buf.truncate(stored_len.unwrap_or_else(|| o.header.as_ref().map_or(0, |h| h.payload_len)));
                (o, buf)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest;
    use crate::element::ElementType;
    use crate::writer::{encode, Compress};

    fn file(compress: Compress) -> Vec<u8> {
        let payload: Vec<u8> = (0..24u8).collect(); // 3 x 2 int32
        encode(ElementType::I32, vec![3, 2], &payload, compress).unwrap()
    }

    fn array(data: &[u8]) -> Result<(Outcome, Vec<u8>), Error> {
        read_to_vec(&Request::new(Source::Bytes(data), Mode::Array))
    }

    #[test]
    fn raw_gzip_and_xz_read_the_same_payload_in_native_order() {
        let want: Vec<u8> = (0..24u8).collect();
        for (compress, codec) in
            [(Compress::None, Codec::Raw), (Compress::Gzip(6), Codec::Gzip), (Compress::Xz(1), Codec::Xz)]
        {
            let (outcome, payload) = array(&file(compress)).unwrap();
            assert_eq!((outcome.codec, payload.as_slice()), (codec, want.as_slice()));
            assert_eq!(outcome.header.unwrap().dims, vec![3, 2]);
        }
    }

    #[test]
    fn a_path_reads_as_its_bytes() {
        let dir = std::env::temp_dir().join(format!("fmnist-reader-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (k, data) in [file(Compress::None), file(Compress::Gzip(1)), file(Compress::Xz(0)), vec![0, 0, 8]]
            .into_iter()
            .enumerate()
        {
            let path = dir.join(format!("f{k}"));
            std::fs::write(&path, &data).unwrap();
            let from_path = read_to_vec(&Request::new(Source::Path(&path), Mode::Array));
            let from_bytes = array(&data);
            match (from_path, from_bytes) {
                (Ok((_, a)), Ok((_, b))) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{a:?} vs {b:?}"),
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn digests_verdicts_and_strictness() {
        let gz = file(Compress::Gzip(6));
        let content = file(Compress::None);
        let md5 = digest::hex(Algo::Md5, &gz);
        let content_sha = digest::hex(Algo::Sha256, &content);
        let mut req = Request::new(Source::Bytes(&gz), Mode::Array);
        req.expected.push(Expected::new(DigestKind::MD5, &md5, None).unwrap());
        req.expected.push(Expected::new(DigestKind::CONTENT_SHA256, &"0".repeat(64), Some("a guess".into())).unwrap());
        let err = read_to_vec(&req).unwrap_err();
        let Error::Checksum(m) = &err else { panic!("{err:?}") };
        assert_eq!((m.covers(), m.actual.as_str()), (Covers::Content, content_sha.as_str()));
        assert!(err.to_string().contains("SHA-256 mismatch over the decompressed IDX content: expected 000"));
        assert!(err.to_string().contains("(a guess), found"));
        req.strict = false;
        let (outcome, _) = read_to_vec(&req).unwrap();
        let matched: Vec<bool> = outcome.verdicts.iter().map(Verdict::matched).collect();
        assert_eq!(matched, [true, false]);
        assert!(outcome.verdicts[0].message().starts_with("MD5 of the stored (gzip-compressed) bytes matches"));
        // Digests only: the same digests, nothing decoded; stored: the bytes themselves and
        // their digests (the content is not decoded).
        let (o, payload) = read_to_vec(&Request { mode: Mode::Digests, ..req.clone() }).unwrap();
        assert!(payload.is_empty() && o.header.is_none() && o.stored.is_none());
        assert_eq!(o.digests, outcome.digests);
        // Stored bytes given are the caller's; a file's are read into the caller's buffer.
        let (o, buf) = read_to_vec(&Request { mode: Mode::Stored, ..req.clone() }).unwrap();
        assert_eq!((o.stored.as_deref(), buf.len(), &o.digests[..]), (None, 0, &outcome.digests[..1]));
        let path = std::env::temp_dir().join(format!("fmnist-stored-test-{}", std::process::id()));
        std::fs::write(&path, &gz).unwrap();
        let from_file = Request { source: Source::Path(&path), mode: Mode::Stored, ..req.clone() };
        let (o, buf) = read_to_vec(&from_file).unwrap();
        assert_eq!((o.stored.as_deref(), &buf[..], &o.digests[..]), (None, &gz[..], &outcome.digests[..1]));
        std::fs::remove_file(&path).unwrap();
        // In an uncompressed file the stored bytes are the content.
        let mut raw = Request::new(Source::Bytes(&content), Mode::Array);
        raw.report.push(DigestKind::CONTENT_SHA256);
        raw.report.push(DigestKind::MD5);
        let (o, _) = read_to_vec(&raw).unwrap();
        assert_eq!(o.digests[0].hex, content_sha);
        assert_eq!(o.digests[1].hex, digest::hex(Algo::Md5, &content));
    }

    #[test]
    fn a_stored_digest_mismatch_wins_over_a_corrupt_stream() {
        let gz = file(Compress::Gzip(6));
        let cut = &gz[..gz.len() - 3];
        assert!(matches!(array(cut), Err(Error::Gzip(_))));
        let mut req = Request::new(Source::Bytes(cut), Mode::Array);
        req.expected.push(Expected::new(DigestKind::MD5, &digest::hex(Algo::Md5, &gz), None).unwrap());
        assert!(matches!(read_to_vec(&req), Err(Error::Checksum(_))));
    }

    #[test]
    fn max_bytes_ndim_and_bad_headers() {
        let data = file(Compress::Gzip(1));
        let limited = Request { max_bytes: Some(23), ..Request::new(Source::Bytes(&data), Mode::Array) };
        assert!(matches!(read_to_vec(&limited), Err(Error::Limit(m)) if m.contains("over max_bytes=23")));
        let flat = Request { max_ndim: 1, ..Request::new(Source::Bytes(&data), Mode::Array) };
        assert!(read_to_vec(&flat).unwrap_err().to_string().contains("numpy holds at most 1"));
        assert!(array(&[1, 0, 8, 0]).unwrap_err().to_string().contains("magic"));
        assert!(array(&[0, 0, 8, 1, 0, 0, 0, 5, 1]).unwrap_err().to_string().contains("truncated"));
        // A gzip whose header declares more than deflate could hold: refused before allocating.
        let forged = gzip::compress(&[0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF], 6).unwrap();
        assert!(array(&forged).unwrap_err().to_string().contains("deflate expands at most"));
    }

    #[test]
    fn an_xz_index_claiming_more_than_the_file_can_hold_is_an_xz_error() {
        let mut data = file(Compress::Xz(0));
        // The stream's index records the content size; forging it breaks the index's CRC, so
        // check the bound itself on the real file's numbers instead.
        assert!(xz::check_claim(8 << 30, data.len()).is_err());
        data.truncate(data.len() - 12);
        assert!(matches!(array(&data), Err(Error::Xz(_))));
    }
}

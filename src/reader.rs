//! Reading IDX: a path or bytes in, a typed buffer holding exactly the payload out.
//!
//! The output is allocated once, at its final size, as a `Payload` (see `payload.rs`): the
//! content (IDX header + payload) is inflated or read straight into it, the header into the
//! prefix reserved before the payload. Multi-byte elements are then byteswapped in place, and
//! numpy takes the payload over as the array's own memory: it is never copied after inflation.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use crate::digest::{self, Algo};
use crate::element::{Element, IntoTyped, Typed};
use crate::gzip::{self, Fit};
use crate::idx::{self, Header};
use crate::payload::{Payload, Payloads};
use crate::xz;
use crate::Error;

/// Where the bytes come from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// What was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covers {
    /// The bytes as stored (the .gz file itself when compressed).
    Stored,
    /// The decompressed IDX bytes.
    Content,
}

impl Covers {
    fn describe(self, codec: Option<Codec>) -> &'static str {
        match (self, codec) {
            (Covers::Stored, Some(Codec::Gzip)) => "the stored (gzip-compressed) bytes",
            (Covers::Stored, Some(Codec::Xz)) => "the stored (xz-compressed) bytes",
            (Covers::Content, Some(_)) => "the decompressed IDX content",
            (_, None) => "the file's bytes (stored uncompressed, so stored = content)",
        }
    }
}

/// How a source is compressed, told by its magic bytes (never by a file name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Xz,
}

impl Codec {
    pub fn of(data: &[u8]) -> Option<Codec> {
        if gzip::is_gzip(data) {
            Some(Codec::Gzip)
        } else if xz::is_xz(data) {
            Some(Codec::Xz)
        } else {
            None
        }
    }

    /// The first `n` bytes of the content (fewer if it is shorter).
    fn read_prefix(self, data: &[u8], n: usize) -> Result<Vec<u8>, Error> {
        match self {
            Codec::Gzip => gzip::read_prefix(data, n),
            Codec::Xz => xz::read_prefix(data, n),
        }
    }

    /// The whole of `data` checked, content discarded: which error a corrupt stream gives.
    fn check_stream(self, data: &[u8]) -> Result<(), Error> {
        match self {
            Codec::Gzip => gzip::check_stream(data),
            Codec::Xz => xz::check_stream(data),
        }
    }
}

/// A kind of digest: an algorithm over what it covers, named as the Python API names it
/// (`md5`, `sha256`, `content_md5`, `content_sha256`). The one encoding of digest kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestKind {
    pub algo: Algo,
    pub covers: Covers,
}

impl DigestKind {
    pub const MD5: DigestKind = DigestKind { algo: Algo::Md5, covers: Covers::Stored };
    pub const SHA256: DigestKind = DigestKind { algo: Algo::Sha256, covers: Covers::Stored };
    pub const CONTENT_MD5: DigestKind = DigestKind { algo: Algo::Md5, covers: Covers::Content };
    pub const CONTENT_SHA256: DigestKind = DigestKind { algo: Algo::Sha256, covers: Covers::Content };
    pub const ALL: [DigestKind; 4] =
        [DigestKind::MD5, DigestKind::SHA256, DigestKind::CONTENT_MD5, DigestKind::CONTENT_SHA256];
}

impl std::fmt::Display for DigestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = if self.covers == Covers::Content { "content_" } else { "" };
        let algo = match self.algo {
            Algo::Md5 => "md5",
            Algo::Sha256 => "sha256",
        };
        write!(f, "{prefix}{algo}")
    }
}

impl std::str::FromStr for DigestKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<DigestKind, Error> {
        DigestKind::ALL.into_iter().find(|k| k.to_string() == name).ok_or_else(|| {
            Error::Usage(format!("unknown digest {name:?}: expected md5, sha256, content_md5 or content_sha256"))
        })
    }
}

/// One digest to compute, and (when given) the value it must have.
#[derive(Clone, Debug)]
pub struct Want {
    pub algo: Algo,
    pub covers: Covers,
    /// Expected value, lowercase hex; None: compute and report it only.
    pub hex: Option<String>,
}

/// A digest as computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub algo: Algo,
    pub covers: Covers,
    pub hex: String,
}

impl Digest {
    pub fn kind(&self) -> DigestKind {
        DigestKind { algo: self.algo, covers: self.covers }
    }
}

/// What the caller requires of the source.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub digests: Vec<Want>,
    /// Refuse a payload larger than this before allocating it.
    pub max_bytes: Option<usize>,
    /// Refuse more dimensions than this (numpy's limit), before allocating.
    pub max_ndim: Option<usize>,
}

impl Expect {
    /// Adds an expected digest given by a user, validating its form.
    pub fn want(&mut self, kind: DigestKind, given: Option<&str>) -> Result<(), Error> {
        if let Some(given) = given {
            let hex = digest::parse_expected(kind.algo, given)?;
            self.digests.push(Want { algo: kind.algo, covers: kind.covers, hex: Some(hex) });
        }
        Ok(())
    }

    /// Asks for a digest to be computed and returned in `Idx::digests`, without a check.
    pub fn report(&mut self, kind: DigestKind) {
        self.digests.push(Want { algo: kind.algo, covers: kind.covers, hex: None });
    }
}

/// Big-endian (as stored) to native byte order, in place.
fn from_be_in_place<T: Element>(xs: &mut [T]) {
    if std::mem::size_of::<T>() > 1 && cfg!(target_endian = "little") {
        for x in xs {
            *x = x.be_to_native();
        }
    }
}

/// A decoded IDX file.
#[derive(Debug)]
pub struct Idx {
    pub header: Header,
    pub data: Data,
    /// Every digest that was asked for (checked or only reported).
    pub digests: Vec<Digest>,
    /// Whether the source was compressed (gzip or xz).
    pub compressed: bool,
}

/// A decoded payload, in the element type its header names.
pub type Data = Typed<Payloads>;

impl Data {
    /// The payload's bytes, in native byte order, whatever the element type.
    pub fn as_bytes(&self) -> &[u8] {
        crate::each_typed!(self, p => p.as_bytes())
    }
}

/// The output while it is being filled: the raw IDX content (header + big-endian payload), the
/// header in the prefix right before the payload.
struct Buffer<T> {
    payload: Payload<T>,
    header_len: usize,
}

impl<T: Element> Buffer<T> {
    fn new(header: &Header) -> Result<Buffer<T>, Error> {
        let mut payload = Payload::zeroed(header.count)
            .ok_or_else(|| Error::Memory(format!("cannot allocate {} bytes for {header}", header.payload_len)))?;
        advise_huge_pages(payload.as_mut_slice());
        Ok(Buffer { payload, header_len: header.header_len() })
    }

    /// The raw content bytes (header + payload as stored).
    fn content_mut(&mut self) -> &mut [u8] {
        self.payload.bytes_with_prefix_mut(self.header_len)
    }

    fn finish(mut self) -> Payload<T> {
        from_be_in_place(self.payload.as_mut_slice());
        self.payload
    }
}

/// Asks Linux to back a large, not yet touched buffer with transparent huge pages: inflating
/// into 4 KiB pages costs one page fault per 4 KiB, a sizeable share of the whole read.
/// Elsewhere it does nothing.
fn advise_huge_pages<T>(vec: &mut [T]) {
    #[cfg(not(target_os = "linux"))]
    let _ = vec;
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = std::mem::size_of_val(vec);
        if bytes < 2 * HUGE {
            return;
        }
        let start = vec.as_mut_ptr() as usize;
        let aligned = (start + HUGE - 1) & !(HUGE - 1);
        let end = (start + bytes) & !(HUGE - 1);
        if end > aligned {
            // SAFETY: the range lies inside the Vec's own allocation; MADV_HUGEPAGE only changes
            // how the kernel backs it, never its contents. A failure (THP off) is harmless.
            unsafe { libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE) };
        }
    }
}

/// Runs `$body` (which gives a `Payload<$T>`) with `$T` bound to the element type of `$dtype`,
/// wrapping the result in `Data`.
macro_rules! with_elem {
    ($dtype:expr, $T:ident => $body:expr) => {
        crate::with_element!($dtype, $T => <$T as IntoTyped<Payloads>>::typed($body))
    };
}

/// Checks everything the header alone can tell, before any allocation for the payload.
fn check_header(header: &Header, expect: &Expect) -> Result<(), Error> {
    check_ndim(header, expect)?;
    idx::check_max(header, expect.max_bytes)
}

fn check_ndim(header: &Header, expect: &Expect) -> Result<(), Error> {
    match expect.max_ndim {
        Some(max) if header.dims.len() > max => Err(Error::Format(format!(
            "IDX header declares {} dimensions; numpy holds at most {max}",
            header.dims.len()
        ))),
        _ => Ok(()),
    }
}

/// Hashes `data` with every algorithm `wants` names (the two in parallel when both are asked for),
/// compares with the expected values given, and returns what it computed.
fn verify(data: &[u8], wants: &[&Want], codec: Option<Codec>) -> Result<Vec<Digest>, Error> {
    let need = |a: Algo| wants.iter().any(|w| w.algo == a);
    let (md5, sha) = thread::scope(|s| {
        let sha = need(Algo::Sha256).then(|| s.spawn(|| digest::hex(Algo::Sha256, data)));
        let md5 = need(Algo::Md5).then(|| digest::hex(Algo::Md5, data));
        (md5, sha.map(|h| h.join().expect("hashing does not panic")))
    });
    let mut computed = Vec::with_capacity(wants.len());
    for w in wants {
        let actual = match w.algo {
            Algo::Md5 => md5.as_deref(),
            Algo::Sha256 => sha.as_deref(),
        }
        .expect("computed above");
        if let Some(expected) = w.hex.as_deref().filter(|&e| e != actual) {
            return Err(Error::Checksum(format!(
                "{} mismatch over {}: expected {expected}, found {actual}",
                w.algo.name(),
                w.covers.describe(codec),
            )));
        }
        computed.push(Digest { algo: w.algo, covers: w.covers, hex: actual.to_owned() });
    }
    Ok(computed)
}

/// A source after its first stage: the stored bytes of a compressed or in-memory source, or an
/// uncompressed file already read (and verified) straight into its output.
enum Loaded<'a> {
    Bytes(Cow<'a, [u8]>),
    Done(Result<Idx, Error>),
}

fn load<'a>(source: Source<'a>, expect: &Expect) -> Result<Loaded<'a>, Error> {
    let path = match source {
        Source::Bytes(data) => return Ok(Loaded::Bytes(Cow::Borrowed(data))),
        Source::Path(path) => path,
    };
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    // A regular file's length is known; a pipe's, a FIFO's or a terminal's is not.
    let known = meta.is_file().then_some(meta.len() as usize);
    let mut magic = Vec::with_capacity(xz::MAGIC.len());
    (&mut file).take(2).read_to_end(&mut magic)?;
    if magic == xz::MAGIC[..2] {
        (&mut file).take(xz::MAGIC.len() as u64 - 2).read_to_end(&mut magic)?;
    }
    let Some(codec) = Codec::of(&magic) else {
        return Ok(Loaded::Done(read_raw_file(file, magic, known, expect)));
    };
    // The compressed bytes are needed whole (libdeflate is one-shot), but only once the IDX
    // header, streamed out of the first block, says the file is worth reading: a corrupt stream,
    // a payload over `max_bytes`, or a file far larger or smaller than any gzip of the content
    // the header declares is refused after reading at most FIRST_BLOCK bytes.
    let mut data = Vec::new();
    let reserve = known.unwrap_or(FIRST_BLOCK).max(magic.len());
    data.try_reserve_exact(reserve)
        .map_err(|_| Error::Memory(format!("cannot allocate {reserve} bytes to read the compressed file")))?;
    advise_huge_pages(data.spare_capacity_mut());
    data.extend_from_slice(&magic);
    (&mut file).take((FIRST_BLOCK - magic.len()) as u64).read_to_end(&mut data)?;
    if data.len() < FIRST_BLOCK {
        return Ok(Loaded::Bytes(Cow::Owned(data))); // all of it
    }
    let header = compressed_header(codec, &data, expect)?;
    match known {
        Some(len) => {
            check_compressed_len(codec, &header, len)?;
            file.read_to_end(&mut data)?;
        }
        None => {
            // From a pipe: read no more than any compression of the declared content can need.
            let most = gzip_len_limit(&header);
            (&mut file).take((most + 1 - data.len()) as u64).read_to_end(&mut data)?;
            check_compressed_len(codec, &header, data.len())?;
        }
    }
    Ok(Loaded::Bytes(Cow::Owned(data)))
}

/// How much of a compressed file is read before its IDX header is judged.
const FIRST_BLOCK: usize = 1 << 20;

/// The IDX header at the start of the content of compressed `data` (the whole file, or its
/// first block), checked against `expect`.
fn compressed_header(codec: Codec, data: &[u8], expect: &Expect) -> Result<Header, Error> {
    let prefix = codec.read_prefix(data, idx::header_len(255))?;
    let header = idx::parse(&prefix)?;
    check_header(&header, expect)?;
    Ok(header)
}

/// The most bytes a gzip or xz of the content `header` declares can need (see `check_gzip_len`;
/// xz stores incompressible data in chunks with a few bytes of overhead per 64 KiB, as deflate).
fn gzip_len_limit(header: &Header) -> usize {
    let total = header.total_len();
    total.saturating_add(total / 8).saturating_add(FIRST_BLOCK)
}

/// A gzip file of `len` bytes can hold the content `header` declares: deflate expands at most
/// 1032:1, and stores incompressible data with 5 bytes per 64 KiB block; beyond that, 1 MiB of
/// member headers, empty members and zero padding is allowed.
/// For xz only the upper bound applies (LZMA2 can pack far more than 1032:1); its exact size
/// comes from the streams' indexes once the file is read (`decompress`).
fn check_compressed_len(codec: Codec, header: &Header, len: usize) -> Result<(), Error> {
    match codec {
        Codec::Gzip => check_gzip_len(header, len),
        Codec::Xz => {
            let most = gzip_len_limit(header);
            if len > most {
                return Err(Error::Xz(format!(
                    "the file has {len} bytes, more than any xz of the {} bytes of content its IDX header \
                     declares ({header}) needs (at most {most}): trailing data after the IDX content",
                    header.total_len()
                )));
            }
            Ok(())
        }
    }
}

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
    let most = gzip_len_limit(header);
    if len > most {
        return Err(Error::Gzip(format!(
            "the file has {len} bytes, more than any gzip of the {total} bytes of content its IDX header \
             declares ({header}) needs (at most {most}): trailing data after the IDX content"
        )));
    }
    Ok(())
}

/// An uncompressed file: the header first, then the payload read straight into the output.
/// `len` is None for a pipe or FIFO: then the payload the header declares is read, and the file
/// must end right after it.
fn read_raw_file(mut file: File, mut prefix: Vec<u8>, len: Option<usize>, expect: &Expect) -> Result<Idx, Error> {
    (&mut file).take(4u64.saturating_sub(prefix.len() as u64)).read_to_end(&mut prefix)?;
    let want = idx::needed(&prefix);
    (&mut file).take(want.saturating_sub(prefix.len()) as u64).read_to_end(&mut prefix)?;
    let header = idx::parse(&prefix)?;
    check_header(&header, expect)?;
    if let Some(len) = len {
        idx::check_len(&header, len)?;
    }
    let hlen = header.header_len();
    let digests;
    let data = with_elem!(header.dtype, T => {
        let mut buf = Buffer::<T>::new(&header)?;
        let content = buf.content_mut();
        content[..hlen].copy_from_slice(&prefix);
        let got = read_fully(&mut file, &mut content[hlen..])?;
        let mut extra = [0u8; 1];
        let more = file.read(&mut extra)?;
        if got + hlen != header.total_len() || more != 0 {
            // The file changed size between the length check and the read.
            idx::check_len(&header, got + hlen + more)?;
        }
        let wants: Vec<&Want> = expect.digests.iter().collect();
        digests = verify(buf.content_mut(), &wants, None)?;
        buf.finish()
    });
    Ok(Idx { header, data, digests, compressed: false })
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

/// The digests checked over the stored bytes, and those over the decompressed content. For an
/// uncompressed source they are the same bytes, so every digest is checked over them once.
fn split_wants(expect: &Expect, compressed: bool) -> (Vec<&Want>, Vec<&Want>) {
    if compressed {
        expect.digests.iter().partition(|w| w.covers == Covers::Stored)
    } else {
        (expect.digests.iter().collect(), Vec::new())
    }
}

/// Decodes in-memory bytes (gzip, xz or raw), checking the content digests.
fn decode(data: &[u8], expect: &Expect) -> Result<Idx, Error> {
    match Codec::of(data) {
        Some(codec) => decompress(codec, data, &split_wants(expect, true).1, expect),
        None => copy_raw(data, expect),
    }
}

fn copy_raw(data: &[u8], expect: &Expect) -> Result<Idx, Error> {
    let header = idx::parse(data)?;
    check_header(&header, expect)?;
    idx::check_len(&header, data.len())?;
    let data = with_elem!(header.dtype, T => {
        let mut buf = Buffer::<T>::new(&header)?;
        buf.content_mut().copy_from_slice(data);
        buf.finish()
    });
    // Digests of uncompressed bytes come from the stored-bytes task (same bytes).
    Ok(Idx { header, data, digests: Vec::new(), compressed: false })
}

/// Decodes compressed `data` (gzip or xz) into its final buffer, once. The IDX header comes
/// from the first bytes of content, and before anything is allocated the payload must fit
/// `max_bytes` and the file must be able to hold what the header declares: within deflate's
/// 1032:1 for gzip, exactly the size the streams' indexes record for xz. Malformed IDX inside a
/// corrupt stream is reported as the corrupt stream (the codec's error), as the reference
/// reports it; telling which streams through the data once, allocating nothing.
fn decompress(codec: Codec, data: &[u8], content_wants: &[&Want], expect: &Expect) -> Result<Idx, Error> {
    let stream_first = |e: Error| match e {
        Error::Format(_) => codec.check_stream(data).err().unwrap_or(e),
        e => e,
    };
    let prefix = codec.read_prefix(data, idx::header_len(255))?;
    let header = idx::parse(&prefix).and_then(|h| check_ndim(&h, expect).map(|()| h)).map_err(stream_first)?;
    idx::check_max(&header, expect.max_bytes)?;
    match codec {
        Codec::Gzip => check_gzip_len(&header, data.len()),
        Codec::Xz => check_xz_size(&header, xz::uncompressed_size(data)?),
    }
    .map_err(stream_first)?;
    decode_payload(codec, data, header, content_wants).map_err(stream_first)
}

/// The content size the xz streams' indexes record must be the one the header declares.
fn check_xz_size(header: &Header, recorded: u64) -> Result<(), Error> {
    if recorded == header.total_len() as u64 {
        return Ok(());
    }
    Err(Error::Format(format!(
        "IDX length mismatch: header declares {header} = {} bytes in all; the xz streams hold {recorded}",
        header.total_len()
    )))
}

fn decode_payload(codec: Codec, data: &[u8], header: Header, content_wants: &[&Want]) -> Result<Idx, Error> {
    let digests;
    let data = with_elem!(header.dtype, T => {
        let mut buf = Buffer::<T>::new(&header)?;
        let fit = match codec {
            Codec::Gzip => gzip::inflate_into(data, buf.content_mut())?,
            Codec::Xz => xz::decode_into(data, buf.content_mut())?,
        };
        match fit {
            Fit::Exact => {}
            Fit::Short(found) => idx::check_len(&header, found)?,
            Fit::Long => {
                return Err(Error::Format(format!(
                    "IDX length mismatch (trailing bytes): header declares {header} = {} bytes in all; \
                     the decompressed content is longer",
                    header.total_len()
                )))
            }
        }
        digests = verify(buf.content_mut(), content_wants, Some(codec))?;
        buf.finish()
    });
    Ok(Idx { header, data, digests, compressed: true })
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

/// Reads and verifies one source. Digests of the stored bytes are computed on a second core
/// while this one inflates.
pub fn read(source: Source<'_>, expect: &Expect) -> Result<Idx, Error> {
    read_many(&[(source, expect.clone())]).pop().expect("one job, one result")
}

/// The work left on a loaded source, split so that stored-bytes hashing runs beside inflation.
#[derive(Clone, Copy)]
enum Task {
    Decode(usize),
    HashStored(usize),
}

enum Outcome {
    Decoded(Result<Idx, Error>),
    Hashed(Result<Vec<Digest>, Error>),
}

/// Reads several sources at once, on as many threads as there are cores. Work is queued
/// largest file first, each inflation followed by its stored-bytes hashing, so one core inflates
/// the largest file while the other hashes it and takes the smaller files.
/// Results come back in the order of `jobs`.
pub fn read_many(requests: &[(Source<'_>, Expect)]) -> Vec<Result<Idx, Error>> {
    let size = |s: &Source<'_>| match s {
        Source::Bytes(b) => b.len() as u64,
        Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
    };
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&requests[i].0)));
    let loaded = in_parallel(order.len(), |k| load(requests[order[k]].0, &requests[order[k]].1));
    let mut jobs: Vec<Option<Job<'_>>> = (0..requests.len()).map(|_| None).collect();
    for (&i, loaded) in order.iter().zip(loaded) {
        jobs[i] = Some(Job { expect: &requests[i].1, loaded, decoded: None, stored: Ok(Vec::new()) });
    }
    let mut jobs: Vec<Job<'_>> = jobs.into_iter().map(|j| j.expect("every request loaded")).collect();

    let mut tasks = Vec::new();
    for &i in &order {
        if let Some(data) = jobs[i].bytes() {
            tasks.push(Task::Decode(i));
            if !split_wants(jobs[i].expect, Codec::of(data).is_some()).0.is_empty() {
                tasks.push(Task::HashStored(i));
            }
        }
    }
    let outcomes = in_parallel(tasks.len(), |k| match tasks[k] {
        Task::Decode(i) => Outcome::Decoded(jobs[i].decode()),
        Task::HashStored(i) => Outcome::Hashed(jobs[i].hash_stored()),
    });
    for (task, outcome) in tasks.iter().zip(outcomes) {
        match (*task, outcome) {
            (Task::Decode(i), Outcome::Decoded(r)) => jobs[i].decoded = Some(r),
            (Task::HashStored(i), Outcome::Hashed(r)) => jobs[i].stored = r,
            _ => unreachable!("each task yields its own kind of outcome"),
        }
    }
    jobs.into_iter().map(Job::finish).collect()
}

/// One source on its way through `read_many`: loaded (read, or for an uncompressed file read and
/// decoded at once), then decoded and its stored bytes hashed (two tasks, which may run on two
/// cores), then merged into its result.
struct Job<'a> {
    expect: &'a Expect,
    loaded: Result<Loaded<'a>, Error>,
    decoded: Option<Result<Idx, Error>>,
    stored: Result<Vec<Digest>, Error>,
}

impl Job<'_> {
    /// The bytes still to decode and hash, if loading left any.
    fn bytes(&self) -> Option<&[u8]> {
        match &self.loaded {
            Ok(Loaded::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    fn decode(&self) -> Result<Idx, Error> {
        decode(self.bytes().expect("a decode task is made for loaded bytes"), self.expect)
    }

    fn hash_stored(&self) -> Result<Vec<Digest>, Error> {
        let data = self.bytes().expect("a hash task is made for loaded bytes");
        let codec = Codec::of(data);
        verify(data, &split_wants(self.expect, codec.is_some()).0, codec)
    }

    fn finish(self) -> Result<Idx, Error> {
        match self.loaded? {
            Loaded::Done(r) => r,
            // A wrong file is best reported as such, whatever else is wrong with it.
            Loaded::Bytes(_) => {
                let stored = self.stored?;
                let mut idx = self.decoded.expect("every loaded source was decoded")?;
                idx.digests.splice(0..0, stored);
                Ok(idx)
            }
        }
    }
}

/// Computes digests of a source without decoding it into an array: the stored bytes are hashed
/// as they are read, in 1 MiB steps; content digests of a gzip source are taken over its
/// inflated stream (members, CRC32 and ISIZE checked), never held whole. For a warm cache file
/// that changed on disk, or any check that throws the array away. Returns the digests asked
/// for (in the order of `kinds`) and whether the source was gzip-compressed.
pub fn digests_only(source: Source<'_>, kinds: &[DigestKind]) -> Result<(Vec<Digest>, bool), Error> {
    use std::io::Read;
    let mut reader: Box<dyn Read + '_> = match source {
        Source::Path(p) => Box::new(File::open(p)?),
        Source::Bytes(b) => Box::new(b),
    };
    let mut first = vec![0u8; 1 << 20];
    let n = read_fully(&mut reader, &mut first)?;
    first.truncate(n);
    let codec = Codec::of(&first);
    let gzipped = codec.is_some(); // compressed: content digests come from the decoded stream
    let mut stored = Hashers::new(kinds, |k| k.covers == Covers::Stored || !gzipped);
    let mut content = Hashers::new(kinds, |k| k.covers == Covers::Content && gzipped);
    let tee = Tee { head: std::io::Cursor::new(first), rest: reader, hashers: &mut stored };
    if content.is_empty() {
        std::io::copy(&mut { tee }, &mut std::io::sink())?;
    } else {
        let mut inflated: Box<dyn Read + '_> = match codec {
            Some(Codec::Xz) => Box::new(liblzma::read::XzDecoder::new_stream(tee, xz::streaming_decoder()?)),
            _ => Box::new(gzip::Members::new(std::io::BufReader::with_capacity(1 << 16, tee))),
        };
        let wrap = |m: String| if codec == Some(Codec::Xz) { Error::Xz(m) } else { Error::Gzip(m) };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = inflated.read(&mut buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::UnexpectedEof => wrap(format!("corrupt or truncated compressed data: {e}")),
                _ => Error::Io(e),
            })?;
            if n == 0 {
                break;
            }
            content.update(&buf[..n]);
        }
    }
    let mut out = Vec::with_capacity(kinds.len());
    for &k in kinds {
        let hashers = if k.covers == Covers::Content && gzipped { &mut content } else { &mut stored };
        out.push(Digest { algo: k.algo, covers: k.covers, hex: hashers.hex(k.algo) });
    }
    Ok((out, gzipped))
}

/// The hashers of one covered range (stored bytes, or inflated content) of `digests_only`.
struct Hashers {
    hasher: Option<digest::Hasher>,
    done: Vec<(Algo, String)>,
}

impl Hashers {
    fn new(kinds: &[DigestKind], mine: impl Fn(&DigestKind) -> bool) -> Hashers {
        let algos: Vec<Algo> = kinds.iter().filter(|k| mine(k)).map(|k| k.algo).collect();
        Hashers { hasher: Some(digest::Hasher::new(&algos)), done: Vec::new() }
    }

    fn is_empty(&self) -> bool {
        self.hasher.as_ref().is_none_or(digest::Hasher::is_empty)
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
    }

    /// Finishes the hashing (once) and reads one digest.
    fn hex(&mut self, algo: Algo) -> String {
        if let Some(h) = self.hasher.take() {
            self.done = h.finish();
        }
        self.done.iter().find(|(a, _)| *a == algo).map(|(_, h)| h.clone()).expect("hashed what was asked for")
    }
}

/// Reads `head`, then `rest`, hashing every byte that passes.
struct Tee<'a, 'h> {
    head: std::io::Cursor<Vec<u8>>,
    rest: Box<dyn std::io::Read + 'a>,
    hashers: &'h mut Hashers,
}

impl std::io::Read for Tee<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.head.read(buf)?;
        if n == 0 {
            n = self.rest.read(buf)?;
        }
        self.hashers.update(&buf[..n]);
        Ok(n)
    }
}

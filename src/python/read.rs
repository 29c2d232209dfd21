//! Reading and writing from Python, and the IDX facts the Python layer asks for.
//!
//! `read` is the one read call: `Request`s in (a source, a `Mode`, the digests it must have as
//! `Expected`, the `Kind`s to report), one `Outcome` per request out (or, with
//! `errors=Errors.RETURN`, the exception it raised). It works in three steps: `parse` turns the
//! requests into the engine's (every source held for the call: a path, bytes, or any object with
//! the buffer protocol, read in place); `allocate` lets numpy allocate each array (with the GIL)
//! once the engine has opened its source and judged its header (without it); `collect` turns
//! what the engine finished (without the GIL) into outcomes.

use std::path::PathBuf;

use numpy::npyffi::PY_ARRAY_API;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString, PyTuple};

use super::arrays;
use super::errors::{guarded, to_py, usage};
use super::exit::detach;
use crate::codec::Codec as EngineCodec;
use crate::digest::{DigestKind, Expected as EngineExpected, Verdict as Judged};
use crate::element::ElementType;
use crate::idx::{self, Header};
use crate::reader::{self, Mode as EngineMode, Opened, Outcome as Read, Request as EngineRequest, Source};
use crate::writer;
use crate::Error;

/// What to make of a source: its IDX array, only its digests, or its stored bytes.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "fmnist._core")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    #[pyo3(name = "ARRAY")]
    Array,
    #[pyo3(name = "DIGESTS")]
    Digests,
    #[pyo3(name = "STORED")]
    Stored,
}

impl From<Mode> for EngineMode {
    fn from(m: Mode) -> EngineMode {
        match m {
            Mode::Array => EngineMode::Array,
            Mode::Digests => EngineMode::Digests,
            Mode::Stored => EngineMode::Stored,
        }
    }
}

/// A kind of digest: an algorithm over the stored bytes or over the decompressed content.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "fmnist._core")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    #[pyo3(name = "MD5")]
    Md5,
    #[pyo3(name = "SHA256")]
    Sha256,
    #[pyo3(name = "CONTENT_MD5")]
    ContentMd5,
    #[pyo3(name = "CONTENT_SHA256")]
    ContentSha256,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Md5, Kind::Sha256, Kind::ContentMd5, Kind::ContentSha256];

    fn engine(self) -> DigestKind {
        match self {
            Kind::Md5 => DigestKind::MD5,
            Kind::Sha256 => DigestKind::SHA256,
            Kind::ContentMd5 => DigestKind::CONTENT_MD5,
            Kind::ContentSha256 => DigestKind::CONTENT_SHA256,
        }
    }

    fn of(kind: DigestKind) -> Kind {
        *Kind::ALL.iter().find(|k| k.engine() == kind).expect("every engine kind has its Kind")
    }
}

#[pymethods]
impl Kind {
    /// The name the public API gives it: "md5", "sha256", "content_md5", "content_sha256".
    #[getter]
    fn key(&self) -> String {
        self.engine().to_string()
    }
}

/// How a source was stored.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "fmnist._core")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    #[pyo3(name = "RAW")]
    Raw,
    #[pyo3(name = "GZIP")]
    Gzip,
    #[pyo3(name = "XZ")]
    Xz,
}

#[pymethods]
impl Codec {
    /// Its name: "raw", "gzip" or "xz".
    #[getter]
    fn key(&self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Gzip => "gzip",
            Codec::Xz => "xz",
        }
    }
}

impl Codec {
    fn of(c: EngineCodec) -> Codec {
        match c {
            EngineCodec::Raw => Codec::Raw,
            EngineCodec::Gzip => Codec::Gzip,
            EngineCodec::Xz => Codec::Xz,
        }
    }
}

/// What `read` does with a source that fails: raise the first such error, or put each in its
/// source's place among the outcomes.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "fmnist._core")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errors {
    #[pyo3(name = "RAISE")]
    Raise,
    #[pyo3(name = "RETURN")]
    Return,
}

/// A digest a source must have: its kind, its hex value, and whose value it is (for messages:
/// "the registry's", ...; None: the caller's own). The hex is checked when it is read, so that
/// a malformed one is an error naming the source.
#[pyclass(frozen, get_all, from_py_object, module = "fmnist._core")]
#[derive(Clone)]
pub struct Expected {
    kind: Kind,
    hex: String,
    whose: Option<String>,
}

#[pymethods]
impl Expected {
    #[new]
    #[pyo3(signature = (kind, hex, whose=None))]
    fn new(kind: Kind, hex: String, whose: Option<String>) -> Expected {
        Expected { kind, hex, whose }
    }

    fn __repr__(&self) -> String {
        format!("Expected({}, {:?}, whose={:?})", self.kind.key(), self.hex, self.whose)
    }
}

/// One source to read, and what is required of it: `read`'s options, one object a source.
/// `source`: a path (str: any path `open()` takes), bytes or any object with the buffer protocol
/// (read in place, held for the call), or (buffer, name) for the contents of a named file object.
#[pyclass(frozen, get_all, module = "fmnist._core")]
pub struct Request {
    source: Py<PyAny>,
    mode: Mode,
    expected: Vec<Expected>,
    report: Vec<Kind>,
}

#[pymethods]
impl Request {
    #[new]
    #[pyo3(signature = (source, mode=Mode::Array, expected=Vec::new(), report=Vec::new()))]
    fn new(source: Py<PyAny>, mode: Mode, expected: Vec<Expected>, report: Vec<Kind>) -> Request {
        Request { source, mode, expected, report }
    }
}

/// A source as Python passed it, held for the call.
enum Arg<'py> {
    /// The path, and the `str` it came as (messages and `OSError.filename` use it as given).
    Path(PathBuf, Bound<'py, PyString>),
    /// Bytes in memory, and the name of the file object they were read from, if it had one.
    Bytes(Bound<'py, PyBytes>, Option<String>),
    /// Any other buffer, as a uint8 array over its memory (numpy holds the buffer export for
    /// the array's life: the caller's object cannot be resized or closed during the call).
    Buffer(Bound<'py, PyUntypedArray>, Option<String>),
}

/// A uint8 array over the memory of `obj`, an object with the buffer protocol (no copy); a
/// clear TypeError for anything else, or for a buffer that is not contiguous.
fn buffer_of<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let view = py.import("builtins")?.getattr("memoryview")?.call1((obj,)).map_err(|_| {
        PyTypeError::new_err(format!(
            "source must be a path, a binary file object or a bytes-like object, not {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    if !view.getattr("c_contiguous")?.is_truthy()? {
        let shape = view.getattr("shape")?.repr()?;
        let strides = view.getattr("strides")?.repr()?;
        return Err(PyTypeError::new_err(format!(
            "source is a buffer that is not contiguous (shape {shape}, strides {strides}): read from bytes(...) \
             or numpy.ascontiguousarray(...) of it"
        )));
    }
    if view.getattr("nbytes")?.extract::<usize>()? == 0 {
        return arrays::new_array(py, ElementType::U8, &[0]);
    }
    let descr = arrays::descr(py, ElementType::U8)?.into_dtype_ptr();
    // SAFETY: `view` is a live memoryview (contiguous: checked); numpy takes a reference to the
    // dtype (stolen), requests the buffer, and returns a new array over it that keeps the
    // buffer exported for its life, or null with an exception set.
    let array =
        unsafe { Bound::from_owned_ptr_or_err(py, PY_ARRAY_API.PyArray_FromBuffer(py, view.as_ptr(), descr, -1, 0))? };
    Ok(array.cast_into::<PyUntypedArray>()?)
}

impl<'py> Arg<'py> {
    fn new(obj: &Bound<'py, PyAny>) -> PyResult<Arg<'py>> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Arg::Path(s.extract::<PathBuf>()?, s.clone()));
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Arg::Bytes(b.clone(), None));
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            if let Ok((data, name)) = t.extract::<(Bound<'py, PyAny>, String)>() {
                return Ok(match data.cast::<PyBytes>() {
                    Ok(b) => Arg::Bytes(b.clone(), Some(name)),
                    Err(_) => Arg::Buffer(buffer_of(&data)?, Some(name)),
                });
            }
        }
        Ok(Arg::Buffer(buffer_of(obj)?, None))
    }

    fn source(&self) -> Source<'_> {
        match self {
            Arg::Path(p, _) => Source::Path(p),
            Arg::Bytes(b, _) => Source::Bytes(b.as_bytes()),
            // SAFETY: a C-contiguous uint8 array over the caller's buffer, held (and the buffer
            // exported) for the whole call; only read.
            Arg::Buffer(a, _) => Source::Bytes(unsafe { arrays::bytes_of(a) }),
        }
    }

    /// How messages name this source.
    fn name(&self) -> String {
        match self {
            Arg::Path(_, s) => s.to_string_lossy().into_owned(),
            Arg::Bytes(_, Some(name)) | Arg::Buffer(_, Some(name)) => name.clone(),
            Arg::Bytes(b, None) => format!("<{} bytes in memory>", b.as_bytes().len()),
            Arg::Buffer(a, None) => format!("<{} bytes in memory>", a.len()),
        }
    }

    fn error(&self, py: Python<'py>, e: Error) -> PyErr {
        let path = match self {
            Arg::Path(_, s) => Some(s),
            _ => None,
        };
        to_py(py, e, &self.name(), path)
    }
}

/// numpy's dimension limit: 64 from numpy 2 on, 32 before.
fn max_ndim(py: Python<'_>) -> usize {
    if numpy::npyffi::is_numpy_2(py) {
        64
    } else {
        32
    }
}

/// `max_bytes` as given: None, or an int from 0 to sys.maxsize (not a bool).
pub fn max_bytes_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(v) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    let ok = !v.is_instance_of::<PyBool>() && v.is_instance_of::<PyInt>();
    match ok.then(|| v.extract::<usize>().ok().filter(|&n| n <= isize::MAX as usize)).flatten() {
        Some(n) => Ok(Some(n)),
        None => Err(PyValueError::new_err(format!(
            "max_bytes must be an int from 0 to {}, or None; not {}",
            isize::MAX,
            v.repr()?
        ))),
    }
}

/// One verdict on an expected digest, as Python sees it.
#[pyclass(frozen, get_all, module = "fmnist._core")]
pub struct Verdict {
    /// The kind asked for.
    kind: Kind,
    /// "md5" or "sha256" (hashlib's names).
    algorithm: String,
    /// What was hashed: "stored" or "content" (always "stored" for an uncompressed source).
    covers: String,
    expected: String,
    actual: String,
    matched: bool,
    /// Whose value was expected, as the caller named it (None: the caller's own).
    whose: Option<String>,
    /// The judgement in words: what matched, or the mismatch (expected, found).
    message: String,
}

impl Verdict {
    fn new(v: &Judged) -> Verdict {
        let kind = v.expected.kind;
        Verdict {
            kind: Kind::of(kind),
            algorithm: kind.algo.key().to_string(),
            covers: kind.covers.of(v.codec).name().to_string(),
            expected: v.expected.hex.clone(),
            actual: v.actual.clone(),
            matched: v.matched(),
            whose: v.expected.from.clone(),
            message: v.message(),
        }
    }
}

#[pymethods]
impl Verdict {
    fn __repr__(&self) -> String {
        format!("Verdict({}: {})", self.kind.key(), self.message)
    }
}

/// What reading one source gave.
#[pyclass(frozen, get_all, module = "fmnist._core")]
pub struct Outcome {
    /// The array (`Mode.ARRAY`), else None.
    array: Option<Py<PyAny>>,
    /// The stored bytes (`Mode.STORED`), else None.
    stored: Option<Py<PyBytes>>,
    codec: Codec,
    /// The IDX header's element type (numpy's name) and dimensions (`Mode.ARRAY`), else None.
    dtype: Option<String>,
    shape: Option<Vec<usize>>,
    /// Every digest asked for (expected or reported): `Kind` -> hex.
    digests: Py<PyDict>,
    /// One per expected digest, in order (stored digests first).
    verdicts: Vec<Py<Verdict>>,
}

#[pymethods]
impl Outcome {
    fn __repr__(&self) -> String {
        let name = self.codec.key();
        format!(
            "Outcome(codec={name}, dtype={:?}, shape={:?}, {} verdicts)",
            self.dtype,
            self.shape,
            self.verdicts.len()
        )
    }
}

/// Step 1: each request's source, held for the call (a bad one is the call's TypeError).
fn parse<'py>(py: Python<'py>, requests: &[PyRef<'py, Request>]) -> PyResult<Vec<Arg<'py>>> {
    requests.iter().map(|r| Arg::new(r.source.bind(py))).collect()
}

/// The engine's request for `r` over `arg`'s source; a malformed expected digest is an error
/// naming the source.
fn engine_request<'a>(
    py: Python<'_>,
    r: &Request,
    arg: &'a Arg<'_>,
    strict: bool,
    max_bytes: Option<usize>,
) -> PyResult<EngineRequest<'a>> {
    let mut req = EngineRequest::new(arg.source(), r.mode.into());
    req.strict = strict;
    req.max_bytes = max_bytes;
    req.max_ndim = max_ndim(py);
    for e in &r.expected {
        req.expected.push(EngineExpected::new(e.kind.engine(), &e.hex, e.whose.clone()).map_err(|e| arg.error(py, e))?);
    }
    req.report = r.report.iter().map(|k| k.engine()).collect();
    Ok(req)
}

/// Where the engine writes one source's output: a numpy array (an IDX payload) or a bytes
/// object (stored bytes), allocated by Python, with the GIL.
enum Output<'py> {
    Array(Bound<'py, PyUntypedArray>),
    Stored(Bound<'py, PyBytes>),
}

/// Step 2: the output an opened source needs, allocated by numpy (or CPython, for stored bytes)
/// with the GIL; a refused allocation is `MemoryError` naming the source and what it was for.
fn allocate<'py>(py: Python<'py>, arg: &Arg<'py>, op: &Opened<'_>) -> PyResult<Option<Output<'py>>> {
    let len = op.output_len();
    match op.header() {
        None if op.fills_stored() => {
            Ok(Some(Output::Stored(uninit_bytes(py, len).map_err(|_| {
                arg.error(py, Error::Memory(format!("cannot allocate {len} bytes for the stored file")))
            })?)))
        }
        None => Ok(None),
        Some(h) => match arrays::new_array(py, h.dtype, &[len.div_ceil(h.dtype.size())]) {
            Ok(a) => Ok(Some(Output::Array(a))),
            Err(e) if e.is_instance_of::<PyMemoryError>(py) => {
                Err(arg.error(py, Error::Memory(format!("cannot allocate {} bytes for {h}", h.payload_len))))
            }
            Err(e) => Err(e),
        },
    }
}

/// The memory of a freshly allocated output, for the engine to fill.
fn memory_of<'a>(out: &Output<'_>, len: usize) -> &'a mut [u8] {
    match out {
        // SAFETY: a fresh C-contiguous array nobody else has seen; it is kept until the engine
        // is done writing.
        Output::Array(a) => unsafe { &mut arrays::bytes_mut(a)[..len] },
        // SAFETY: a fresh bytes object of `len` bytes nobody else has seen, kept likewise.
        Output::Stored(b) => unsafe {
            std::slice::from_raw_parts_mut(pyo3::ffi::PyBytes_AsString(b.as_ptr()).cast::<u8>(), len)
        },
    }
}

/// Step 3: the outcome of a finished source, its array given the header's shape.
fn collect<'py>(
    py: Python<'py>,
    arg: &Arg<'py>,
    mode: Mode,
    output: Option<Output<'py>>,
    r: Read,
) -> PyResult<Bound<'py, PyAny>> {
    let digests = PyDict::new(py);
    for d in &r.digests {
        digests.set_item(Kind::of(d.kind), &d.hex)?;
    }
    let (array, stored) = match (output, &r.header) {
        (Some(Output::Array(a)), Some(h)) => {
            arrays::resize(&a, &h.dims)?;
            (Some(a.into_any().unbind()), None)
        }
        (Some(Output::Stored(b)), _) => (None, Some(b.unbind())),
        // The caller's own bytes, or (from a pipe) the engine's.
        (None, _) if mode == Mode::Stored => match (arg, r.stored) {
            (Arg::Bytes(b, _), _) => (None, Some(b.clone().unbind())),
            (_, Some(v)) => (None, Some(PyBytes::new(py, &v).unbind())),
            (Arg::Buffer(a, _), None) => {
                // SAFETY: the caller's buffer, held for the call; copied into a bytes object.
                (None, Some(PyBytes::new(py, unsafe { arrays::bytes_of(a) }).unbind()))
            }
            (Arg::Path(..), None) => (None, None),
        },
        _ => (None, None),
    };
    let outcome = Outcome {
        array,
        stored,
        codec: Codec::of(r.codec),
        dtype: r.header.as_ref().map(|h| h.dtype.name().to_string()),
        shape: r.header.map(|h| h.dims),
        digests: digests.unbind(),
        verdicts: r.verdicts.iter().map(|v| Py::new(py, Verdict::new(v))).collect::<PyResult<_>>()?,
    };
    Ok(Bound::new(py, outcome)?.into_any())
}

/// read(requests, *, strict=True, max_bytes=None, errors=Errors.RAISE) -> one Outcome per
/// request, in order.
///
/// strict: a mismatch of an expected digest is a ChecksumError (else each is judged in
/// `Outcome.verdicts`). Many requests are read at once, largest first, on every core (an
/// archive hashed on one core while its members are decoded on the others).
#[pyfunction]
#[pyo3(signature = (requests, *, strict=true, max_bytes=None, errors=Errors::Raise))]
pub fn read<'py>(
    py: Python<'py>,
    requests: Vec<PyRef<'py, Request>>,
    strict: bool,
    max_bytes: Option<Bound<'py, PyAny>>,
    errors: Errors,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    guarded("read", || {
        let max_bytes = max_bytes_arg(max_bytes.as_ref())?;
        let args = parse(py, &requests)?;
        let n = args.len();
        let mut results: Vec<Option<PyResult<Bound<'py, PyAny>>>> = (0..n).map(|_| None).collect();
        let mut engine = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        for (i, (r, arg)) in requests.iter().zip(&args).enumerate() {
            match engine_request(py, r, arg, strict, max_bytes) {
                Ok(req) => {
                    engine.push(req);
                    slots.push(i);
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let opened = detach(py, || reader::open_many(&engine));
        let mut outputs: Vec<Option<Output<'py>>> = (0..n).map(|_| None).collect();
        let mut jobs = Vec::new();
        let mut finishing = Vec::new();
        for (&i, o) in slots.iter().zip(opened) {
            let op = match o {
                Err(e) => {
                    results[i] = Some(Err(args[i].error(py, e)));
                    continue;
                }
                Ok(op) => op,
            };
            match allocate(py, &args[i], &op) {
                Err(e) => results[i] = Some(Err(e)),
                Ok(out) => {
                    let memory = out.as_ref().map(|o| memory_of(o, op.output_len()));
                    outputs[i] = out;
                    jobs.push((op, memory));
                    finishing.push(i);
                }
            }
        }
        let finished = detach(py, || reader::finish_many(jobs));
        for (i, r) in finishing.into_iter().zip(finished) {
            results[i] = Some(match r {
                Err(e) => Err(args[i].error(py, e)),
                Ok(r) => collect(py, &args[i], requests[i].mode, outputs[i].take(), r),
            });
        }
        let mut out = Vec::with_capacity(n);
        for r in results {
            match r.expect("every request has a result") {
                Ok(o) => out.push(o),
                Err(e) if errors == Errors::Raise => return Err(e),
                Err(e) => out.push(e.into_value(py).into_bound(py).into_any()),
            }
        }
        Ok(out)
    })
}

/// A new bytes object of `len` bytes, not initialised, and its memory: filled (with the GIL
/// released) before anyone else sees it, as CPython allows for a fresh `PyBytes_FromStringAndSize(NULL, n)`.
fn uninit_bytes<'py>(py: Python<'py>, len: usize) -> PyResult<Bound<'py, PyBytes>> {
    let size = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyMemoryError::new_err(format!("cannot allocate {len} bytes")))?;
    // SAFETY: a null source asks CPython for an uninitialised object of `size` bytes; the
    // result is a new reference or null with MemoryError set.
    let obj =
        unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size))? };
    Ok(obj.cast_into::<PyBytes>()?)
}

/// `compress` as `write_idx` takes it: False, True, "gzip", "xz", or a gzip level 0-9.
fn compress_arg(compress: &Bound<'_, PyAny>) -> PyResult<writer::Compress> {
    if let Ok(b) = compress.cast::<PyBool>() {
        return Ok(if b.is_true() { writer::Compress::Gzip(6) } else { writer::Compress::None });
    }
    if let Ok(s) = compress.extract::<String>() {
        match s.as_str() {
            "gzip" => return Ok(writer::Compress::Gzip(6)),
            "xz" => return Ok(writer::Compress::Xz(6)),
            _ => {}
        }
    }
    if compress.is_instance_of::<PyInt>() {
        if let Ok(level @ 0..=9) = compress.extract::<i32>() {
            return Ok(writer::Compress::Gzip(level));
        }
    }
    Err(PyValueError::new_err(format!(
        "compress must be a bool, a gzip level 0-9, 'gzip' or 'xz', not {}",
        compress.repr()?
    )))
}

/// encode_idx(array, compress=False) -> bytes: the IDX file for `array` (any layout, any byte
/// order; written in C order, big-endian), gzip-compressed (True, "gzip", or a level 0-9) or
/// xz-compressed ("xz": preset 6, CRC64). A dtype IDX cannot hold is a TypeError.
#[pyfunction]
#[pyo3(signature = (array, compress=None))]
pub fn encode_idx<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    compress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    guarded("encode_idx", || {
        let compress = match compress {
            Some(c) => compress_arg(c)?,
            None => writer::Compress::None,
        };
        let np = py.import("numpy")?;
        let array = np.call_method1("asarray", (array,))?;
        let cannot = |dtype: String| {
            PyTypeError::new_err(format!(
                "IDX cannot hold an array of dtype {dtype}: use uint8, int8, int16, int32, float32 or float64"
            ))
        };
        let untyped = array.cast::<PyUntypedArray>()?;
        let ty = match arrays::element_type_of(untyped) {
            Ok((ty, _)) if ty.idx_code().is_some() => ty,
            _ => return Err(cannot(untyped.dtype().to_string())),
        };
        // In C order and native byte order (a copy only when it is not so already).
        let native = np.call_method1("ascontiguousarray", (&array, ty.name()))?;
        let native = native.cast::<PyUntypedArray>()?;
        let dims = native.shape().to_vec();
        // SAFETY: a C-contiguous array we hold a reference to for the whole call; only read.
        let payload = unsafe { arrays::bytes_of(native) };
        let encoded = detach(py, || writer::encode(ty, dims, payload, compress)).map_err(|e| match e {
            Error::Usage(m) | Error::Format(m) => PyValueError::new_err(m),
            Error::Memory(m) => PyMemoryError::new_err(m),
            e => usage(e),
        })?;
        Ok(PyBytes::new(py, &encoded))
    })
}

/// The element type an IDX fact is asked about, by numpy name.
fn idx_type(dtype: &str) -> PyResult<ElementType> {
    ElementType::from_name(dtype).filter(|t| t.idx_code().is_some()).ok_or_else(|| {
        PyValueError::new_err(format!("IDX holds uint8, int8, int16, int32, float32 or float64, not {dtype:?}"))
    })
}

fn header_of(dtype: &str, shape: Vec<usize>) -> PyResult<Header> {
    Header::new(idx_type(dtype)?, shape).map_err(usage)
}

/// idx_header(dtype, shape) -> bytes: the IDX header of a file of that type and shape.
#[pyfunction]
pub fn idx_header<'py>(py: Python<'py>, dtype: &str, shape: Vec<usize>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &header_of(dtype, shape)?.encode()))
}

/// idx_size(dtype, shape) -> (header bytes, payload bytes): an IDX file's length is their sum.
#[pyfunction]
pub fn idx_size(dtype: &str, shape: Vec<usize>) -> PyResult<(usize, usize)> {
    let h = header_of(dtype, shape)?;
    Ok((h.header_len(), h.payload_len))
}

/// max_compressed_size(dtype, shape) -> the most stored bytes any gzip or xz of such a file needs.
#[pyfunction]
pub fn max_compressed_size(dtype: &str, shape: Vec<usize>) -> PyResult<usize> {
    Ok(idx::max_compressed_len(&header_of(dtype, shape)?))
}

/// The type table, for the Python layer: (IDX code or None, numpy name, item size) per type.
pub fn element_types(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    let rows: Vec<(Option<u8>, &str, usize)> =
        ElementType::ALL.iter().map(|t| (t.idx_code(), t.name(), t.size())).collect();
    PyTuple::new(py, rows)
}

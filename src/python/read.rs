//! Reading and writing from Python, and the IDX facts the Python layer asks for.
//!
//! `read` is the one read call: sources (paths, bytes, a file object's bytes and name) in,
//! one `Outcome` per source out (or the exception it raised). Sources are opened with the GIL
//! released, their arrays allocated by numpy with it, then filled and hashed without it.

use std::path::PathBuf;

use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString, PyTuple};

use super::arrays;
use super::errors::{guarded, to_py, usage};
use super::exit::detach;
use crate::element::ElementType;
use crate::idx::{self, Header};
use crate::reader::{self, DigestKind, Expected, Mode, Outcome as Read, Request, Source, Verdict as Judged};
use crate::writer;
use crate::Error;

/// A source as Python passed it: a path (str, surrogate-escaped bytes allowed: any path `open()`
/// takes), bytes, or (bytes, name) for the contents of a named file object. The Python layer
/// normalises os.PathLike, file objects and other bytes-like objects to these.
enum Arg<'py> {
    /// The path, and the `str` it came as (messages and `OSError.filename` use it as given).
    Path(PathBuf, Bound<'py, PyString>),
    /// Bytes in memory, and the name of the file object they were read from, if it had one.
    Bytes(Bound<'py, PyBytes>, Option<String>),
}

impl<'py> Arg<'py> {
    fn new(obj: &Bound<'py, PyAny>) -> PyResult<Arg<'py>> {
        if let Ok(s) = obj.cast::<PyString>() {
            Ok(Arg::Path(s.extract::<PathBuf>()?, s.clone()))
        } else if let Ok(b) = obj.cast::<PyBytes>() {
            Ok(Arg::Bytes(b.clone(), None))
        } else if let Ok((b, name)) = obj.extract::<(Bound<'py, PyBytes>, String)>() {
            Ok(Arg::Bytes(b, Some(name)))
        } else {
            Err(PyTypeError::new_err(format!("source must be a path (str) or bytes, not {}", obj.get_type().name()?)))
        }
    }

    fn source(&self) -> Source<'_> {
        match self {
            Arg::Path(p, _) => Source::Path(p),
            Arg::Bytes(b, _) => Source::Bytes(b.as_bytes()),
        }
    }

    /// How messages name this source.
    fn name(&self) -> String {
        match self {
            Arg::Path(_, s) => s.to_string_lossy().into_owned(),
            Arg::Bytes(_, Some(name)) => name.clone(),
            Arg::Bytes(b, None) => format!("<{} bytes in memory>", b.as_bytes().len()),
        }
    }

    fn error(&self, py: Python<'py>, e: Error) -> PyErr {
        let path = match self {
            Arg::Path(_, s) => Some(s),
            Arg::Bytes(..) => None,
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
    /// "md5", "sha256", "content_md5" or "content_sha256": the kind asked for.
    kind: String,
    /// "md5" or "sha256".
    algorithm: String,
    /// What was hashed: "stored" or "content" (always "stored" for an uncompressed source).
    covers: String,
    expected: String,
    actual: String,
    matched: bool,
    /// Whose value was expected, as the caller named it (None: the caller's own).
    source: Option<String>,
    /// The judgement in words: what matched, or the mismatch (expected, found).
    message: String,
}

impl Verdict {
    fn new(v: &Judged) -> Verdict {
        let kind = v.expected.kind;
        Verdict {
            kind: kind.to_string(),
            algorithm: kind.algo.key().to_string(),
            covers: if v.codec.is_compressed() { kind.covers.name() } else { "stored" }.to_string(),
            expected: v.expected.hex.clone(),
            actual: v.actual.clone(),
            matched: v.matched(),
            source: v.expected.from.clone(),
            message: v.message(),
        }
    }
}

#[pymethods]
impl Verdict {
    fn __repr__(&self) -> String {
        format!("Verdict({}: {})", self.kind, self.message)
    }
}

/// What reading one source gave.
#[pyclass(frozen, get_all, module = "fmnist._core")]
pub struct Outcome {
    /// The array (mode "array"), else None.
    array: Option<Py<PyAny>>,
    /// The stored bytes (mode "stored"), else None.
    stored: Option<Py<PyBytes>>,
    /// "raw", "gzip" or "xz".
    codec: String,
    /// The IDX header's element type (numpy's name) and dimensions (mode "array"), else None.
    dtype: Option<String>,
    shape: Option<Vec<usize>>,
    /// Every digest asked for (expected or reported): kind -> hex.
    digests: Py<PyDict>,
    /// One per expected digest, in order (stored digests first).
    verdicts: Vec<Py<Verdict>>,
}

#[pymethods]
impl Outcome {
    /// Whether every expected digest matched (True when none was expected).
    #[getter]
    fn all_matched(&self) -> bool {
        self.verdicts.iter().all(|v| v.get().matched)
    }

    /// Whether at least one expected digest matched.
    #[getter]
    fn any_matched(&self) -> bool {
        self.verdicts.iter().any(|v| v.get().matched)
    }

    fn __repr__(&self) -> String {
        format!(
            "Outcome(codec={:?}, dtype={:?}, shape={:?}, {} verdicts)",
            self.codec,
            self.dtype,
            self.shape,
            self.verdicts.len()
        )
    }
}

fn outcome<'py>(
    py: Python<'py>,
    r: Read,
    array: Option<Bound<'py, PyAny>>,
    bytes: Option<Bound<'py, PyBytes>>,
) -> PyResult<Outcome> {
    let digests = PyDict::new(py);
    for d in &r.digests {
        digests.set_item(d.kind.to_string(), &d.hex)?;
    }
    Ok(Outcome {
        array: array.map(Bound::unbind),
        stored: bytes.map(Bound::unbind).or_else(|| r.stored.map(|b| PyBytes::new(py, &b).unbind())),
        codec: r.codec.name().to_string(),
        dtype: r.header.as_ref().map(|h| h.dtype.name().to_string()),
        shape: r.header.map(|h| h.dims),
        digests: digests.unbind(),
        verdicts: r.verdicts.iter().map(|v| Py::new(py, Verdict::new(v))).collect::<PyResult<_>>()?,
    })
}

/// The digests expected of one source: (kind, hex, whose value or None) triples.
type ExpectedArg = Vec<(String, String, Option<String>)>;

/// read(sources, mode="array", expected=None, report=None, strict=True, max_bytes=None,
/// errors="raise") -> one Outcome per source, in order.
///
/// mode: "array" (decode the IDX payload), "digests" (hash only, nothing decoded is kept) or
/// "stored" (return the stored bytes); one for all sources, or a list of one per source (an
/// archive hashed on one core while its members are decoded on the others). expected[i]: the digests source i must have (strict: a
/// mismatch is a ChecksumError; else each is judged in `Outcome.verdicts`); report[i]: digest
/// kinds to compute without a check. errors="raise" raises the error of the first failing
/// source; "return" puts it in that source's place.
#[pyfunction]
#[pyo3(signature = (sources, mode=None, expected=None, report=None, strict=true, max_bytes=None, errors="raise"))]
#[allow(clippy::too_many_arguments)]
pub fn read<'py>(
    py: Python<'py>,
    sources: Vec<Bound<'py, PyAny>>,
    mode: Option<Bound<'py, PyAny>>,
    expected: Option<Vec<ExpectedArg>>,
    report: Option<Vec<Vec<String>>>,
    strict: bool,
    max_bytes: Option<Bound<'py, PyAny>>,
    errors: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    guarded("read", || {
        let parse = |m: &str| match m {
            "array" => Ok(Mode::Array),
            "digests" => Ok(Mode::Digests),
            "stored" => Ok(Mode::Stored),
            _ => Err(PyValueError::new_err(format!("mode must be 'array', 'digests' or 'stored', not {m:?}"))),
        };
        let raise = match errors {
            "raise" => true,
            "return" => false,
            _ => return Err(PyValueError::new_err(format!("errors must be 'raise' or 'return', not {errors:?}"))),
        };
        let n = sources.len();
        let modes: Vec<Mode> = match &mode {
            None => vec![Mode::Array; n],
            Some(m) => match m.extract::<String>() {
                Ok(one) => vec![parse(&one)?; n],
                Err(_) => m.extract::<Vec<String>>()?.iter().map(|s| parse(s)).collect::<PyResult<_>>()?,
            },
        };
        if modes.len() != n {
            return Err(PyValueError::new_err(format!("{n} sources but {} modes", modes.len())));
        }
        let expected = expected.unwrap_or_else(|| vec![Vec::new(); n]);
        let report = report.unwrap_or_else(|| vec![Vec::new(); n]);
        if expected.len() != n || report.len() != n {
            return Err(PyValueError::new_err(format!(
                "{n} sources but {} expected-digest lists and {} report lists",
                expected.len(),
                report.len()
            )));
        }
        let max_bytes = max_bytes_arg(max_bytes.as_ref())?;
        let args = sources.iter().map(Arg::new).collect::<PyResult<Vec<_>>>()?;
        let mut requests = Vec::with_capacity(n);
        for (((arg, exp), rep), &mode) in args.iter().zip(&expected).zip(&report).zip(&modes) {
            let mut req = Request::new(arg.source(), mode);
            req.strict = strict;
            req.max_bytes = max_bytes;
            req.max_ndim = max_ndim(py);
            for (kind, hex, from) in exp {
                let kind = kind.parse::<DigestKind>().map_err(usage)?;
                req.expected.push(Expected::new(kind, hex, from.clone()).map_err(|e| arg.error(py, e))?);
            }
            for kind in rep {
                req.report.push(kind.parse::<DigestKind>().map_err(usage)?);
            }
            requests.push(req);
        }
        let opened = detach(py, || reader::open_many(&requests));
        // numpy allocates every array (with the GIL), sized for what the engine will write.
        let mut results: Vec<Option<PyResult<Bound<'py, PyAny>>>> = (0..n).map(|_| None).collect();
        let mut arrays: Vec<Option<Bound<'py, PyUntypedArray>>> = (0..n).map(|_| None).collect();
        let mut stored: Vec<Option<Bound<'py, PyBytes>>> = (0..n).map(|_| None).collect();
        let mut jobs = Vec::new();
        let mut slots = Vec::new();
        for (i, o) in opened.into_iter().enumerate() {
            match o {
                Err(e) => results[i] = Some(Err(args[i].error(py, e))),
                Ok(op) => {
                    let buffer = match op.header() {
                        None if op.fills_stored() => match uninit_bytes(py, op.output_len()) {
                            Ok((b, bytes)) => {
                                stored[i] = Some(b);
                                Some(bytes)
                            }
                            Err(e) => {
                                results[i] = Some(Err(e));
                                continue;
                            }
                        },
                        None => None,
                        Some(h) => match allocate(py, h, op.output_len()) {
                            Ok(a) => {
                                // SAFETY: a fresh C-contiguous array nobody else has seen; it is
                                // kept in `arrays` until the engine is done writing.
                                let bytes = unsafe { arrays::bytes_mut(&a) };
                                arrays[i] = Some(a);
                                Some(&mut bytes[..op.output_len()])
                            }
                            Err(e) => {
                                let e = if e.is_instance_of::<pyo3::exceptions::PyMemoryError>(py) {
                                    let m = format!("cannot allocate {} bytes for {h}", h.payload_len);
                                    args[i].error(py, Error::Memory(m))
                                } else {
                                    e
                                };
                                results[i] = Some(Err(e));
                                continue;
                            }
                        },
                    };
                    jobs.push((op, buffer));
                    slots.push(i);
                }
            }
        }
        let finished = detach(py, || reader::finish_many(jobs));
        for (i, r) in slots.into_iter().zip(finished) {
            results[i] = Some(match r {
                Err(e) => Err(args[i].error(py, e)),
                Ok(r) => {
                    let array = match (arrays[i].take(), &r.header) {
                        (Some(a), Some(h)) => {
                            arrays::resize(&a, &h.dims)?;
                            Some(a.into_any())
                        }
                        _ => None,
                    };
                    // The stored bytes: read into the bytes object allocated above, the caller's own
                    // bytes, or (from a pipe) the engine's.
                    let bytes = match (stored[i].take(), &args[i]) {
                        (Some(b), _) => Some(b),
                        (None, Arg::Bytes(b, _)) if modes[i] == Mode::Stored => Some(b.clone()),
                        _ => None,
                    };
                    outcome(py, r, array, bytes).and_then(|o| Ok(Bound::new(py, o)?.into_any()))
                }
            });
        }
        let mut out = Vec::with_capacity(n);
        for r in results {
            match r.expect("every source has a result") {
                Ok(o) => out.push(o),
                Err(e) if raise => return Err(e),
                Err(e) => out.push(e.into_value(py).into_bound(py).into_any()),
            }
        }
        Ok(out)
    })
}

/// A new bytes object of `len` bytes, not initialised, and its memory: filled (with the GIL
/// released) before anyone else sees it, as CPython allows for a fresh `PyBytes_FromStringAndSize(NULL, n)`.
fn uninit_bytes<'py, 'a>(py: Python<'py>, len: usize) -> PyResult<(Bound<'py, PyBytes>, &'a mut [u8])> {
    let size = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyMemoryError::new_err(format!("cannot allocate {len} bytes")))?;
    // SAFETY: a null source asks CPython for an uninitialised object of `size` bytes; the
    // result is a new reference or null with MemoryError set.
    let obj =
        unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size))? };
    let bytes = obj.cast_into::<PyBytes>()?;
    // SAFETY: the object's buffer of `len` bytes (plus CPython's NUL), ours alone until returned;
    // the slice is used while `bytes` is kept alive by the caller.
    let data = unsafe { std::slice::from_raw_parts_mut(pyo3::ffi::PyBytes_AsString(bytes.as_ptr()).cast::<u8>(), len) };
    Ok((bytes, data))
}

/// A 1-D array of `header`'s type with room for `bytes` bytes (at least the payload), allocated
/// by numpy; `resize` gives it the header's shape once filled.
fn allocate<'py>(py: Python<'py>, header: &Header, bytes: usize) -> PyResult<Bound<'py, PyUntypedArray>> {
    arrays::new_array(py, header.dtype, &[bytes.div_ceil(header.dtype.size())])
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

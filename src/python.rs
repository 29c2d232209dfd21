//! The one door to Python: argument conversion, GIL release, numpy arrays and exceptions.
//! Everything here is a thin wrapper over an engine function with the same meaning.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use std::os::raw::{c_int, c_void};

use ndarray::{Array1, IxDyn};
use numpy::npyffi::{npy_intp, NpyTypes, PyArrayObject, NPY_ARRAY_CARRAY, NPY_ARRAY_OWNDATA, PY_ARRAY_API};
use numpy::{IntoPyArray, PyArrayDescrMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyImportError, PyMemoryError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::import_exception;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyWeakrefReference};

use crate::batches::{Buf, Normalize, Prefetch, Rows, RowsOf, Spec};
use crate::element::{Element, ElementType, IntoTyped};
use crate::idx::Header;
use crate::payload::{self, Payload};
use crate::reader::{self, Digest, DigestKind, Expect, Idx, Source};
use crate::writer;
use crate::Error;

create_exception!(
    fmnist,
    IdxFormatError,
    PyValueError,
    "Not IDX, or malformed IDX: magic, type code, sizes or length. The message names the source."
);
create_exception!(
    fmnist,
    ChecksumError,
    PyValueError,
    "A digest did not match: the message names the file, the algorithm, what was hashed, \
     expected and actual."
);
import_exception!(gzip, BadGzipFile);
import_exception!(lzma, LZMAError);

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
}

/// Maps an engine error to its Python class, naming the source.
fn to_py(err: Error, arg: &Arg<'_>) -> PyErr {
    let name = arg.name();
    match err {
        Error::Io(e) => match (e.raw_os_error(), arg) {
            (Some(code), Arg::Path(_, path)) => os_error(code, &e, path),
            _ => PyErr::from(e),
        },
        Error::Format(m) => IdxFormatError::new_err(format!("{name}: {m}")),
        Error::Gzip(m) => BadGzipFile::new_err(format!("{name}: {m}")),
        Error::Xz(m) => LZMAError::new_err(format!("{name}: {m}")),
        Error::Checksum(m) => ChecksumError::new_err(format!("{name}: {m}")),
        Error::Usage(m) => PyValueError::new_err(format!("{name}: {m}")),
        Error::Memory(m) => PyMemoryError::new_err(format!("{name}: {m}")),
    }
}

/// `OSError(errno, strerror, filename)`, as `open()` raises it: Python picks the subclass
/// (FileNotFoundError, PermissionError, ...) from the errno and sets `.errno` and `.filename`;
/// `strerror` is Python's own text for the errno (`os.strerror`).
#[cfg(not(windows))]
fn os_error(code: i32, _err: &std::io::Error, path: &Bound<'_, PyString>) -> PyErr {
    let strerror = path
        .py()
        .import("os")
        .and_then(|os| os.call_method1("strerror", (code,))?.extract::<String>())
        .unwrap_or_else(|_| format!("OS error {code}"));
    PyOSError::new_err((code, strerror, path.clone().unbind()))
}

/// On Windows the OS code is a Win32 error, not an errno: it goes in the fourth argument,
/// `winerror`, from which Python derives `.errno` and the subclass (as it does for `open()`).
#[cfg(windows)]
fn os_error(code: i32, err: &std::io::Error, path: &Bound<'_, PyString>) -> PyErr {
    PyOSError::new_err((0, err.to_string(), path.clone().unbind(), code))
}

/// Set by an `atexit` hook (registered when the module loads): the interpreter is shutting down.
static FINALIZING: AtomicBool = AtomicBool::new(false);
/// Threads between deciding to take the GIL back and holding it again.
static REACQUIRING: AtomicUsize = AtomicUsize::new(0);

/// The `atexit` hook. From now on a thread leaving `detach` parks instead of asking for the GIL;
/// the threads already asking get it first (the main thread lends it for up to a few seconds),
/// so that no fmnist frame is on a stack that CPython later ends with `pthread_exit`.
#[pyfunction]
fn _interpreter_exiting(py: Python<'_>) {
    FINALIZING.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while REACQUIRING.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        py.detach(|| std::thread::sleep(Duration::from_millis(1)));
    }
}

/// `py.detach(f)` for every call that releases the GIL. At interpreter exit, CPython (before
/// 3.14) ends a daemon thread that asks for the GIL with `pthread_exit`, whose forced unwind
/// through Rust frames aborts the process ("FATAL: exception not rethrown", at PyO3's
/// catch_unwind). A thread that finishes its work once exit has begun therefore never asks: it
/// parks until the process ends; one already asking is let through by the atexit hook.
fn detach<T: Send, F: Send + FnOnce() -> T>(py: Python<'_>, f: F) -> T {
    let out = py.detach(|| {
        let out = f();
        REACQUIRING.fetch_add(1, Ordering::SeqCst);
        if FINALIZING.load(Ordering::SeqCst) {
            REACQUIRING.fetch_sub(1, Ordering::SeqCst);
            loop {
                std::thread::park();
            }
        }
        out
    });
    REACQUIRING.fetch_sub(1, Ordering::SeqCst);
    out
}

fn usage(err: Error) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// What a read requires: the expected digests (kind, hex), `max_bytes`, and numpy's ndim limit.
fn expect<'a>(
    py: Python<'_>,
    digests: impl IntoIterator<Item = (DigestKind, Option<&'a str>)>,
    max_bytes: Option<usize>,
) -> Result<Expect, Error> {
    let mut e =
        Expect { max_bytes, max_ndim: Some(if numpy::npyffi::is_numpy_2(py) { 64 } else { 32 }), ..Expect::default() };
    for (kind, given) in digests {
        e.want(kind, given)?;
    }
    Ok(e)
}

// ---------------------------------------------------------------------------------------------
// Arrays that own their payload
//
// numpy (>= 1.22) frees an array's data with the memory handler recorded in the array. We give
// our arrays a handler whose functions are payload.rs's, so a payload inflated in place becomes
// the array's own memory: OWNDATA set, no base object, freed (or resized) by the allocator that
// made it.

#[repr(C)]
struct Allocator {
    ctx: *mut c_void,
    malloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    calloc: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    realloc: unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void, *mut c_void, usize),
}

/// numpy's PyDataMem_Handler.
#[repr(C)]
struct Handler {
    name: [u8; 127],
    version: u8,
    allocator: Allocator,
}

struct StaticHandler(Handler);
// SAFETY: the handler is immutable, its context pointer is null and never used.
unsafe impl Sync for StaticHandler {}

unsafe extern "C" fn handler_malloc(_: *mut c_void, size: usize) -> *mut c_void {
    payload::alloc(size, true)
}

unsafe extern "C" fn handler_calloc(_: *mut c_void, n: usize, size: usize) -> *mut c_void {
    n.checked_mul(size).map_or(std::ptr::null_mut(), |bytes| payload::alloc(bytes, true))
}

unsafe extern "C" fn handler_realloc(_: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    payload::realloc(ptr, size)
}

unsafe extern "C" fn handler_free(_: *mut c_void, ptr: *mut c_void, _size: usize) {
    payload::free(ptr)
}

const fn handler_name(name: &str) -> [u8; 127] {
    let mut out = [0u8; 127];
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

static HANDLER: StaticHandler = StaticHandler(Handler {
    name: handler_name("fmnist"),
    version: 1,
    allocator: Allocator {
        ctx: std::ptr::null_mut(),
        malloc: handler_malloc,
        calloc: handler_calloc,
        realloc: handler_realloc,
        free: handler_free,
    },
});

/// numpy's C API feature version 1.22: the first with memory handlers (and `mem_handler`).
const NPY_1_22_API_VERSION: u32 = 0x0000_000F;

/// The capsule numpy expects in an array's `mem_handler` field; made once, kept forever.
fn handler_capsule(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CAPSULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CAPSULE
        .get_or_try_init(py, || {
            // SAFETY: a plain query of the loaded numpy's C API version.
            let version = unsafe { PY_ARRAY_API.PyArray_GetNDArrayCFeatureVersion(py) };
            if version < NPY_1_22_API_VERSION {
                return Err(PyImportError::new_err(format!(
                    "fmnist needs numpy >= 1.22 (C API feature version 0x{NPY_1_22_API_VERSION:x}), \
                     this numpy has 0x{version:x}"
                )));
            }
            // SAFETY: HANDLER is a static, so the pointer outlives the capsule; the name is a
            // static C string, as PyCapsule_New requires.
            let ptr = unsafe {
                pyo3::ffi::PyCapsule_New(&HANDLER.0 as *const Handler as *mut c_void, c"mem_handler".as_ptr(), None)
            };
            // SAFETY: a new reference, or null with an exception set.
            unsafe { Bound::from_owned_ptr_or_err(py, ptr) }.map(Bound::unbind)
        })
        .map(|c| c.bind(py))
}

/// numpy's PyArrayObject_fields from 1.22 on (rust-numpy's PyArrayObject stops at weakreflist).
#[repr(C)]
struct ArrayFields {
    head: PyArrayObject,
    buffer_info: *mut c_void,
    mem_handler: *mut pyo3::ffi::PyObject,
}

fn payload_to_numpy<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    payload: Payload<T>,
    header: &Header,
) -> PyResult<Bound<'py, PyAny>> {
    let capsule = handler_capsule(py)?;
    let mut dims: Vec<npy_intp> = header.dims.iter().map(|&d| d as npy_intp).collect();
    let descr = T::get_dtype(py).into_dtype_ptr();
    let data = payload.into_raw() as *mut c_void;
    // SAFETY: descr is a new reference (stolen by the call); dims has nd entries; data points to
    // product(dims) elements of T, 16-byte aligned, that nobody else references.
    let array = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            PY_ARRAY_API.get_type_object(py, NpyTypes::PyArray_Type),
            descr,
            dims.len() as c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data,
            NPY_ARRAY_CARRAY,
            std::ptr::null_mut(),
        )
    };
    if array.is_null() {
        // SAFETY: numpy did not take the block; it is still ours to free.
        unsafe { payload::free(data) };
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a fresh array made from our pointer, which numpy left without a handler and
    // without OWNDATA; we hand it both, with a reference to the handler's capsule, so numpy
    // frees the block through payload::free when the array dies.
    unsafe {
        let fields = array as *mut ArrayFields;
        pyo3::ffi::Py_INCREF(capsule.as_ptr());
        (*fields).mem_handler = capsule.as_ptr();
        (*fields).head.flags |= NPY_ARRAY_OWNDATA;
        Ok(Bound::from_owned_ptr(py, array))
    }
}

fn to_numpy(py: Python<'_>, idx: Idx) -> PyResult<Bound<'_, PyAny>> {
    let h = &idx.header;
    crate::each_typed!(idx.data, p => payload_to_numpy(py, p, h))
}

/// The element type of a numpy array (native byte order): where the binding turns numpy's
/// runtime dtype into one of the engine's types, once.
fn element_type_of(array: &Bound<'_, PyUntypedArray>) -> PyResult<ElementType> {
    let code: String = array.dtype().getattr("str")?.extract()?;
    ElementType::from_numpy_code(code.trim_start_matches(['<', '|', '=']))
        .ok_or_else(|| PyTypeError::new_err(format!("unsupported element type {code:?}")))
}

/// Keeps a file mapping alive for as long as a numpy array (its base object) uses it.
#[cfg(unix)]
#[pyclass(frozen, module = "fmnist._core")]
struct MappedFile {
    _mapping: crate::mapping::Mapping, // unmapped when the last array over it dies
}

/// map_file(path) -> a 1-D uint8 array over the whole file, mapped copy-on-write (writeable;
/// writes stay private), holding no file descriptor; None for an empty file.
#[cfg(unix)]
#[pyfunction]
fn map_file(py: Python<'_>, path: PathBuf) -> PyResult<Option<Bound<'_, PyAny>>> {
    let name = PyString::new(py, &path.to_string_lossy());
    let mapping = match detach(py, || crate::mapping::Mapping::open(&path)) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(None),
        Err(e) => return Err(to_py(e, &Arg::Path(path.clone(), name))),
    };
    let mut dims = [mapping.len() as npy_intp];
    let data = mapping.as_ptr() as *mut c_void;
    let owner = Bound::new(py, MappedFile { _mapping: mapping })?;
    let descr = <u8 as numpy::Element>::get_dtype(py).into_dtype_ptr();
    // SAFETY: descr is a new reference (stolen); one dimension of `len` bytes at `data`, which
    // stays mapped while `owner` lives; the array takes `owner` as its base (a stolen reference),
    // so the mapping is dropped only after the last array or view of it.
    unsafe {
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            PY_ARRAY_API.get_type_object(py, NpyTypes::PyArray_Type),
            descr,
            1,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data,
            NPY_ARRAY_CARRAY,
            std::ptr::null_mut(),
        );
        let array = Bound::from_owned_ptr_or_err(py, array)?;
        if PY_ARRAY_API.PyArray_SetBaseObject(py, array.as_ptr() as *mut PyArrayObject, owner.into_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(Some(array))
    }
}

/// read_idx(source, md5=None, sha256=None, content_md5=None, content_sha256=None, max_bytes=None)
#[pyfunction]
#[pyo3(signature = (source, md5=None, sha256=None, content_md5=None, content_sha256=None, max_bytes=None))]
fn read_idx<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    md5: Option<&str>,
    sha256: Option<&str>,
    content_md5: Option<&str>,
    content_sha256: Option<&str>,
    max_bytes: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let arg = Arg::new(source)?;
    let given = [
        (DigestKind::MD5, md5),
        (DigestKind::SHA256, sha256),
        (DigestKind::CONTENT_MD5, content_md5),
        (DigestKind::CONTENT_SHA256, content_sha256),
    ];
    let expect = expect(py, given, max_bytes).map_err(usage)?;
    let src = arg.source();
    let idx = detach(py, || reader::read(src, &expect)).map_err(|e| to_py(e, &arg))?;
    to_numpy(py, idx)
}

/// read_idx_many(sources, digests, max_bytes=None): digests[i] maps digest kinds ("md5",
/// "sha256", "content_md5", "content_sha256") to the hex sources[i] must have. Raises the error
/// of the first failing source, in order.
#[pyfunction]
#[pyo3(signature = (sources, digests, max_bytes=None))]
fn read_idx_many<'py>(
    py: Python<'py>,
    sources: Vec<Bound<'py, PyAny>>,
    digests: Vec<HashMap<String, String>>,
    max_bytes: Option<usize>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if digests.len() != sources.len() {
        return Err(PyValueError::new_err(format!("{} sources but {} digest entries", sources.len(), digests.len())));
    }
    let args = sources.iter().map(Arg::new).collect::<PyResult<Vec<_>>>()?;
    let mut jobs = Vec::with_capacity(args.len());
    for (a, d) in args.iter().zip(&digests) {
        let kinds =
            d.iter().map(|(k, v)| Ok((k.parse::<DigestKind>()?, Some(v.as_str())))).collect::<Result<Vec<_>, Error>>();
        let e = kinds.and_then(|k| expect(py, k, max_bytes)).map_err(usage)?;
        jobs.push((a.source(), e));
    }
    let results = detach(py, || reader::read_many(&jobs));
    results.into_iter().zip(&args).map(|(r, a)| to_numpy(py, r.map_err(|e| to_py(e, a))?)).collect()
}

/// read_idx_digests(sources, wanted, max_bytes=None, decode=True) -> one outcome per source, in
/// order: `(array, {kind: hex}, compressed)`, or the exception reading it raised (returned, not
/// raised: one bad file does not hide the others). Computes (without checking) the digests
/// named in wanted[i]. With `decode=False` nothing is decoded into an array (it is None): the
/// digests are taken as the bytes stream past.
#[pyfunction]
#[pyo3(signature = (sources, wanted, max_bytes=None, decode=true))]
fn read_idx_digests<'py>(
    py: Python<'py>,
    sources: Vec<Bound<'py, PyAny>>,
    wanted: Vec<Vec<String>>,
    max_bytes: Option<usize>,
    decode: bool,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if wanted.len() != sources.len() {
        return Err(PyValueError::new_err(format!("{} sources but {} digest lists", sources.len(), wanted.len())));
    }
    let args = sources.iter().map(Arg::new).collect::<PyResult<Vec<_>>>()?;
    let kinds = wanted
        .iter()
        .map(|names| names.iter().map(|n| n.parse::<DigestKind>()).collect::<Result<Vec<_>, Error>>())
        .collect::<Result<Vec<_>, Error>>()
        .map_err(usage)?;
    let outcome = |r: Result<(Option<Idx>, Vec<Digest>, bool), Error>, a: &Arg<'py>| -> PyResult<Bound<'py, PyAny>> {
        match r {
            Err(e) => Ok(to_py(e, a).into_value(py).into_bound(py).into_any()),
            Ok((idx, computed, compressed)) => {
                let digests = PyDict::new(py);
                for d in computed {
                    digests.set_item(d.kind().to_string(), d.hex)?;
                }
                let array = match idx {
                    Some(idx) => to_numpy(py, idx)?,
                    None => py.None().into_bound(py),
                };
                Ok((array, digests, compressed).into_pyobject(py)?.into_any())
            }
        }
    };
    if !decode {
        let sources: Vec<Source<'_>> = args.iter().map(Arg::source).collect();
        let results =
            detach(py, || sources.iter().zip(&kinds).map(|(&s, k)| reader::digests_only(s, k)).collect::<Vec<_>>());
        return results.into_iter().zip(&args).map(|(r, a)| outcome(r.map(|(d, c)| (None, d, c)), a)).collect();
    }
    let mut jobs = Vec::with_capacity(args.len());
    for (a, ks) in args.iter().zip(&kinds) {
        let mut e = expect(py, [], max_bytes).map_err(usage)?;
        for &k in ks {
            e.report(k);
        }
        jobs.push((a.source(), e));
    }
    let results = detach(py, || reader::read_many(&jobs));
    results
        .into_iter()
        .zip(&args)
        .map(|(r, a)| {
            outcome(
                r.map(|mut idx| {
                    let digests = std::mem::take(&mut idx.digests);
                    let compressed = idx.compressed;
                    (Some(idx), digests, compressed)
                }),
                a,
            )
        })
        .collect()
}

fn encode_typed<T: Element + numpy::Element>(
    py: Python<'_>,
    array: &Bound<'_, PyAny>,
    compress: writer::Compress,
) -> PyResult<Vec<u8>> {
    let array = array.extract::<PyReadonlyArrayDyn<'_, T>>()?;
    let dims = array.shape().to_vec();
    let view = array.as_array();
    // Any layout: the view iterates in C order whatever the strides.
    detach(py, || writer::encode(dims, view.iter(), compress)).map_err(usage)
}

/// encode_idx(array, level=None, codec="gzip") -> bytes: the IDX file for a native-byte-order
/// array of one of the six IDX types; compressed when `level` is given: gzip at libdeflate's
/// `level`, or (codec="xz") xz at preset `level`.
#[pyfunction]
#[pyo3(signature = (array, level=None, codec="gzip"))]
fn encode_idx<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    level: Option<i32>,
    codec: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let compress = match (codec, level) {
        (_, None) => writer::Compress::None,
        ("gzip", Some(level)) => writer::Compress::Gzip(level),
        ("xz", Some(preset)) if (0..=9).contains(&preset) => writer::Compress::Xz(preset as u32),
        _ => {
            return Err(PyValueError::new_err(format!(
                "codec must be 'gzip' or 'xz' (an xz preset is 0-9): {codec:?}, level {level:?}"
            )))
        }
    };
    let cannot = || {
        PyTypeError::new_err(format!(
            "IDX cannot hold an array of dtype {}: use uint8, int8, int16, int32, float32 or float64",
            array.getattr("dtype").map(|d| d.to_string()).unwrap_or_default()
        ))
    };
    let ty =
        array.cast::<PyUntypedArray>().map_err(PyErr::from).and_then(|a| element_type_of(a)).map_err(|_| cannot())?;
    if ty.idx_code().is_none() {
        return Err(cannot());
    }
    let encoded = crate::with_element!(ty, T => encode_typed::<T>(py, array, compress))?;
    Ok(PyBytes::new(py, &encoded))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    handler_capsule(py)?; // fails the import on a numpy without memory handlers (< 1.22)
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The engine's element types, numpy dtype code -> IDX type code (None: batches only).
    let types = PyDict::new(py);
    for t in ElementType::ALL {
        types.set_item(t.numpy_code(), t.idx_code())?;
    }
    m.add("ELEMENT_TYPES", types)?;
    m.add("IdxFormatError", py.get_type::<IdxFormatError>())?;
    m.add("ChecksumError", py.get_type::<ChecksumError>())?;
    m.add_function(wrap_pyfunction!(read_idx, m)?)?;
    m.add_function(wrap_pyfunction!(read_idx_many, m)?)?;
    m.add_function(wrap_pyfunction!(read_idx_digests, m)?)?;
    m.add_function(wrap_pyfunction!(encode_idx, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(map_file, m)?)?;
    m.add_class::<Batcher>()?;
    let hook = wrap_pyfunction!(_interpreter_exiting, m)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Training batches

/// A borrowed view of a numpy array the Batcher keeps a reference to, in its element type.
fn rows_of(array: &Bound<'_, PyAny>, what: &str) -> PyResult<crate::element::Typed<RowsOf>> {
    let array = array.cast::<PyUntypedArray>()?;
    let ty = element_type_of(array)?;
    if !array.is_c_contiguous() || array.ndim() == 0 {
        return Err(PyValueError::new_err(format!("{what} must be a C-contiguous array of rows")));
    }
    let shape = array.shape();
    let count = shape[0];
    let row_len = shape[1..].iter().product();
    // SAFETY: reading the data pointer of a live array object.
    let data = unsafe { (*array.as_array_ptr()).data };
    if !(data as usize).is_multiple_of(ty.size()) {
        return Err(PyValueError::new_err(format!("{what} is not aligned for its dtype")));
    }
    // SAFETY: numpy says the array holds count * row_len elements of `ty`, C-contiguous and (just
    // checked) aligned. The Batcher holds a reference to the array for as long as these Rows
    // live (its progress drops first), and weak references that stop numpy from resizing it.
    Ok(
        crate::with_element!(ty, T => <T as IntoTyped<RowsOf>>::typed(unsafe { Rows::new(data as *const T, count, row_len) })),
    )
}

fn buf_to_numpy<'py>(py: Python<'py>, buf: Buf, shape: Vec<usize>) -> PyResult<Bound<'py, PyAny>> {
    fn shaped<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, shape: Vec<usize>) -> PyResult<Bound<'py, PyAny>> {
        let a = Array1::from_vec(v)
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py).into_any())
    }
    crate::each_typed!(buf, v => shaped(py, v, shape))
}

/// Where an array's memory is, and how large: checked before each batch.
fn memory_of(array: &Bound<'_, PyAny>) -> PyResult<(usize, usize)> {
    let array = array.cast::<PyUntypedArray>()?;
    // SAFETY: reading the data pointer of a live array object, with the GIL held.
    let ptr = unsafe { (*array.as_array_ptr()).data } as usize;
    Ok((ptr, array.len() * array.dtype().itemsize()))
}

/// Weak references to `array` and every array it is a view of. numpy refuses to resize an
/// array that has weak references, even with `refcheck=False`; holding them for the Batcher's
/// life keeps the memory its rows point to from being reallocated under the helper thread.
fn pin_memory<'py>(array: &Bound<'py, PyAny>) -> PyResult<Vec<Py<PyAny>>> {
    let mut pins = Vec::new();
    let mut obj = array.clone();
    while obj.cast::<PyUntypedArray>().is_ok() {
        pins.push(PyWeakrefReference::new(&obj)?.into_any().unbind());
        let base = obj.getattr("base")?;
        if base.is_none() {
            break;
        }
        obj = base;
    }
    Ok(pins)
}

/// The mutable state of a Batcher, behind its lock.
struct Progress {
    prefetch: Option<Prefetch>,
    spec: Option<Arc<Spec>>,
    remaining: usize,
    /// Set when making a batch failed: every later next() raises it again.
    failed: Option<String>,
}

impl Progress {
    fn close(&mut self) {
        if let Some(mut p) = self.prefetch.take() {
            p.stop();
        }
        self.spec = None;
        self.remaining = 0;
    }
}

/// Batcher(images, labels, order, batch_size, drop_last, to_f32, mean, std, image_shape):
/// iterates (x, y) batches of one epoch; made one batch ahead on a background thread that
/// starts at the first next() and is stopped by close(), exhaustion or garbage collection.
/// Threads may share one: next() calls are served one at a time, each batch handed out once.
#[pyclass(module = "fmnist._core", frozen)]
struct Batcher {
    // Field order is drop order: the thread stops before the arrays it reads are released.
    progress: Mutex<Progress>,
    image_shape: Vec<usize>,
    label_shape: Vec<usize>,
    /// (array, its memory as the Rows saw it) for images and labels.
    arrays: [(Py<PyAny>, (usize, usize)); 2],
    _pins: Vec<Py<PyAny>>,
}

impl Batcher {
    /// The lock on the progress, waited for with the GIL released (the thread that holds it may
    /// need the GIL to finish).
    fn progress(&self, py: Python<'_>) -> MutexGuard<'_, Progress> {
        loop {
            match self.progress.try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => detach(py, || std::thread::sleep(Duration::from_micros(50))),
            }
        }
    }

    /// The arrays' memory is where it was when the batcher was made (numpy 1.x still lets
    /// `a.data = ...` swap it out).
    fn check_memory(&self, py: Python<'_>) -> PyResult<()> {
        for ((array, seen), what) in self.arrays.iter().zip(["images", "labels"]) {
            if memory_of(array.bind(py))? != *seen {
                return Err(PyRuntimeError::new_err(format!(
                    "the {what} array's memory was replaced or resized during iteration; make a new iterator"
                )));
            }
        }
        Ok(())
    }
}

#[pymethods]
impl Batcher {
    #[new]
    #[pyo3(signature = (images, labels, order, batch_size, drop_last, to_f32, mean, std, image_shape))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        images: &Bound<'_, PyAny>,
        labels: &Bound<'_, PyAny>,
        order: PyReadonlyArrayDyn<'_, i64>,
        batch_size: usize,
        drop_last: bool,
        to_f32: bool,
        mean: Option<Vec<f32>>,
        std: Option<Vec<f32>>,
        image_shape: Vec<usize>,
    ) -> PyResult<Batcher> {
        let order = order
            .as_array()
            .iter()
            .map(|&i| usize::try_from(i).map_err(|_| PyValueError::new_err(format!("negative index {i}"))))
            .collect::<PyResult<Vec<usize>>>()?;
        let label_shape = labels.cast::<PyUntypedArray>()?.shape()[1..].to_vec();
        let mut pins = pin_memory(images)?;
        pins.extend(pin_memory(labels)?);
        let to_f32 = to_f32.then(|| Normalize::new(mean, std));
        let spec = Spec {
            images: rows_of(images, "images")?,
            labels: rows_of(labels, "labels")?,
            order,
            batch_size,
            drop_last,
            to_f32,
        };
        spec.validate().map_err(usage)?;
        Ok(Batcher {
            progress: Mutex::new(Progress {
                prefetch: None,
                remaining: spec.len(),
                spec: Some(Arc::new(spec)),
                failed: None,
            }),
            image_shape,
            label_shape,
            arrays: [(images.clone().unbind(), memory_of(images)?), (labels.clone().unbind(), memory_of(labels)?)],
            _pins: pins,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.progress(py).remaining
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        let mut progress = self.progress(py);
        if let Some(failed) = &progress.failed {
            return Err(PyRuntimeError::new_err(failed.clone()));
        }
        if progress.remaining == 0 {
            progress.close();
            return Ok(None);
        }
        self.check_memory(py)?;
        if progress.prefetch.is_none() {
            let spec = progress.spec.clone().expect("spec kept until exhausted or closed");
            progress.prefetch = Some(Prefetch::start(spec));
        }
        let prefetch = progress.prefetch.as_mut().expect("started above");
        let (x, y, n) = match detach(py, || prefetch.next()) {
            None => {
                progress.close();
                return Ok(None);
            }
            Some(Err(e)) => {
                progress.close();
                progress.failed = Some(e.to_string());
                return Err(PyRuntimeError::new_err(e.to_string()));
            }
            Some(Ok(batch)) => batch,
        };
        progress.remaining -= 1;
        let xs = [n].into_iter().chain(self.image_shape.iter().copied()).collect();
        let ys = [n].into_iter().chain(self.label_shape.iter().copied()).collect();
        Ok(Some((buf_to_numpy(py, x, xs)?, buf_to_numpy(py, y, ys)?)))
    }

    /// Stops the background thread (it finishes at most the batch in hand) and ends iteration.
    fn close(&self, py: Python<'_>) {
        self.progress(py).close();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `with fmnist.batches(...) as it:` closes the iterator on the way out.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}

//! Engine errors as Python exceptions: one class per kind of failure, each naming the source;
//! and the guard that turns a Rust panic into an ordinary exception.
//!
//! The classes are fmnist's own (`python/fmnist/errors.py`: every one a subclass of
//! `fmnist.Error` and of its standard-library class), imported when first raised.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyMemoryError, PyOSError, PyValueError};
use pyo3::import_exception;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::Error;

import_exception!(fmnist.errors, IdxFormatError);
import_exception!(fmnist.errors, ChecksumError);
import_exception!(fmnist.errors, BadGzipFile);
import_exception!(fmnist.errors, XzError);
import_exception!(fmnist.errors, InternalError);

/// Maps an engine error to its Python class; `name` is how messages name the source, `path` the
/// path it was given as (for `OSError.filename`), if it was one.
pub fn to_py(py: Python<'_>, err: Error, name: &str, path: Option<&Bound<'_, PyString>>) -> PyErr {
    match err {
        Error::Io(e) => match (e.raw_os_error(), path) {
            (Some(code), Some(path)) => os_error(code, &e, path),
            _ => PyErr::from(e),
        },
        Error::Format(m) | Error::Limit(m) => IdxFormatError::new_err(format!("{name}: {m}")),
        Error::Gzip(m) => BadGzipFile::new_err(format!("{name}: {m}")),
        Error::Xz(m) => XzError::new_err(format!("{name}: {m}")),
        Error::Checksum(m) => checksum_error(py, &m, name, path).unwrap_or_else(|e| e),
        Error::Usage(m) => PyValueError::new_err(format!("{name}: {m}")),
        Error::Memory(m) => PyMemoryError::new_err(format!("{name}: {m}")),
    }
}

/// `ChecksumError(message, path=, algorithm=, covers=, expected=, actual=)`.
fn checksum_error(
    py: Python<'_>,
    m: &crate::digest::Mismatch,
    name: &str,
    path: Option<&Bound<'_, PyString>>,
) -> PyResult<PyErr> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("path", path)?;
    kwargs.set_item("algorithm", m.kind.algo.key())?;
    kwargs.set_item("covers", m.covers().name())?;
    kwargs.set_item("expected", &m.expected)?;
    kwargs.set_item("actual", &m.actual)?;
    let class = py.get_type::<ChecksumError>();
    Ok(PyErr::from_value(class.call((format!("{name}: {m}"),), Some(&kwargs))?))
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

/// An argument the engine refused (not bad data): `ValueError`.
pub fn usage(err: Error) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// Runs a binding function's body; a Rust panic anywhere in it (this thread, or a worker whose
/// panic it re-raised) becomes `fmnist.errors.InternalError` (a `RuntimeError`), an ordinary
/// exception, instead of pyo3's `PanicException` (a `BaseException` that `except Exception`
/// misses).
pub fn guarded<T>(what: &str, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(InternalError::new_err(format!("{what}: internal error in fmnist ({why}); please report it")))
        }
    }
}

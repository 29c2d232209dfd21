//! The binding: the `fmnist._core` extension module, over the plain-Rust engine. One file per
//! job: `errors` (engine errors as Python exceptions, panics as ordinary ones), `exit` (GIL
//! release that is safe at interpreter exit), `arrays` (arrays numpy allocates, arrays over an
//! owner, mapped files), `read` (the one read call, writing, IDX facts), `batches` (the batch
//! iterator and its argument checks), `augment` (its augmentation's parameters and draws).

use pyo3::prelude::*;

mod arrays;
mod augment;
mod batches;
mod errors;
mod exit;
mod read;

/// _panic(on_worker): panics, on this thread or on a worker thread with the GIL released, so the
/// tests can see that a Rust panic reaches Python as `fmnist.InternalError`.
#[pyfunction]
fn _panic(py: Python<'_>, on_worker: bool) -> PyResult<()> {
    errors::guarded("_panic", || {
        if on_worker {
            // A scoped thread's panic is re-raised by the scope, on this thread.
            exit::detach(py, || {
                std::thread::scope(|s| {
                    s.spawn(|| panic!("a test panic on a worker"));
                })
            });
            Ok(())
        } else {
            panic!("a test panic")
        }
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The engine's element types: (IDX type code or None for the batch-only types, numpy name,
    // item size).
    m.add("ELEMENT_TYPES", read::element_types(py)?)?;
    m.add("MAX_NDIM", if numpy::npyffi::is_numpy_2(py) { 64 } else { 32 })?;
    m.add_function(wrap_pyfunction!(read::read, m)?)?;
    m.add_function(wrap_pyfunction!(read::encode_idx, m)?)?;
    m.add_function(wrap_pyfunction!(read::idx_header, m)?)?;
    m.add_function(wrap_pyfunction!(read::idx_size, m)?)?;
    m.add_function(wrap_pyfunction!(read::max_compressed_size, m)?)?;
    m.add_class::<read::Request>()?;
    m.add_class::<read::Expected>()?;
    m.add_class::<read::Mode>()?;
    m.add_class::<read::Kind>()?;
    m.add_class::<read::Codec>()?;
    m.add_class::<read::Errors>()?;
    m.add_class::<read::Outcome>()?;
    m.add_class::<read::Verdict>()?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(arrays::map_idx, m)?)?;
    m.add_function(wrap_pyfunction!(batches::batch_args, m)?)?;
    m.add_class::<batches::Batcher>()?;
    m.add_function(wrap_pyfunction!(augment::augment_check, m)?)?;
    m.add_function(wrap_pyfunction!(augment::augment_draws, m)?)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    let hook = wrap_pyfunction!(exit::_interpreter_exiting, m)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

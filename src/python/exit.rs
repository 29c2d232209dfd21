//! Releasing the GIL safely at interpreter exit.
//!
//! At interpreter exit, CPython (before 3.14) ends a daemon thread that asks for the GIL with
//! `pthread_exit`, whose forced unwind through Rust frames aborts the process ("FATAL: exception
//! not rethrown", at PyO3's catch_unwind). So every call that releases the GIL goes through
//! `detach`: a thread that finishes its work once exit has begun never asks for the GIL again;
//! it parks until the process ends. One already asking is let through by the atexit hook.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Set by an `atexit` hook (registered when the module loads): the interpreter is shutting down.
static FINALIZING: AtomicBool = AtomicBool::new(false);
/// Threads between deciding to take the GIL back and holding it again.
static REACQUIRING: AtomicUsize = AtomicUsize::new(0);

/// The `atexit` hook. From now on a thread leaving `detach` parks instead of asking for the GIL;
/// the threads already asking get it first (the main thread lends it for up to a few seconds),
/// so that no fmnist frame is on a stack that CPython later ends with `pthread_exit`.
#[pyfunction]
pub fn _interpreter_exiting(py: Python<'_>) {
    FINALIZING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while REACQUIRING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        py.detach(|| std::thread::sleep(Duration::from_millis(1)));
    }
}

/// `py.detach(f)`, parking instead of returning once the interpreter is exiting.
pub fn detach<T: Send, F: Send + FnOnce() -> T>(py: Python<'_>, f: F) -> T {
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

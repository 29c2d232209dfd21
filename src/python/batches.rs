//! Training batches from Python: the `Batcher` iterator over the engine's batch maker, and the
//! checks of `fmnist.batches`' arguments.
//!
//! A Batcher reads the caller's arrays in place (holding references, and weak references that
//! stop numpy from resizing them); each batch column it hands out is an array over the engine's
//! buffer, which the array's base keeps alive.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyWeakrefReference};

use super::arrays::{self, element_type_of};
use super::augment::{params, seed_epoch};
use super::errors::{guarded, usage};
use super::exit::detach;
use crate::augment::Fused;
use crate::batches::{Augmenting, Column, Normalize, Prefetch, Rows, Spec};
use crate::element::ElementType;

/// A borrowed view of a numpy array the Batcher keeps a reference to: its rows read in place,
/// at whatever distance they are apart (a strided, reversed or broadcast view is not copied).
/// Each row must be contiguous and aligned; the Python layer copies an array whose rows are not
/// (`fmnist.pipeline._rows`).
fn rows_of(array: &Bound<'_, PyAny>, what: &str) -> PyResult<Rows> {
    let array = array.cast::<PyUntypedArray>()?;
    let (ty, native) = element_type_of(array).map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must have an integer or float dtype (not bool, float16 or complex); got {}",
            array.dtype()
        ))
    })?;
    if array.ndim() == 0 {
        return Err(PyValueError::new_err(format!("{what} must have a first axis, one row per example")));
    }
    let (shape, strides) = (array.shape(), array.strides());
    let count = shape[0];
    let row_len: usize = shape[1..].iter().product();
    // Each row C-contiguous: every axis after the first of more than one element steps by the
    // elements after it.
    let mut step = ty.size() as isize;
    let mut contiguous = true;
    for (&n, &s) in shape[1..].iter().zip(&strides[1..]).rev() {
        contiguous &= n <= 1 || s == step;
        step = step.saturating_mul(n as isize);
    }
    // SAFETY: reading the data pointer of a live array object.
    let data = unsafe { (*array.as_array_ptr()).data }.cast::<u8>().cast_const();
    let stride = if count > 1 { strides[0] } else { step };
    let aligned = (data as usize).is_multiple_of(ty.size()) && stride.unsigned_abs().is_multiple_of(ty.size());
    let empty = count == 0 || row_len == 0; // nothing is ever read
    if !native || !(empty || (contiguous && aligned)) {
        return Err(PyValueError::new_err(format!(
            "{what} must be a native-order array whose rows are each contiguous and aligned"
        )));
    }
    // SAFETY: numpy says row i of the array starts i * strides[0] bytes from `data` and holds
    // row_len contiguous elements of `ty` (just checked), aligned (checked). The Batcher holds
    // a reference to the array for as long as these Rows live (its progress drops first), and
    // weak references that stop numpy from resizing it.
    Ok(unsafe {
        if empty {
            // An aligned pointer, never read: numpy's pointer of an empty array may not be.
            Rows::new(std::ptr::NonNull::<u64>::dangling().as_ptr().cast(), count, row_len, 0, ty)
        } else {
            Rows::new(data, count, row_len, stride, ty)
        }
    })
}

/// Keeps a finished batch column alive for as long as an array (its base object) uses it.
#[pyclass(frozen, module = "fmnist._core")]
struct BatchColumn {
    column: Column,
}

/// The column as a numpy array of `shape`, over the column's own memory.
fn column_to_numpy(py: Python<'_>, column: Column, shape: Vec<usize>) -> PyResult<Bound<'_, PyAny>> {
    let ty = column.element_type();
    let data = column.as_bytes().as_ptr() as *mut u8;
    let owner = Bound::new(py, BatchColumn { column })?;
    debug_assert_eq!(owner.get().column.len(), shape.iter().product::<usize>());
    // SAFETY: the column holds product(shape) elements of ty, 8-byte aligned, written once and
    // referenced by nothing else; its owner becomes the array's base.
    unsafe { arrays::array_over(owner.into_any(), ty, &shape, data) }
}

/// Where an array's memory is and how it is laid out: checked before each batch.
type Layout = (usize, Vec<usize>, Vec<isize>);

fn layout_of(array: &Bound<'_, PyAny>) -> PyResult<Layout> {
    let array = array.cast::<PyUntypedArray>()?;
    // SAFETY: reading the data pointer of a live array object, with the GIL held.
    let ptr = unsafe { (*array.as_array_ptr()).data } as usize;
    Ok((ptr, array.shape().to_vec(), array.strides().to_vec()))
}

/// Weak references to `array` and every array it is a view of. numpy refuses to resize an
/// array that has weak references, even with `refcheck=False`; holding them for the Batcher's
/// life keeps the memory its rows point to from being reallocated under the helper thread.
fn pin_memory(array: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyAny>>> {
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

/// An int argument (not a bool, numpy integers allowed) within `lo..hi`, or the message.
fn int_in(value: &Bound<'_, PyAny>, lo: i64, hi: Option<i64>) -> Option<i64> {
    if value.is_instance_of::<PyBool>() {
        return None;
    }
    let int = if value.is_instance_of::<PyInt>() { value.clone() } else { value.call_method0("__index__").ok()? };
    let n = int.extract::<i64>().ok()?;
    (n >= lo && hi.is_none_or(|h| n < h)).then_some(n)
}

/// The arguments of `fmnist.batches` once checked: (batch_size, rank, world_size, dtype, seed,
/// epoch); dtype "uint8", "float32" or None.
type BatchArgs<'py> = (usize, usize, usize, Option<&'static str>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// batch_args(batch_size, rank, world_size, dtype, seed, epoch, augmenting) -> the same,
/// checked, before anything is drawn or allocated: the one place `fmnist.batches`' arguments
/// are judged. seed and epoch are ints >= 0 (the order's generator takes seed + epoch); with
/// augmentation, a seed below 2**64 and an epoch below 2**32 (its generator's key and counter).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn batch_args<'py>(
    py: Python<'py>,
    batch_size: &Bound<'py, PyAny>,
    rank: &Bound<'py, PyAny>,
    world_size: &Bound<'py, PyAny>,
    dtype: &Bound<'py, PyAny>,
    seed: Bound<'py, PyAny>,
    epoch: Bound<'py, PyAny>,
    augmenting: bool,
) -> PyResult<BatchArgs<'py>> {
    let is_numpy_int = |v: &Bound<'_, PyAny>| -> bool {
        v.is_instance_of::<PyInt>()
            || py.import("numpy").and_then(|np| v.is_instance(&np.getattr("integer")?)).unwrap_or(false)
    };
    let batch = int_in(batch_size, 1, None).filter(|_| is_numpy_int(batch_size)).ok_or_else(|| {
        PyValueError::new_err(format!(
            "batch_size must be an int >= 1, not {}",
            batch_size.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    let world = int_in(world_size, 1, None).filter(|_| is_numpy_int(world_size)).ok_or_else(|| {
        PyValueError::new_err(format!(
            "world_size must be an int >= 1, not {}",
            world_size.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    let rank_n = int_in(rank, 0, Some(world)).filter(|_| is_numpy_int(rank)).ok_or_else(|| {
        PyValueError::new_err(format!(
            "rank must be an int in [0, {world}) for world_size={world}, not {}",
            rank.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    let dtype = if dtype.is_none() {
        None
    } else {
        // The descriptor's own fields, not `dtype.name`: numpy 1's `name` is Python code, whose
        // eval loop may hand the GIL over, and at interpreter exit a daemon thread asking for it
        // back is ended with pthread_exit, unwinding through these frames (a crash, src/python/exit.rs).
        let kind = PyArrayDescr::new(py, dtype).ok().map(|d| (d.kind(), d.itemsize()));
        match kind {
            Some((b'u', 1)) => Some("uint8"),
            Some((b'f', 4)) => Some("float32"),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "dtype must be 'uint8', 'float32' or None, not {}",
                    dtype.repr()?
                )))
            }
        }
    };
    if augmenting {
        seed_epoch(&seed, &epoch)?;
    }
    for (name, v) in [("seed", &seed), ("epoch", &epoch)] {
        let ok = is_numpy_int(v) && !v.is_instance_of::<PyBool>() && v.call_method0("__index__")?.ge(0)?;
        if !ok {
            return Err(PyValueError::new_err(format!("{name} must be an int >= 0, not {}", v.repr()?)));
        }
    }
    Ok((batch as usize, rank_n as usize, world as usize, dtype, seed, epoch))
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

/// Batcher(images, labels, order, batch_size, drop_last, dtype, mean, std, image_shape, augment):
/// dtype "uint8" (uint8 images served as they are), "float32" (converted, then normalised by mean
/// and std when given) or None (any images as they are); augment: None, or (an `fmnist.Augment`,
/// seed, epoch), applied to each example as it is gathered;
/// iterates (x, y) batches of one epoch; made one batch ahead on a background thread that
/// starts at the first next() and is stopped by close(), exhaustion or garbage collection.
/// Threads may share one: next() calls are served one at a time, each batch handed out once.
#[pyclass(module = "fmnist._core", frozen)]
pub struct Batcher {
    // Field order is drop order: the thread stops before the arrays it reads are released.
    progress: Mutex<Progress>,
    image_shape: Vec<usize>,
    label_shape: Vec<usize>,
    /// (array, its memory as the Rows saw it) for images and labels.
    arrays: [(Py<PyAny>, Layout); 2],
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
            if layout_of(array.bind(py))? != *seen {
                return Err(PyRuntimeError::new_err(format!(
                    "the {what} array's memory was replaced or resized during iteration; make a new iterator"
                )));
            }
        }
        Ok(())
    }

    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
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
                return Err(match e {
                    crate::Error::Memory(m) => PyMemoryError::new_err(m),
                    e => PyRuntimeError::new_err(e.to_string()),
                });
            }
            Some(Ok(batch)) => batch,
        };
        progress.remaining -= 1;
        let xs = [n].into_iter().chain(self.image_shape.iter().copied()).collect();
        let ys = [n].into_iter().chain(self.label_shape.iter().copied()).collect();
        Ok(Some((column_to_numpy(py, x, xs)?, column_to_numpy(py, y, ys)?)))
    }
}

#[pymethods]
impl Batcher {
    #[new]
    #[pyo3(signature = (images, labels, order, batch_size, drop_last, dtype, mean, std, image_shape, augment=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        images: &Bound<'_, PyAny>,
        labels: &Bound<'_, PyAny>,
        order: PyReadonlyArrayDyn<'_, i64>,
        batch_size: usize,
        drop_last: bool,
        dtype: Option<&str>,
        mean: Option<Vec<f32>>,
        std: Option<Vec<f32>>,
        image_shape: Vec<usize>,
        augment: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    ) -> PyResult<Batcher> {
        guarded("Batcher", || {
            let order = order.as_array();
            let mut indices = crate::with_room(order.len(), || format!("the epoch's order of {} rows", order.len()))
                .map_err(|e| PyMemoryError::new_err(e.to_string()))?;
            for &i in order.iter() {
                indices.push(usize::try_from(i).map_err(|_| PyValueError::new_err(format!("negative index {i}")))?);
            }
            let order = indices;
            let label_shape = labels.cast::<PyUntypedArray>()?.shape()[1..].to_vec();
            let mut pins = pin_memory(images)?;
            pins.extend(pin_memory(labels)?);
            let images_rows = rows_of(images, "images")?;
            let labels_rows = rows_of(labels, "labels")?;
            match dtype {
                Some("uint8") if images_rows.element_type() != ElementType::U8 => {
                    return Err(PyValueError::new_err(format!(
                        "dtype='uint8' needs uint8 images, got {}: use dtype='float32' or dtype=None",
                        images_rows.element_type()
                    )))
                }
                Some("uint8") | Some("float32") | None => {}
                Some(other) => {
                    return Err(PyValueError::new_err(format!(
                        "dtype must be 'uint8', 'float32' or None, not {other:?}"
                    )))
                }
            }
            if dtype != Some("float32") && (mean.is_some() || std.is_some()) {
                return Err(PyValueError::new_err("mean/std normalise float32 batches: pass dtype='float32'"));
            }
            let to_f32 = (dtype == Some("float32")).then(|| Normalize::new(mean, std)).transpose().map_err(usage)?;
            let augment = match augment {
                None => None,
                Some((augment, seed, epoch)) => {
                    let (seed, epoch) = seed_epoch(&seed, &epoch)?;
                    let shape = &images.cast::<PyUntypedArray>()?.shape()[1..];
                    let raw = (dtype != Some("float32")).then(|| images_rows.element_type());
                    let fused = Fused::new(params(&augment)?, seed, epoch, shape, raw).map_err(usage)?;
                    Some(Augmenting::new(fused, to_f32.as_ref()).map_err(|e| PyMemoryError::new_err(e.to_string()))?)
                }
            };
            let spec = Spec { images: images_rows, labels: labels_rows, order, batch_size, drop_last, to_f32, augment };
            spec.validate().map_err(usage)?;
            if image_shape.iter().product::<usize>() != spec.images.row_len() {
                return Err(PyTypeError::new_err("image_shape must hold one image's elements"));
            }
            Ok(Batcher {
                progress: Mutex::new(Progress {
                    prefetch: None,
                    remaining: spec.len(),
                    spec: Some(Arc::new(spec)),
                    failed: None,
                }),
                image_shape,
                label_shape,
                arrays: [(images.clone().unbind(), layout_of(images)?), (labels.clone().unbind(), layout_of(labels)?)],
                _pins: pins,
            })
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.progress(py).remaining
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        guarded("Batcher.__next__", || self.next_batch(py))
    }

    /// Batch `k` of the epoch, made now on the calling thread with the GIL released, apart from
    /// the iteration (which it neither moves nor waits for): any batch, in any order, from any
    /// thread, as a keras `PyDataset` asks for them. The arrays iteration gives for it.
    fn batch<'py>(&self, py: Python<'py>, k: usize) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        guarded("Batcher.batch", || {
            let spec = self.progress(py).spec.clone();
            let spec = spec.ok_or_else(|| PyRuntimeError::new_err("this epoch's batches are closed: make new ones"))?;
            if k >= spec.len() {
                return Err(PyIndexError::new_err(format!("batch {k} of an epoch of {} batches", spec.len())));
            }
            self.check_memory(py)?;
            let (x, y, n) = detach(py, || spec.batch(k)).map_err(|e| match e {
                crate::Error::Memory(m) => PyMemoryError::new_err(m),
                e => PyRuntimeError::new_err(e.to_string()),
            })?;
            let xs = [n].into_iter().chain(self.image_shape.iter().copied()).collect();
            let ys = [n].into_iter().chain(self.label_shape.iter().copied()).collect();
            Ok((column_to_numpy(py, x, xs)?, column_to_numpy(py, y, ys)?))
        })
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

//! Training batches: gather rows in a given order, convert and normalise in one pass, one batch
//! ahead on a second thread.
//!
//! The order (shuffle, DDP sharding) is decided by the caller; this module only follows it.
//! A float32 batch is what numpy computes as `(x[idx].astype(np.float32) / 255 - mean) / std`,
//! in a single pass over the gathered rows: `x / 255` and `- mean` to the same bits, the
//! division by `std` as a multiplication by `1 / std` (within 1 ulp; exact division when a
//! reciprocal would not be a normal float).

use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::augment::{place_prepared, Fused, Normalised, Span};
use crate::element::{Element, ElementType};
pub use crate::rows::Rows;
use crate::Error;

/// A finished batch column: `len` elements of `ty`, in memory aligned to 8 bytes (every element
/// type fits).
#[derive(Debug)]
pub struct Column {
    words: Vec<u64>,
    len: usize,
    ty: ElementType,
}

impl Column {
    /// Room for `len` elements, not yet written (but for the padding of the last word); a
    /// refused allocation is `Error::Memory`, saying what it was for.
    fn with_capacity(ty: ElementType, len: usize, what: impl Fn() -> String) -> Result<Column, Error> {
        let refused =
            || Error::Memory(format!("cannot allocate {} bytes for {}", len.saturating_mul(ty.size()), what()));
        let words = len.checked_mul(ty.size()).ok_or_else(refused)?.div_ceil(8);
        let mut v: Vec<u64> = crate::with_room(words, &what)?;
        if v.capacity() > 0 {
            // SAFETY: inside the capacity; zeroes the padding the elements may not cover.
            unsafe { v.as_mut_ptr().add(v.capacity() - 1).write(0) };
        }
        Ok(Column { words: v, len, ty })
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr() as *mut u8
    }

    /// # Safety
    /// All `len` elements must have been written.
    unsafe fn set_written(&mut self) {
        self.words.set_len((self.len * self.ty.size()).div_ceil(8));
    }

    pub fn element_type(&self) -> ElementType {
        self.ty
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the words are initialised (set_written); the length is within them.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len * self.ty.size()) }
    }

    /// The elements as `T` (which must be the column's type).
    pub fn as_slice<T: Element>(&self) -> &[T] {
        assert_eq!(T::TYPE, self.ty, "a column is read as its own type");
        // SAFETY: initialised, aligned to 8 bytes (enough for every element type), T is its type.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const T, self.len) }
    }
}

/// A finished batch column.
pub type Buf = Column;

/// How images are turned into float32: `(x / 255 if uint8 else x) - mean) / std`, with
/// per-element `mean` and `std` (already broadcast to one image's shape by the caller).
pub struct Normalize {
    mean: Vec<f32>,
    /// Either 1/std (when every 1/std is a normal float: multiplying is then within 1 ulp of
    /// dividing) or std itself (divided by, exactly as numpy does). Empty when no std is given.
    scale: Vec<f32>,
    reciprocal: bool,
}

impl Normalize {
    /// `mean`/`std`: one value per image element (already broadcast), or None. Every mean must
    /// be finite and every std finite and positive (as torchvision's `Normalize` refuses
    /// `std=0`): anything else would fill the batches with inf or NaN.
    pub fn new(mean: Option<Vec<f32>>, std: Option<Vec<f32>>) -> Result<Normalize, Error> {
        let (mean, mut std) = (mean.unwrap_or_default(), std.unwrap_or_default());
        if let Some((k, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(Error::Usage(format!("mean must be finite; element {k} is {m}")));
        }
        if let Some((k, s)) = std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Usage(format!(
                "std must be finite and positive (torchvision's Normalize refuses std=0 too); element {k} is {s}"
            )));
        }
        let reciprocal = std.iter().all(|s| (1.0 / s).is_normal());
        if reciprocal {
            std.iter_mut().for_each(|s| *s = 1.0 / *s);
        }
        Ok(Normalize { mean, scale: std, reciprocal })
    }
}

/// Augmentation, with the normalisation its float32 path applies: a mean and a scale for every
/// image element (0 and 1 where none was given: `(x - 0) * 1` is `x` exactly), what padding
/// becomes, and the erasing value per channel.
pub struct Augmenting {
    pub fused: Fused,
    mean: Vec<f32>,
    scale: Vec<f32>,
    zero: Vec<f32>,
    reciprocal: bool,
    /// One mean and one scale for every element: what padding becomes.
    uniform: Option<f32>,
    fill: Vec<f32>,
}

impl Augmenting {
    pub fn new(fused: Fused, norm: Option<&Normalize>) -> Result<Augmenting, Error> {
        let len = fused.geometry.len();
        let what = || format!("augmentation's per-element statistics of an image of {len} elements");
        let full = |v: Option<&Vec<f32>>, default: f32| match v {
            Some(v) if !v.is_empty() => {
                let mut out = crate::with_room(v.len(), what)?;
                out.extend_from_slice(v);
                Ok(out)
            }
            _ => crate::filled(len, default, what),
        };
        let (mean, scale) = (full(norm.map(|n| &n.mean), 0.0)?, full(norm.map(|n| &n.scale), 1.0)?);
        let reciprocal = norm.is_none_or(|n| n.reciprocal);
        let mut zero = crate::with_room(len, what)?;
        zero.extend(mean.iter().zip(&scale).map(|(&m, &s)| if reciprocal { (0.0 - m) * s } else { (0.0 - m) / s }));
        let same = |v: &[f32]| v.iter().all(|x| x.to_bits() == v[0].to_bits());
        let uniform = (len > 0 && same(&mean) && same(&scale)).then(|| zero[0]);
        let fill = fused.fill(|v| v as f32);
        Ok(Augmenting { mean, scale, zero, reciprocal, uniform, fill, fused })
    }

    fn normalised(&self) -> Normalised<'_> {
        Normalised { mean: &self.mean, scale: &self.scale, zero: &self.zero, reciprocal: self.reciprocal }
    }
}

/// Everything needed to make every batch of one epoch.
pub struct Spec {
    pub images: Rows,
    pub labels: Rows,
    /// Row indices in the order to serve them (shuffled and sharded already).
    pub order: Vec<usize>,
    pub batch_size: usize,
    pub drop_last: bool,
    /// None: images keep their dtype (a pure gather).
    pub to_f32: Option<Normalize>,
    /// Crop, flip and erase each example as it is gathered (and converted).
    pub augment: Option<Augmenting>,
}

impl Spec {
    pub fn validate(&self) -> Result<(), Error> {
        if self.batch_size == 0 {
            return Err(Error::Usage("batch_size must be at least 1".into()));
        }
        let count = self.images.count();
        if count != self.labels.count() {
            return Err(Error::Usage(format!("images has {count} rows but labels has {}", self.labels.count())));
        }
        if let Some(&bad) = self.order.iter().find(|&&i| i >= count) {
            return Err(Error::Usage(format!("index {bad} out of range for {count} rows")));
        }
        if let Some(n) = &self.to_f32 {
            for (name, v) in [("mean", &n.mean), ("std", &n.scale)] {
                if !v.is_empty() && v.len() != self.images.row_len() {
                    return Err(Error::Usage(format!("{name} must have one value per image element")));
                }
            }
        }
        if let Some(a) = &self.augment {
            let g = a.fused.geometry;
            if g.len() != self.images.row_len() || a.mean.len() != g.len() || a.scale.len() != g.len() {
                return Err(Error::Usage(format!(
                    "augment's image shape {:?} does not hold an image of {} elements",
                    (g.h, g.w, g.c),
                    self.images.row_len()
                )));
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        if self.drop_last {
            self.order.len() / self.batch_size
        } else {
            self.order.len().div_ceil(self.batch_size)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row indices of batch `k`.
    fn rows_of(&self, k: usize) -> &[usize] {
        let start = k * self.batch_size;
        &self.order[start..(start + self.batch_size).min(self.order.len())]
    }

    /// Batch `k` made on this thread alone: (images, labels, rows in it).
    pub fn batch(&self, k: usize) -> Result<(Buf, Buf, usize), Error> {
        let work = Work::new(self, k)?;
        while work.run_one(self) {}
        work.take()
    }
}

/// Source bytes a chunk reads: small enough that two threads share a batch (a batch of 256
/// Fashion-MNIST rows is 4 chunks of 62 rows), large enough that claiming one costs nothing
/// next to doing it (measured: 16-row chunks were 10-20% slower, 128-row ones no faster).
const CHUNK_BYTES: usize = 48 << 10;

/// One batch being made. Its rows are split into chunks that any thread may claim; each chunk
/// writes its own disjoint range of the output buffers.
struct Work {
    k: usize,
    rows: usize,
    chunk_rows: usize,
    chunks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// A chunk panicked: the batch is not whole, and the iterator must fail, never wait.
    failed: AtomicBool,
    x: Mutex<Option<Buf>>,
    y: Mutex<Option<Buf>>,
    x_ptr: *mut u8,
    y_ptr: *mut u8,
}

// SAFETY: the raw pointers point into the heap buffers of `x` and `y`, which live as long as
// the Work; chunks write disjoint ranges, and the buffers are only read (taken) after every
// chunk is done.
unsafe impl Send for Work {}
unsafe impl Sync for Work {}

impl Work {
    fn new(spec: &Spec, k: usize) -> Result<Work, Error> {
        let rows = spec.rows_of(k).len();
        let row_len = spec.images.row_len();
        let row_bytes = row_len * spec.images.element_type().size();
        let chunk_rows = (CHUNK_BYTES / row_bytes.max(1)).max(1);
        let x_len = rows * row_len;
        let y_len = rows * spec.labels.row_len();
        let x_type = if spec.to_f32.is_some() { ElementType::F32 } else { spec.images.element_type() };
        let mut x = Column::with_capacity(x_type, x_len, || format!("batch {k}'s {rows} images ({x_type})"))?;
        let mut y = Column::with_capacity(spec.labels.element_type(), y_len, || format!("batch {k}'s {rows} labels"))?;
        let (x_ptr, y_ptr) = (x.as_mut_ptr(), y.as_mut_ptr());
        Ok(Work {
            k,
            rows,
            chunk_rows,
            chunks: rows.div_ceil(chunk_rows),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            x: Mutex::new(Some(x)),
            y: Mutex::new(Some(y)),
            x_ptr,
            y_ptr,
        })
    }

    fn all_claimed(&self) -> bool {
        self.next.load(Ordering::Acquire) >= self.chunks
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire) == self.chunks
    }

    /// Claims and makes one chunk; false when none was left to claim. Returns true also for the
    /// chunk that completes the batch (the caller then notifies waiters). A chunk that panics
    /// still counts as done, with the batch marked failed: whoever waits for it wakes up.
    fn run_one(&self, spec: &Spec) -> bool {
        let c = self.next.fetch_add(1, Ordering::AcqRel);
        if c >= self.chunks {
            return false;
        }
        if catch_unwind(AssertUnwindSafe(|| self.make_chunk(spec, c))).is_err() {
            self.failed.store(true, Ordering::Release);
        }
        self.done.fetch_add(1, Ordering::AcqRel);
        true
    }

    fn make_chunk(&self, spec: &Spec, c: usize) {
        let first = c * self.chunk_rows;
        let idx = &spec.rows_of(self.k)[first..(first + self.chunk_rows).min(self.rows)];
        // SAFETY: chunk c owns output rows [first, first + idx.len()), inside the capacity
        // reserved in `new`, and no other chunk writes them.
        // SAFETY: the chunk's rows of the output columns are its own (disjoint from every other
        // chunk's), inside their capacity; a float32 column is 8-byte aligned.
        unsafe {
            match (&spec.augment, &spec.to_f32) {
                (Some(aug), Some(norm)) => {
                    let row = spec.images.row_len();
                    let out = std::slice::from_raw_parts_mut(
                        (self.x_ptr as *mut MaybeUninit<f32>).add(first * row),
                        idx.len() * row,
                    );
                    crate::with_element!(spec.images.element_type(), T => augment_to_f32::<T>(&spec.images, idx, aug, norm, out));
                }
                (Some(aug), None) => {
                    let row = spec.images.row_len();
                    crate::with_element!(spec.images.element_type(), T => {
                        let out = std::slice::from_raw_parts_mut(
                            (self.x_ptr as *mut MaybeUninit<T>).add(first * row),
                            idx.len() * row,
                        );
                        aug.fused.rows_raw::<T>(&spec.images, idx, out)
                    });
                }
                (None, Some(norm)) => {
                    let row = spec.images.row_len();
                    let out = std::slice::from_raw_parts_mut(
                        (self.x_ptr as *mut MaybeUninit<f32>).add(first * row),
                        idx.len() * row,
                    );
                    crate::with_element!(spec.images.element_type(), T => convert::<T>(&spec.images, idx, norm, out));
                }
                (None, None) => gather(&spec.images, self.x_ptr, idx, first),
            }
            gather(&spec.labels, self.y_ptr, idx, first);
        }
    }

    fn take(&self) -> Result<(Buf, Buf, usize), Error> {
        debug_assert!(self.is_done());
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::Usage(format!("making batch {} failed (a panic in fmnist's batch maker)", self.k)));
        }
        let mut x = self.x.lock().expect("not poisoned").take().expect("taken once");
        let mut y = self.y.lock().expect("not poisoned").take().expect("taken once");
        // SAFETY: every chunk is done, so every element of both buffers was written.
        // SAFETY: every chunk is done, and the chunks cover every row of both columns.
        unsafe {
            x.set_written();
            y.set_written();
        }
        Ok((x, y, self.rows))
    }
}

/// Copies rows `idx` of `rows` to rows `first..` of the column at `out`, as bytes.
///
/// # Safety
/// `out` has room for `first + idx.len()` rows of `rows`' row size, and nothing else writes
/// those rows; every index is in range.
unsafe fn gather(rows: &Rows, out: *mut u8, idx: &[usize], first: usize) {
    let row_bytes = rows.row_bytes();
    rows.prefetch_first(idx);
    for (r, &i) in idx.iter().enumerate() {
        rows.ahead(idx, r);
        std::ptr::copy_nonoverlapping(rows.row_as_bytes(i).as_ptr(), out.add((first + r) * row_bytes), row_bytes);
    }
}

#[inline(always)]
fn convert_row<T: Element>(src: &[T], norm: &Normalize, out: &mut [MaybeUninit<f32>]) {
    let (mean, scale) = (&norm.mean[..], &norm.scale[..]);
    match (mean.is_empty(), scale.is_empty(), norm.reciprocal) {
        (true, true, _) => out.iter_mut().zip(src).for_each(|(o, &x)| {
            o.write(x.to_f32());
        }),
        (false, true, _) => out.iter_mut().zip(src).zip(mean).for_each(|((o, &x), &m)| {
            o.write(x.to_f32() - m);
        }),
        (true, false, true) => out.iter_mut().zip(src).zip(scale).for_each(|((o, &x), &r)| {
            o.write(x.to_f32() * r);
        }),
        (true, false, false) => out.iter_mut().zip(src).zip(scale).for_each(|((o, &x), &s)| {
            o.write(x.to_f32() / s);
        }),
        (false, false, true) => out.iter_mut().zip(src).zip(mean.iter().zip(scale)).for_each(|((o, &x), (&m, &r))| {
            o.write((x.to_f32() - m) * r);
        }),
        (false, false, false) => out.iter_mut().zip(src).zip(mean.iter().zip(scale)).for_each(|((o, &x), (&m, &s))| {
            o.write((x.to_f32() - m) / s);
        }),
    }
}

#[inline(always)]
fn convert_rows<T: Element>(rows: &Rows, idx: &[usize], norm: &Normalize, out: &mut [MaybeUninit<f32>]) {
    let row = rows.row_len();
    if row == 0 {
        return; // zero-width rows (images of shape (N, 0)): nothing to convert
    }
    rows.prefetch_first(idx);
    for (r, (o, &i)) in out.chunks_exact_mut(row).zip(idx).enumerate() {
        rows.ahead(idx, r);
        convert_row(rows.row::<T>(i), norm, o);
    }
}

/// The same loop compiled for AVX2 (8 floats a step), chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn convert_rows_avx2<T: Element>(rows: &Rows, idx: &[usize], norm: &Normalize, out: &mut [MaybeUninit<f32>]) {
    convert_rows::<T>(rows, idx, norm, out)
}

/// Converts rows `idx` into `out` (exactly `idx.len()` rows long), every element written.
fn convert<T: Element>(rows: &Rows, idx: &[usize], norm: &Normalize, out: &mut [MaybeUninit<f32>]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        unsafe { convert_rows_avx2::<T>(rows, idx, norm, out) };
        return;
    }
    convert_rows::<T>(rows, idx, norm, out);
}

/// Augments rows `idx` into float32 `out`. With one mean and scale for every element (the
/// common case), the crop is one shifted run of the image converted exactly as
/// without augmentation, which vectorises: conversion commutes with moving elements when it is
/// the same for all. Else element by element.
#[inline(always)]
fn augment_rows<T: Element>(
    src: &Rows,
    idx: &[usize],
    aug: &Augmenting,
    norm: &Normalize,
    out: &mut [MaybeUninit<f32>],
) {
    let Some(zero) = aug.uniform else {
        return aug.fused.rows::<T, _>(src, idx, &aug.fill, &aug.normalised(), out);
    };
    let (g, pad) = (aug.fused.geometry, aug.fused.params.pad);
    for (image, d, o) in aug.fused.each::<T, f32>(src, idx, out) {
        place_prepared(image, g, pad, &d, zero, &aug.fill, o, &Converts(norm));
    }
}

/// Runs converted as `convert` converts rows: the same for every element when the mean and
/// scale are (`Augmenting::uniform`), wherever the run is in the image.
struct Converts<'a>(&'a Normalize);

impl<T: Element> Span<T> for Converts<'_> {
    type Out = f32;
    #[inline(always)]
    fn span(&self, src: &[T], out: &mut [MaybeUninit<f32>]) {
        convert_row(src, self.0, out)
    }
}

/// `augment_rows`, compiled for AVX2 when the CPU has it (as `convert`).
fn augment_to_f32<T: Element>(
    rows: &Rows,
    idx: &[usize],
    aug: &Augmenting,
    norm: &Normalize,
    out: &mut [MaybeUninit<f32>],
) {
    let src = rows;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: Element>(
            src: &Rows,
            idx: &[usize],
            aug: &Augmenting,
            norm: &Normalize,
            out: &mut [MaybeUninit<f32>],
        ) {
            augment_rows::<T>(src, idx, aug, norm, out)
        }
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        unsafe { avx2::<T>(src, idx, aug, norm, out) };
        return;
    }
    augment_rows::<T>(src, idx, aug, norm, out)
}

/// Makes the batches of a `Spec` one batch ahead of the consumer.
///
/// The consumer starts batch k+1 (allocates it) as it takes batch k, never earlier, so at most
/// one batch is ever made ahead; a background thread makes it while the caller works. A consumer
/// that asks for a batch still in the making helps: it claims the chunks left, so while the
/// caller trains one core prepares the next batch, and while the caller waits both do.
pub struct Prefetch {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

struct Shared {
    spec: Arc<Spec>,
    state: Mutex<State>,
    wake: Condvar,
    /// Bumped whenever a batch is started or the iterator stops: lets the thread spin-wait for
    /// work without taking the lock.
    events: AtomicUsize,
}

struct State {
    /// The batch being made: always batch number `handed`, started by the consumer.
    current: Option<Arc<Work>>,
    /// Batches given to the consumer so far.
    handed: usize,
    stop: bool,
    /// The error of a batch that could not be started (its memory refused): the consumer's next.
    refused: Option<Error>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("no thread panics holding the lock")
    }

    /// Makes chunks of `work` until none is left to claim; wakes waiters if this finished it.
    fn help(&self, work: &Work) {
        while work.run_one(&self.spec) {}
        if work.is_done() {
            let _g = self.lock();
            self.wake.notify_all();
        }
    }

    /// Starts the next batch if none is in the making. Only the consumer calls this, so every
    /// output buffer is allocated (and later freed, by Python) on the consumer's thread: glibc
    /// then recycles them from one arena instead of faulting fresh pages into another. A batch
    /// whose memory is refused stops the iterator with that error.
    fn start_next(&self, g: &mut State) {
        if g.current.is_none() && g.handed < self.spec.len() && !g.stop {
            match Work::new(&self.spec, g.handed) {
                Ok(w) => g.current = Some(Arc::new(w)),
                Err(e) => {
                    g.stop = true;
                    g.refused = Some(e);
                }
            }
            self.events.fetch_add(1, Ordering::Release);
            self.wake.notify_all();
        }
    }

    fn produce(&self) {
        let mut g = self.lock();
        loop {
            if g.stop || g.handed >= self.spec.len() {
                return;
            }
            match g.current.clone() {
                Some(w) if !w.all_claimed() => {
                    drop(g);
                    self.help(&w);
                    g = self.lock();
                }
                // Made (or being finished by the consumer), or not started yet: wait. Spin a
                // little first: a consumer that only hands a batch over to Python comes back
                // within microseconds, and a thread that never sleeps is never woken, so the
                // scheduler has no wake-up at which to put it on the consumer's core.
                _ => {
                    let seen = self.events.load(Ordering::Acquire);
                    drop(g);
                    spin_until(|| self.events.load(Ordering::Acquire) != seen);
                    g = self.lock();
                    if self.events.load(Ordering::Acquire) == seen && !g.stop {
                        g = self.wake.wait(g).expect("no thread panics holding the lock");
                    }
                }
            }
        }
    }

    fn consume(&self) -> Option<Result<(Buf, Buf, usize), Error>> {
        let mut g = self.lock();
        loop {
            self.start_next(&mut g);
            if let Some(e) = g.refused.take() {
                return Some(Err(e)); // the next batch's memory was refused
            }
            let w = g.current.clone()?;
            if w.is_done() {
                g.current = None;
                g.handed += 1;
                let batch = w.take();
                if batch.is_err() {
                    g.stop = true; // no batch after a failed one
                    self.events.fetch_add(1, Ordering::Release);
                    self.wake.notify_all();
                } else {
                    self.start_next(&mut g); // the thread makes the next one while the caller works
                }
                drop(g);
                return Some(batch);
            }
            if w.all_claimed() {
                // The last chunks are in another thread's hands and take microseconds: spin
                // for them rather than sleep (waking a sleeping thread costs more than that).
                drop(g);
                let spun = spin_until(|| w.is_done());
                g = self.lock();
                if !spun && !w.is_done() {
                    g = self.wake.wait(g).expect("no thread panics holding the lock");
                }
            } else {
                drop(g);
                self.help(&w);
                g = self.lock();
            }
        }
    }
}

/// Spins until `ready()` or about 100 microseconds have passed; says which. Yields the CPU
/// between rounds, so a waiter never starves the thread it waits for when the two share a core.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() > std::time::Duration::from_micros(100) {
            return false;
        }
        // If the thread we wait for shares our core, spinning would only delay it: let it run.
        std::thread::yield_now();
    }
}

impl Prefetch {
    pub fn start(spec: Arc<Spec>) -> Prefetch {
        let shared = Arc::new(Shared {
            spec,
            state: Mutex::new(State { current: None, handed: 0, stop: false, refused: None }),
            wake: Condvar::new(),
            events: AtomicUsize::new(0),
        });
        shared.start_next(&mut shared.lock()); // batch 0, allocated here on the consumer's thread
        let theirs = Arc::clone(&shared);
        // A thread the OS refuses (no memory for its stack, a thread limit) is no failure: the
        // consumer then makes every batch itself, as it helps with them anyway.
        let worker = std::thread::Builder::new().name("fmnist-batches".into()).spawn(move || theirs.produce()).ok();
        Prefetch { shared, worker }
    }

    /// Stops the thread (it finishes at most the chunk in hand) and waits for it.
    pub fn stop(&mut self) {
        {
            let mut g = self.shared.lock();
            g.stop = true;
            g.current = None;
            self.shared.events.fetch_add(1, Ordering::Release);
            self.shared.wake.notify_all();
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Iterator for Prefetch {
    type Item = Result<(Buf, Buf, usize), Error>;

    /// The next batch, or None after the last (or after `stop`); an error (once, then None) if
    /// making it panicked.
    fn next(&mut self) -> Option<Self::Item> {
        let got = self.shared.consume();
        if !matches!(got, Some(Ok(_))) {
            self.stop();
        }
        got
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<T: Element>(v: &[T], row_len: usize) -> Rows {
        // SAFETY: the test keeps `v` alive for as long as the Rows.
        unsafe { Rows::contiguous(v.as_ptr() as *const u8, v.len() / row_len, row_len, T::TYPE) }
    }

    #[test]
    fn gathers_in_order_with_a_short_last_batch() {
        let images: Vec<u8> = (0..20).collect();
        let labels: Vec<i64> = (0..10).collect();
        let spec = Spec {
            images: rows(&images, 2),
            labels: rows(&labels, 1),
            order: vec![9, 0, 4, 4, 7],
            batch_size: 2,
            drop_last: false,
            to_f32: None,
            augment: None,
        };
        spec.validate().unwrap();
        assert_eq!(spec.len(), 3);
        let (x, y, n) = spec.batch(2).unwrap();
        assert_eq!((x.as_slice::<u8>(), y.as_slice::<i64>(), n), (&[14u8, 15][..], &[7i64][..], 1));
        let seen: usize = Prefetch::start(Arc::new(spec)).map(|b| b.unwrap().2).sum();
        assert_eq!(seen, 5);
    }

    #[test]
    fn a_panic_in_the_batch_maker_is_an_error_then_the_end_never_a_hang() {
        // An index past the end (what `validate` refuses) makes the float conversion panic on
        // whichever thread takes the chunk: the consumer must get an error, then None.
        let images: Vec<u8> = (0..20).collect();
        let labels: Vec<u8> = (0..10).collect();
        let spec = Spec {
            images: rows(&images, 2),
            labels: rows(&labels, 1),
            order: vec![0, 1, 2, 3, 99, 5],
            batch_size: 2,
            drop_last: false,
            to_f32: Some(Normalize::new(None, None).unwrap()),
            augment: None,
        };
        assert!(spec.validate().is_err());
        let mut batches = Prefetch::start(Arc::new(spec));
        assert!(batches.next().unwrap().is_ok());
        assert!(batches.next().unwrap().is_ok());
        let failed = batches.next().unwrap().expect_err("batch 2 holds the bad index");
        assert!(failed.to_string().contains("making batch 2 failed"), "{failed}");
        assert!(batches.next().is_none());
    }

    #[test]
    fn float_conversion_is_numpys_arithmetic() {
        let images: Vec<u8> = vec![0, 1, 128, 255];
        let labels: Vec<u8> = vec![0, 1];
        let spec = Spec {
            images: rows(&images, 2),
            labels: rows(&labels, 1),
            order: vec![1, 0],
            batch_size: 4,
            drop_last: true,
            to_f32: Some(Normalize::new(Some(vec![0.5, 0.25]), Some(vec![0.5, 2.0])).unwrap()),
            augment: None,
        };
        assert_eq!(spec.len(), 0);
        let spec = Spec { drop_last: false, ..spec };
        let (x, _, n) = spec.batch(0).unwrap();
        assert_eq!((x.element_type(), n), (ElementType::F32, 2));
        let x = x.as_slice::<f32>().to_vec();
        let want = |v: u8, m: f32, s: f32| (v as f32 / 255.0 - m) / s;
        assert_eq!(x, vec![want(128, 0.5, 0.5), want(255, 0.25, 2.0), want(0, 0.5, 0.5), want(1, 0.25, 2.0)]);
    }

    #[test]
    fn uint8_scaling_is_the_correctly_rounded_quotient() {
        for v in 0..=255u8 {
            assert_eq!(v.to_f32(), v as f32 / 255.0, "{v}");
        }
    }

    #[test]
    fn stopping_early_ends_the_thread() {
        let images = vec![0u8; 1000];
        let spec = Spec {
            images: rows(&images, 10),
            labels: rows(&images[..100], 1),
            order: (0..100).collect(),
            batch_size: 1,
            drop_last: false,
            to_f32: None,
            augment: None,
        };
        let mut p = Prefetch::start(Arc::new(spec));
        assert!(p.next().is_some());
        p.stop();
        assert!(p.next().is_none());
    }

    #[test]
    fn validation_names_the_problem() {
        let images = vec![0u8; 10];
        let make = |order: Vec<usize>, bs: usize| Spec {
            images: rows(&images, 2),
            labels: rows(&images[..4], 1),
            order,
            batch_size: bs,
            drop_last: false,
            to_f32: None,
            augment: None,
        };
        assert!(make(vec![], 0).validate().unwrap_err().to_string().contains("batch_size"));
        // Augmenting images of another shape than the Spec's rows (only the Rust API can say so).
        let fused = crate::augment::Fused::new(
            crate::augment::Augment {
                pad: 1,
                hflip: 0.5,
                erase: 0.0,
                scale: (0.02, 0.33),
                ratio: (0.3, 3.3),
                value: vec![0.0],
            },
            0,
            0,
            &[3, 3],
            None,
        )
        .unwrap();
        let wrong = Spec {
            labels: rows(&images[..5], 1),
            augment: Some(Augmenting::new(fused, None).unwrap()),
            ..make(vec![0], 1)
        };
        let err = wrong.validate().unwrap_err().to_string();
        assert!(err.contains("augment's image shape (3, 3, 1) does not hold an image of 2 elements"), "{err}");
        assert!(make(vec![], 1).validate().unwrap_err().to_string().contains("images has 5 rows but labels has 4"));
    }
}

//! numpy arrays: allocated by numpy, or over memory an owner object keeps alive.
//!
//! Every array fmnist reads is allocated by numpy's own allocator (`new_array`, with the GIL)
//! and filled by the engine with the GIL released; numpy frees it as any array of its own
//! (OWNDATA, base None). Arrays over other memory (a mapped file, a finished batch column) are
//! made by `array_over` with an owner object as their base, so the memory lives exactly as long
//! as the last array or view of it. Only numpy's public C API is used: no struct field is written.

use std::os::raw::{c_int, c_void};

use numpy::npyffi::{npy_intp, NpyTypes, PyArrayObject, PyArray_Dims, NPY_ARRAY_CARRAY, NPY_ORDER, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::element::ElementType;

fn dims_of(dims: &[usize]) -> Vec<npy_intp> {
    dims.iter().map(|&d| d as npy_intp).collect()
}

/// numpy's dtype for an element type (native byte order): numpy's own builtin descriptor, looked
/// up by rust-numpy (no string parsing: this runs for every batch column).
pub fn descr<'py>(py: Python<'py>, ty: ElementType) -> PyResult<Bound<'py, PyArrayDescr>> {
    Ok(crate::with_element!(ty, T => numpy::dtype::<T>(py)))
}

/// `PyArray_NewFromDescr` for a C-contiguous array of `dims` elements of `ty`: over `data`
/// (null: numpy allocates) with `flags`.
///
/// # Safety
/// A non-null `data` must point to `product(dims)` elements of `ty`, aligned for it, that stay
/// valid for as long as the array (the caller gives it an owner as its base).
unsafe fn from_descr<'py>(
    py: Python<'py>,
    ty: ElementType,
    dims: &[usize],
    data: *mut u8,
    flags: c_int,
) -> PyResult<Bound<'py, PyAny>> {
    let mut dims = dims_of(dims);
    // descr is a new reference, stolen by the call; dims has nd entries; null strides: numpy
    // computes C strides.
    let array = PY_ARRAY_API.PyArray_NewFromDescr(
        py,
        PY_ARRAY_API.get_type_object(py, NpyTypes::PyArray_Type),
        descr(py, ty)?.into_dtype_ptr(),
        dims.len() as c_int,
        dims.as_mut_ptr(),
        std::ptr::null_mut(),
        data as *mut c_void,
        flags,
        std::ptr::null_mut(),
    );
    // A new reference, or null with an exception set (MemoryError when numpy cannot allocate).
    Bound::from_owned_ptr_or_err(py, array)
}

/// A new C-contiguous array of `dims`, allocated by numpy, not initialised: the caller fills it
/// (with the GIL released, before anyone else sees the array) through `bytes_mut`.
pub fn new_array<'py>(py: Python<'py>, ty: ElementType, dims: &[usize]) -> PyResult<Bound<'py, PyUntypedArray>> {
    // SAFETY: null data: numpy allocates the memory itself.
    Ok(unsafe { from_descr(py, ty, dims, std::ptr::null_mut(), 0)? }.cast_into::<PyUntypedArray>()?)
}

/// The memory of a C-contiguous array, read-only.
///
/// # Safety
/// The array must be C-contiguous and not written while the slice lives; the slice must not
/// outlive the array.
pub unsafe fn bytes_of<'a>(array: &Bound<'_, PyUntypedArray>) -> &'a [u8] {
    let len = array.len() * array.dtype().itemsize();
    if len == 0 {
        return &[];
    }
    std::slice::from_raw_parts((*array.as_array_ptr()).data.cast::<u8>(), len)
}

/// The memory of an array fmnist just allocated and nobody else has seen.
///
/// # Safety
/// The array must be C-contiguous and referenced by no one else while the slice lives; the
/// slice must not outlive the array.
pub unsafe fn bytes_mut<'a>(array: &Bound<'_, PyUntypedArray>) -> &'a mut [u8] {
    let len = array.len() * array.dtype().itemsize();
    if len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut((*array.as_array_ptr()).data.cast::<u8>(), len)
}

/// Gives an array fmnist allocated (and nobody else references) its final shape: `PyArray_Resize`,
/// which reallocates in place when the size shrinks (a gzip read is inflated into a buffer a
/// header longer than its payload).
pub fn resize(array: &Bound<'_, PyUntypedArray>, dims: &[usize]) -> PyResult<()> {
    let py = array.py();
    let mut dims = dims_of(dims);
    let mut shape = PyArray_Dims { ptr: dims.as_mut_ptr(), len: dims.len() as c_int };
    // SAFETY: an array we own alone (refcheck off is then sound); `shape` outlives the call.
    let done = unsafe { PY_ARRAY_API.PyArray_Resize(py, array.as_array_ptr(), &mut shape, 0, NPY_ORDER::NPY_CORDER) };
    // SAFETY: a new reference to None, or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, done) }.map(drop)
}

/// A writeable, C-contiguous array of `dims` elements of `ty` over `data`, which `owner` keeps
/// alive: the owner becomes the array's base.
///
/// # Safety
/// `data` must point to `product(dims)` elements of `ty`, aligned for it, valid and writeable
/// for as long as `owner` lives, and referenced by nothing else that writes.
pub unsafe fn array_over<'py>(
    owner: Bound<'py, PyAny>,
    ty: ElementType,
    dims: &[usize],
    data: *mut u8,
) -> PyResult<Bound<'py, PyAny>> {
    let py = owner.py();
    let array = from_descr(py, ty, dims, data, NPY_ARRAY_CARRAY)?;
    // Steals the reference to `owner`, even on failure.
    if PY_ARRAY_API.PyArray_SetBaseObject(py, array.as_ptr() as *mut PyArrayObject, owner.into_ptr()) < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(array)
}

/// The element type of a numpy array, and whether it is in native byte order: where the binding
/// turns numpy's runtime dtype into one of the engine's types.
pub fn element_type_of(array: &Bound<'_, PyUntypedArray>) -> PyResult<(ElementType, bool)> {
    let code: String = array.dtype().getattr("str")?.extract()?;
    let native = !code.starts_with(if cfg!(target_endian = "little") { '>' } else { '<' });
    ElementType::from_numpy_code(code.trim_start_matches(['<', '>', '|', '=']))
        .map(|t| (t, native || t.size() == 1))
        .ok_or_else(|| PyTypeError::new_err(format!("unsupported element type {code:?}")))
}

/// Keeps a file mapping alive for as long as a numpy array (its base object) uses it.
#[cfg(unix)]
#[pyclass(frozen, module = "fmnist._core")]
pub struct MappedFile {
    _mapping: crate::mapping::Mapping, // unmapped when the last array over it dies
}

/// map_idx(path, dtype, shape) -> the payload of the uncompressed IDX file at `path`, mapped
/// copy-on-write (writeable; writes stay private; no file descriptor held): an array of `shape`
/// and `dtype` whose base keeps the mapping. IdxFormatError when the file is not exactly an IDX
/// file of that type and shape (its header is parsed and its length checked here).
#[cfg(unix)]
#[pyfunction]
pub fn map_idx<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    dtype: &str,
    shape: Vec<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    use crate::idx::{self, Header};
    use crate::Error;
    super::errors::guarded("map_idx", || {
        let name = path.to_string_lossy().into_owned();
        let pyname = pyo3::types::PyString::new(py, &name);
        let fail = |e: Error| super::errors::to_py(py, e, &name, Some(&pyname));
        let ty = ElementType::from_name(dtype).ok_or_else(|| fail(Error::Usage(format!("unknown dtype {dtype:?}"))))?;
        let want = Header::new(ty, shape.clone()).map_err(fail)?;
        let mapping = super::exit::detach(py, || crate::mapping::Mapping::open(&path)).map_err(fail)?;
        let Some(mapping) = mapping else {
            return Err(fail(Error::Format(format!("empty file, not an IDX file of {want}"))));
        };
        let found = idx::parse(mapping.as_slice()).map_err(fail)?;
        if found != want {
            return Err(fail(Error::Format(format!("an IDX file of {found}, not of {want}"))));
        }
        idx::check_len(&found, mapping.len()).map_err(fail)?;
        // The payload starts header_len bytes into the (page-aligned) mapping: a multiple of 4,
        // so 1-, 2- and 4-byte elements are aligned; 8-byte ones need an even dimension count.
        let payload = mapping.as_ptr().wrapping_add(want.header_len());
        if !(payload as usize).is_multiple_of(ty.size()) {
            return Err(fail(Error::Format(format!(
                "the payload of {want} starts at byte {}, not aligned for {ty}: cannot be mapped",
                want.header_len()
            ))));
        }
        let owner = Bound::new(py, MappedFile { _mapping: mapping })?.into_any();
        // SAFETY: the payload (product(shape) elements of ty, checked against the file's length)
        // lies inside the mapping, aligned (checked), and stays mapped while its owner lives.
        unsafe { array_over(owner, ty, &shape, payload) }
    })
}

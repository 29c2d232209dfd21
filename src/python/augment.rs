//! Augmentation from Python: `fmnist.Augment`'s parameters read from the object itself and
//! checked here, once (their types here, their ranges by the engine's `Augment::validate`; every
//! message names the parameter), the seed and epoch that key the draws, and the draws for given
//! examples (what the batch maker applies).

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use super::errors::{guarded, usage};
use super::exit::detach;
use crate::augment::Augment;

/// An int (not a bool); its range is the engine's to judge.
fn int(name: &str, v: &Bound<'_, PyAny>) -> PyResult<i128> {
    if v.is_instance_of::<PyBool>() || !(v.is_instance_of::<PyInt>() || v.hasattr("__index__")?) {
        return Err(PyTypeError::new_err(format!("Augment.{name} must be an int, not {}", v.repr()?)));
    }
    // Out of i128: certainly out of range; the engine says which range.
    Ok(v.call_method0("__index__")?.extract::<i128>().unwrap_or(i128::MAX))
}

/// A real number (int or float, not a bool or a string).
fn number(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    let numeric = v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>() || v.hasattr("__float__")?;
    if v.is_instance_of::<PyBool>() || v.is_instance_of::<PyString>() || !numeric {
        return Err(PyTypeError::new_err(format!("Augment.{name} must be a number, not {}", v.repr()?)));
    }
    v.extract::<f64>()
}

/// A (min, max) pair of numbers.
fn pair(name: &str, v: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let items: Option<Vec<Bound<'_, PyAny>>> = if v.is_instance_of::<PyString>() {
        None
    } else {
        v.try_iter().ok().and_then(|i| i.collect::<PyResult<_>>().ok())
    };
    match items.as_deref() {
        Some([lo, hi]) => Ok((number(name, lo)?, number(name, hi)?)),
        _ => {
            Err(PyTypeError::new_err(format!("Augment.{name} must be a (min, max) pair of numbers, not {}", v.repr()?)))
        }
    }
}

/// One number, or one per channel (torchvision's value='random' is not offered).
fn values(v: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    if v.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "Augment.value must be a number or one per channel, not {} (torchvision's value='random' is not supported)",
            v.repr()?
        )));
    }
    match v.try_iter() {
        Ok(items) => items.map(|x| number("value", &x?)).collect(),
        Err(_) => Ok(vec![number("value", v)?]),
    }
}

/// The parameters of an `fmnist.Augment` (or any object with its attributes), their types and
/// ranges checked: the one place they are.
pub fn params(augment: &Bound<'_, PyAny>) -> PyResult<Augment> {
    let get = |name: &str| augment.getattr(name);
    let pad = int("pad", &get("pad")?)?;
    let a = Augment {
        pad: usize::try_from(pad).unwrap_or(usize::MAX),
        hflip: number("hflip", &get("hflip")?)?,
        erase: number("erase", &get("erase")?)?,
        scale: pair("scale", &get("scale")?)?,
        ratio: pair("ratio", &get("ratio")?)?,
        value: values(&get("value")?)?,
    };
    if pad < 0 {
        return Err(PyValueError::new_err(format!(
            "Augment.pad must be an int from 0 to {}, not {pad}",
            crate::augment::MAX_PAD
        )));
    }
    a.validate().map_err(usage)?;
    Ok(a)
}

/// augment_check(augment) -> (pad, hflip, erase, scale, ratio, value): the parameters as the
/// engine holds them (an int, floats, pairs of floats, a float or a tuple of floats), for
/// `fmnist.Augment` to keep; TypeError or ValueError naming the parameter at fault.
#[pyfunction]
pub fn augment_check<'py>(py: Python<'py>, augment: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    let a = params(augment)?;
    let value = if a.value.len() == 1 && augment.getattr("value")?.try_iter().is_err() {
        a.value[0].into_pyobject(py)?.into_any()
    } else {
        pyo3::types::PyTuple::new(py, &a.value)?.into_any()
    };
    (a.pad, a.hflip, a.erase, a.scale, a.ratio, value).into_pyobject(py)
}

/// A seed (0 to 2**64 - 1) and an epoch (0 to 2**32 - 1), as augmentation's generator is keyed.
pub fn seed_epoch(seed: &Bound<'_, PyAny>, epoch: &Bound<'_, PyAny>) -> PyResult<(u64, u32)> {
    let bad = |name: &str, bits: u32, v: &Bound<'_, PyAny>| {
        PyValueError::new_err(format!(
            "with augment, {name} must be an int in [0, 2**{bits}), not {}",
            v.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    fn as_int<'py, T: for<'a> FromPyObject<'a, 'py>>(v: &Bound<'py, PyAny>) -> Option<T> {
        if v.is_instance_of::<PyBool>() {
            return None;
        }
        v.call_method0("__index__").ok()?.extract::<T>().ok()
    }
    let s = as_int::<u64>(seed).ok_or_else(|| bad("seed", 64, seed))?;
    let e = as_int::<u32>(epoch).ok_or_else(|| bad("epoch", 32, epoch))?;
    Ok((s, e))
}

type Draws<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<bool>>, Bound<'py, PyArray2<i64>>);

/// augment_draws(augment, indices, seed, epoch, height, width) -> (crop (n, 2), flip (n,), erase
/// (n, 4)): for each row index, the crop's (top, left) in the padded image, the flip, and the
/// erased (top, left, height, width); exactly what the batch maker applies to that row.
#[pyfunction]
pub fn augment_draws<'py>(
    py: Python<'py>,
    augment: &Bound<'py, PyAny>,
    indices: PyReadonlyArray1<'py, i64>,
    seed: &Bound<'py, PyAny>,
    epoch: &Bound<'py, PyAny>,
    height: usize,
    width: usize,
) -> PyResult<Draws<'py>> {
    guarded("augment_draws", || {
        let a = params(augment)?;
        let (seed, epoch) = seed_epoch(seed, epoch)?;
        let indices = indices.as_array();
        if let Some(bad) = indices.iter().find(|&&i| i < 0) {
            return Err(PyValueError::new_err(format!("indices must be >= 0, not {bad}")));
        }
        let n = indices.len();
        let what = || format!("the draws of {n} examples");
        let room = |k: usize| crate::with_room::<i64>(k.saturating_mul(n), what);
        let refused = |e: crate::Error| PyMemoryError::new_err(e.to_string());
        let (mut crop, mut erase) = (room(2).map_err(refused)?, room(4).map_err(refused)?);
        let mut flip = crate::with_room::<bool>(n, what).map_err(refused)?;
        detach(py, || {
            for &i in indices.iter() {
                let d = a.draw(seed, epoch, i as u64, height, width);
                crop.extend([d.top as i64, d.left as i64]);
                flip.push(d.flip);
                erase.extend(d.erase.map(|v| v as i64));
            }
        });
        let shaped =
            |v: Vec<i64>, k: usize| ndarray::Array2::from_shape_vec((n, k), v).expect("n rows of k").into_pyarray(py);
        Ok((shaped(crop, 2), flip.into_pyarray(py), shaped(erase, 4)))
    })
}

//! Augmentation from Python: `fmnist.Augment`'s parameters read from the object itself, their
//! range checks, and the draws for given examples (what the batch maker applies).

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;

use super::errors::{guarded, usage};
use super::exit::detach;
use crate::augment::Augment;

/// A number, or a sequence of numbers (one per channel).
fn numbers(value: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    match value.extract::<f64>() {
        Ok(v) => Ok(vec![v]),
        Err(_) => value.extract::<Vec<f64>>(),
    }
}

/// The attributes of an `fmnist.Augment` (whose constructor checked their types).
#[derive(FromPyObject)]
pub struct AugmentArgs {
    pad: usize,
    hflip: f64,
    erase: f64,
    scale: (f64, f64),
    ratio: (f64, f64),
    #[pyo3(from_py_with = numbers)]
    value: Vec<f64>,
}

impl AugmentArgs {
    /// The engine's parameters, range-checked.
    pub fn checked(self) -> PyResult<Augment> {
        let a = Augment {
            pad: self.pad,
            hflip: self.hflip,
            erase: self.erase,
            scale: self.scale,
            ratio: self.ratio,
            value: self.value,
        };
        a.validate().map_err(usage)?;
        Ok(a)
    }
}

/// augment_check(augment): raises ValueError naming the parameter out of its range.
#[pyfunction]
pub fn augment_check(augment: AugmentArgs) -> PyResult<()> {
    augment.checked().map(|_| ())
}

type Draws<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<bool>>, Bound<'py, PyArray2<i64>>);

/// augment_draws(augment, indices, seed, epoch, height, width) -> (crop (n, 2), flip (n,), erase
/// (n, 4)): for each row index, the crop's (top, left) in the padded image, the flip, and the
/// erased (top, left, height, width); exactly what the batch maker applies to that row.
#[pyfunction]
pub fn augment_draws<'py>(
    py: Python<'py>,
    augment: AugmentArgs,
    indices: PyReadonlyArray1<'py, i64>,
    seed: u64,
    epoch: u32,
    height: usize,
    width: usize,
) -> PyResult<Draws<'py>> {
    guarded("augment_draws", || {
        let a = augment.checked()?;
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

//! The element types: one sealed `unsafe trait` for all that differs between them, one runtime
//! tag, and one dispatch from the tag to code generic over the trait.
//!
//! IDX holds six element types (uint8, int8, int16, int32, float32, float64); the batch maker
//! also reads uint16, uint32, uint64 and int64 arrays (int64 labels are common), which have no
//! IDX type code. Everything type-specific lives here: size, names, IDX code, byte order, and
//! the conversion to float32. Payloads, the reader, the writer and the batch maker are generic
//! over `Element`; the binding (`python.rs`) turns a runtime `ElementType` into a type once,
//! with `with_element!`, and typed values back into numpy arrays through `Typed`.

use std::fmt;

mod sealed {
    pub trait Sealed {}
}

/// A runtime element type: what an IDX header or a numpy dtype names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

/// A primitive number the engine reads and writes.
///
/// # Safety
/// Implemented only here (the trait is sealed), for primitive integers and floats: no padding,
/// and every bit pattern is a valid value, so a zeroed block, or any bytes read into one, is a
/// valid slice of `Self`; `TYPE` names `Self` exactly (size and alignment follow from it).
pub unsafe trait Element:
    Copy + Default + PartialEq + fmt::Debug + Send + Sync + 'static + sealed::Sealed
{
    const TYPE: ElementType;
    /// From big-endian (as stored in IDX) to native byte order.
    fn be_to_native(self) -> Self;
    /// Writes the value big-endian into `out` (`size_of::<Self>()` bytes).
    fn write_be(self, out: &mut [u8]);
    /// As numpy's `astype(np.float32)` (round to nearest), and for uint8 then divided by 255
    /// (correctly rounded): what a float32 training batch holds.
    fn to_f32(self) -> f32;
}

macro_rules! element {
    ($($t:ty => $v:ident, $to_f32:expr);* $(;)?) => {$(
        impl sealed::Sealed for $t {}
        // SAFETY: a primitive number: no padding, no invalid bit patterns; TYPE names it.
        unsafe impl Element for $t {
            const TYPE: ElementType = ElementType::$v;
            #[inline(always)]
            fn be_to_native(self) -> Self {
                <$t>::from_be_bytes(self.to_ne_bytes())
            }
            #[inline(always)]
            fn write_be(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_be_bytes());
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                let to_f32: fn($t) -> f32 = $to_f32;
                to_f32(self)
            }
        }
    )*};
}

/// `x / 255` correctly rounded to float32, as numpy's float32 division gives it, without a
/// division: the product with 1/255 corrected by its exact residual (two fused multiply-adds)
/// is the correctly rounded quotient for all 256 values (tested).
#[inline(always)]
fn unit_interval(x: u8) -> f32 {
    const R: f32 = 1.0 / 255.0;
    let x = x as f32;
    let q = x * R;
    (-q).mul_add(255.0, x).mul_add(R, q)
}

element! {
    u8 => U8, unit_interval;
    i8 => I8, |x| x as f32;
    u16 => U16, |x| x as f32;
    i16 => I16, |x| x as f32;
    u32 => U32, |x| x as f32;
    i32 => I32, |x| x as f32;
    u64 => U64, |x| x as f32;
    i64 => I64, |x| x as f32;
    f32 => F32, |x| x;
    f64 => F64, |x| x as f32;
}

impl ElementType {
    pub const ALL: [ElementType; 10] = [
        ElementType::U8,
        ElementType::I8,
        ElementType::U16,
        ElementType::I16,
        ElementType::U32,
        ElementType::I32,
        ElementType::U64,
        ElementType::I64,
        ElementType::F32,
        ElementType::F64,
    ];

    /// (type, IDX code, numpy name, numpy dtype code): the one table of names.
    const NAMES: [(ElementType, Option<u8>, &'static str, &'static str); 10] = [
        (ElementType::U8, Some(0x08), "uint8", "u1"),
        (ElementType::I8, Some(0x09), "int8", "i1"),
        (ElementType::U16, None, "uint16", "u2"),
        (ElementType::I16, Some(0x0B), "int16", "i2"),
        (ElementType::U32, None, "uint32", "u4"),
        (ElementType::I32, Some(0x0C), "int32", "i4"),
        (ElementType::U64, None, "uint64", "u8"),
        (ElementType::I64, None, "int64", "i8"),
        (ElementType::F32, Some(0x0D), "float32", "f4"),
        (ElementType::F64, Some(0x0E), "float64", "f8"),
    ];

    fn row(self) -> &'static (ElementType, Option<u8>, &'static str, &'static str) {
        Self::NAMES.iter().find(|r| r.0 == self).expect("every type has a row")
    }

    pub fn size(self) -> usize {
        crate::with_element!(self, T => std::mem::size_of::<T>())
    }

    /// numpy's name: "uint8", "float32", ...
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The IDX type code, for the six types IDX holds.
    pub fn idx_code(self) -> Option<u8> {
        self.row().1
    }

    pub fn from_idx_code(code: u8) -> Option<ElementType> {
        Self::NAMES.iter().find(|r| r.1 == Some(code)).map(|r| r.0)
    }

    /// numpy's dtype code without byte order: "u1", "f4", ...
    pub fn numpy_code(self) -> &'static str {
        self.row().3
    }

    pub fn from_numpy_code(code: &str) -> Option<ElementType> {
        Self::NAMES.iter().find(|r| r.3 == code).map(|r| r.0)
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `$body` with `$T` bound to the Rust type of `$ty` (an `ElementType`): the one dispatch
/// from a runtime element type to code generic over `Element`.
#[macro_export]
macro_rules! with_element {
    ($ty:expr, $T:ident => $body:expr) => {
        match $ty {
            $crate::element::ElementType::U8 => {
                type $T = u8;
                $body
            }
            $crate::element::ElementType::I8 => {
                type $T = i8;
                $body
            }
            $crate::element::ElementType::U16 => {
                type $T = u16;
                $body
            }
            $crate::element::ElementType::I16 => {
                type $T = i16;
                $body
            }
            $crate::element::ElementType::U32 => {
                type $T = u32;
                $body
            }
            $crate::element::ElementType::I32 => {
                type $T = i32;
                $body
            }
            $crate::element::ElementType::U64 => {
                type $T = u64;
                $body
            }
            $crate::element::ElementType::I64 => {
                type $T = i64;
                $body
            }
            $crate::element::ElementType::F32 => {
                type $T = f32;
                $body
            }
            $crate::element::ElementType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub use with_element;

/// A kind of container, for `Typed`: `Payloads`, `Vecs`, `RowsOf`.
pub trait Family {
    type Of<T: Element>;
}

/// One value of a `Family` per element type: a typed payload, batch column or source array
/// whose element type is known only at run time. `each_typed!` opens it.
pub enum Typed<F: Family> {
    U8(F::Of<u8>),
    I8(F::Of<i8>),
    U16(F::Of<u16>),
    I16(F::Of<i16>),
    U32(F::Of<u32>),
    I32(F::Of<i32>),
    U64(F::Of<u64>),
    I64(F::Of<i64>),
    F32(F::Of<f32>),
    F64(F::Of<f64>),
}

/// Conversion of a value of `F::Of<T>` into `Typed<F>`.
pub trait IntoTyped<F: Family>: Element {
    fn typed(value: F::Of<Self>) -> Typed<F>;
}

macro_rules! into_typed {
    ($($t:ty => $v:ident),*) => {$(
        impl<F: Family> IntoTyped<F> for $t {
            fn typed(value: F::Of<$t>) -> Typed<F> {
                Typed::$v(value)
            }
        }
    )*};
}
into_typed!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, u64 => U64, i64 => I64,
            f32 => F32, f64 => F64);

/// Runs `$body` with `$v` bound to the value inside a `Typed` (by value, `&` or `&mut`, as the
/// expression gives it), whatever its element type.
#[macro_export]
macro_rules! each_typed {
    ($typed:expr, $v:ident => $body:expr) => {
        match $typed {
            $crate::element::Typed::U8($v) => $body,
            $crate::element::Typed::I8($v) => $body,
            $crate::element::Typed::U16($v) => $body,
            $crate::element::Typed::I16($v) => $body,
            $crate::element::Typed::U32($v) => $body,
            $crate::element::Typed::I32($v) => $body,
            $crate::element::Typed::U64($v) => $body,
            $crate::element::Typed::I64($v) => $body,
            $crate::element::Typed::F32($v) => $body,
            $crate::element::Typed::F64($v) => $body,
        }
    };
}
pub use each_typed;

impl<F: Family> Typed<F> {
    pub fn element_type(&self) -> ElementType {
        match self {
            Typed::U8(_) => ElementType::U8,
            Typed::I8(_) => ElementType::I8,
            Typed::U16(_) => ElementType::U16,
            Typed::I16(_) => ElementType::I16,
            Typed::U32(_) => ElementType::U32,
            Typed::I32(_) => ElementType::I32,
            Typed::U64(_) => ElementType::U64,
            Typed::I64(_) => ElementType::I64,
            Typed::F32(_) => ElementType::F32,
            Typed::F64(_) => ElementType::F64,
        }
    }
}

/// `Typed<Vecs>`: a finished batch column.
pub struct Vecs;
impl Family for Vecs {
    type Of<T: Element> = Vec<T>;
}

impl<F: Family> fmt::Debug for Typed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typed<{}>", self.element_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_of_names_and_codes() {
        for t in ElementType::ALL {
            assert_eq!(ElementType::from_numpy_code(t.numpy_code()), Some(t));
            if let Some(code) = t.idx_code() {
                assert_eq!(ElementType::from_idx_code(code), Some(t));
            }
        }
        assert_eq!(ElementType::ALL.iter().filter(|t| t.idx_code().is_some()).count(), 6);
        assert_eq!(ElementType::from_idx_code(0x0A), None);
        assert_eq!((ElementType::F64.size(), ElementType::U16.size()), (8, 2));
    }

    #[test]
    fn byte_order_and_float_conversion() {
        assert_eq!(0x0102i16.to_be().be_to_native(), 0x0102);
        let mut out = [0u8; 4];
        1.5f32.write_be(&mut out);
        assert_eq!(out, 1.5f32.to_be_bytes());
        for x in 0..=255u8 {
            assert_eq!(x.to_f32(), x as f32 / 255.0, "{x}");
        }
        assert_eq!((-3i64).to_f32(), -3.0);
    }
}

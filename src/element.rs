//! Element types: one runtime tag (`ElementType`) with the one table of names, codes and sizes,
//! and a sealed trait (`Element`) for the only work that needs the Rust type: conversion to
//! float32.
//!
//! IDX holds six element types (uint8, int8, int16, int32, float32, float64); the batch maker
//! also reads uint16, uint32, uint64 and int64 arrays (int64 labels are common), which have no
//! IDX type code. Reading, byte swapping, gathering rows and writing work on bytes and an
//! `ElementType` (by item size); only `batches`' float32 conversion opens the type, with
//! `with_element!`.

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

/// A primitive number the batch maker converts to float32.
///
/// # Safety
/// Implemented only here (the trait is sealed), for primitive integers and floats: no padding,
/// and every bit pattern is a valid value, so any bytes of the right length and alignment are
/// a valid slice of `Self`; `TYPE` names `Self` exactly.
pub unsafe trait Element: Copy + Default + Send + Sync + 'static + sealed::Sealed {
    const TYPE: ElementType;
    /// `v as Self`: the augmenter's erasing value in an image's own type (the caller has
    /// checked that `v` is exactly representable).
    fn from_f64(v: f64) -> Self;
    /// `self as f64`: whether a value survives `from_f64` unchanged.
    fn to_f64(self) -> f64;
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
            fn to_f32(self) -> f32 {
                let to_f32: fn($t) -> f32 = $to_f32;
                to_f32(self)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
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

/// A row of the type table.
struct Row {
    ty: ElementType,
    idx_code: Option<u8>,
    name: &'static str,
    numpy_code: &'static str,
    size: usize,
}

const fn row(ty: ElementType, idx_code: Option<u8>, name: &'static str, numpy_code: &'static str, size: usize) -> Row {
    Row { ty, idx_code, name, numpy_code, size }
}

/// The one table of element types: IDX code, numpy name, numpy dtype code, item size.
const TABLE: [Row; 10] = [
    row(ElementType::U8, Some(0x08), "uint8", "u1", 1),
    row(ElementType::I8, Some(0x09), "int8", "i1", 1),
    row(ElementType::U16, None, "uint16", "u2", 2),
    row(ElementType::I16, Some(0x0B), "int16", "i2", 2),
    row(ElementType::U32, None, "uint32", "u4", 4),
    row(ElementType::I32, Some(0x0C), "int32", "i4", 4),
    row(ElementType::U64, None, "uint64", "u8", 8),
    row(ElementType::I64, None, "int64", "i8", 8),
    row(ElementType::F32, Some(0x0D), "float32", "f4", 4),
    row(ElementType::F64, Some(0x0E), "float64", "f8", 8),
];

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

    fn row(self) -> &'static Row {
        TABLE.iter().find(|r| r.ty == self).expect("every type has a row")
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        self.row().size
    }

    /// numpy's name: "uint8", "float32", ...
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The IDX type code, for the six types IDX holds.
    pub fn idx_code(self) -> Option<u8> {
        self.row().idx_code
    }

    pub fn from_idx_code(code: u8) -> Option<ElementType> {
        TABLE.iter().find(|r| r.idx_code == Some(code)).map(|r| r.ty)
    }

    /// numpy's dtype code without byte order: "u1", "f4", ...
    pub fn numpy_code(self) -> &'static str {
        self.row().numpy_code
    }

    pub fn from_numpy_code(code: &str) -> Option<ElementType> {
        TABLE.iter().find(|r| r.numpy_code == code).map(|r| r.ty)
    }

    pub fn from_name(name: &str) -> Option<ElementType> {
        TABLE.iter().find(|r| r.name == name).map(|r| r.ty)
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Swaps the byte order of every `size`-byte item of `bytes` in place (big-endian as stored in
/// IDX to native, or back); nothing to do for single bytes or on a big-endian machine.
pub fn swap_in_place(bytes: &mut [u8], size: usize) {
    move_swapped(bytes, 0, bytes.len(), size)
}

/// Moves `len` bytes at `from` to the start of `buf`, swapping each `size`-byte item to native
/// order on the way (big-endian as stored, on a little-endian machine): the one pass that puts
/// an inflated payload where its array starts. `from` may be 0 (a swap in place).
pub fn move_swapped(buf: &mut [u8], from: usize, len: usize, size: usize) {
    assert!(from + len <= buf.len() && len.is_multiple_of(size.max(1)), "a payload of whole items inside the buffer");
    if size == 1 || cfg!(target_endian = "big") {
        buf.copy_within(from..from + len, 0);
        return;
    }
    // Item k is read (whole) before item k is written, and item k's destination lies before its
    // source, so moving forwards never overwrites an item not yet read.
    macro_rules! swap {
        ($t:ty) => {{
            let n = len / size;
            let p = buf.as_mut_ptr();
            for k in 0..n {
                // SAFETY: both ranges lie inside `buf` (asserted above); unaligned access is
                // allowed by read_unaligned/write_unaligned.
                unsafe {
                    let x = std::ptr::read_unaligned(p.add(from + k * size) as *const $t);
                    std::ptr::write_unaligned(p.add(k * size) as *mut $t, x.swap_bytes());
                }
            }
        }};
    }
    match size {
        2 => swap!(u16),
        4 => swap!(u32),
        8 => swap!(u64),
        _ => unreachable!("element types are 1, 2, 4 or 8 bytes"),
    }
}

/// Runs `$body` with `$T` bound to the Rust type of `$ty` (an `ElementType`): the one dispatch
/// from a runtime element type to code generic over `Element` (the float32 conversion).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_of_names_codes_and_sizes() {
        for t in ElementType::ALL {
            assert_eq!(ElementType::from_numpy_code(t.numpy_code()), Some(t));
            assert_eq!(ElementType::from_name(t.name()), Some(t));
            assert_eq!(t.size(), with_element!(t, T => std::mem::size_of::<T>()));
            assert_eq!(with_element!(t, T => T::TYPE), t);
            if let Some(code) = t.idx_code() {
                assert_eq!(ElementType::from_idx_code(code), Some(t));
            }
        }
        assert_eq!(ElementType::ALL.iter().filter(|t| t.idx_code().is_some()).count(), 6);
        assert_eq!(ElementType::from_idx_code(0x0A), None);
    }

    #[test]
    fn float_conversion() {
        for x in 0..=255u8 {
            assert_eq!(x.to_f32(), x as f32 / 255.0, "{x}");
        }
        assert_eq!((-3i64).to_f32(), -3.0);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn moves_and_swaps_items() {
        let mut buf = vec![9, 9, 9, 9, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        move_swapped(&mut buf, 4, 8, 4);
        assert_eq!(&buf[..8], &[4, 3, 2, 1, 8, 7, 6, 5]);
        let mut buf = vec![0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        move_swapped(&mut buf, 4, 16, 8);
        assert_eq!(&buf[..16], &[8, 7, 6, 5, 4, 3, 2, 1, 16, 15, 14, 13, 12, 11, 10, 9]);
        let mut b = vec![1, 2, 3, 4];
        swap_in_place(&mut b, 2);
        assert_eq!(b, [2, 1, 4, 3]);
        let mut b = vec![7, 1, 2, 3];
        move_swapped(&mut b, 1, 3, 1);
        assert_eq!(&b[..3], &[1, 2, 3]);
    }
}

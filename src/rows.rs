//! Rows of an array someone else owns, read in any order: what the batch maker and augmentation
//! gather from. A row is contiguous; rows may be any number of bytes apart (a view every other
//! row, a reversed view, a broadcast view whose rows all share one memory), so no view is copied
//! to be read.

use crate::element::{Element, ElementType};

/// Rows are read in random order, so the hardware cannot guess the next one: we tell it
/// this many rows ahead (measured on Fashion-MNIST rows of 784 bytes: 1, 2 and 4 are close,
/// 8 starts to evict what is still needed).
pub const PREFETCH_ROWS: usize = 4;

/// Asks the CPU to start loading `bytes` bytes at `p` into cache, one 64-byte line at a time.
/// A hint only: never faults. x86_64 has `prefetcht0`, aarch64 `prfm pldl1keep` (stable Rust
/// has no intrinsic for it, so inline asm); elsewhere it does nothing.
#[inline(always)]
pub fn prefetch(p: *const u8, bytes: usize) {
    for line in (0..bytes).step_by(64) {
        let at = p.wrapping_add(line);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetch instructions never fault, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch(at as *const i8, std::arch::x86_64::_MM_HINT_T0)
        };
        #[cfg(target_arch = "aarch64")]
        // SAFETY: prfm is a hint that never faults, whatever the address; it changes no memory
        // the program can observe, touches no stack and leaves the flags alone.
        unsafe {
            std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) at, options(nostack, readonly, preserves_flags))
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = at;
    }
}

/// `count` rows of `row_len` contiguous elements of type `ty`, row `i` starting `i * stride`
/// bytes from row 0, owned by someone else who keeps them alive (and unmoved) for as long as
/// this value exists. Read only.
pub struct Rows {
    ptr: *const u8,
    count: usize,
    row_len: usize,
    stride: isize,
    ty: ElementType,
}

// SAFETY: Rows is only ever read, and `Rows::new`'s contract makes the memory valid for reads
// for its whole life, from any thread.
unsafe impl Send for Rows {}
unsafe impl Sync for Rows {}

impl Rows {
    /// # Safety
    /// For every `i < count`, `ptr + i * stride` must point to `row_len` initialised elements
    /// of `ty`, aligned for it, that stay valid and unmoved until this `Rows` is dropped (rows
    /// may overlap: they are only read).
    pub unsafe fn new(ptr: *const u8, count: usize, row_len: usize, stride: isize, ty: ElementType) -> Rows {
        Rows { ptr, count, row_len, stride, ty }
    }

    /// C-contiguous rows: each right after the one before.
    ///
    /// # Safety
    /// As `new`, with `ptr` pointing to `count * row_len` elements.
    pub unsafe fn contiguous(ptr: *const u8, count: usize, row_len: usize, ty: ElementType) -> Rows {
        Rows::new(ptr, count, row_len, (row_len * ty.size()) as isize, ty)
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn row_len(&self) -> usize {
        self.row_len
    }

    pub fn element_type(&self) -> ElementType {
        self.ty
    }

    pub fn row_bytes(&self) -> usize {
        self.row_len * self.ty.size()
    }

    #[inline(always)]
    fn start(&self, i: usize) -> *const u8 {
        debug_assert!(i < self.count);
        self.ptr.wrapping_offset(i as isize * self.stride)
    }

    /// Row `i` as `T` (which must be the rows' type); `i < count`.
    #[inline(always)]
    pub fn row<T: Element>(&self, i: usize) -> &[T] {
        debug_assert_eq!(T::TYPE, self.ty, "rows are read as their own type");
        assert!(i < self.count, "row {i} of {}", self.count);
        // SAFETY: guaranteed by the contract of `Rows::new` for i < count, and T is `ty`'s type.
        unsafe { std::slice::from_raw_parts(self.start(i) as *const T, self.row_len) }
    }

    /// Row `i` as bytes.
    #[inline(always)]
    pub fn row_as_bytes(&self, i: usize) -> &[u8] {
        assert!(i < self.count, "row {i} of {}", self.count);
        // SAFETY: as `row`: the row's bytes are valid for reads.
        unsafe { std::slice::from_raw_parts(self.start(i), self.row_bytes()) }
    }

    /// Asks for row `i` to be loaded into cache (any `i`: a hint never faults).
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        prefetch(self.ptr.wrapping_offset(i as isize * self.stride), self.row_bytes())
    }

    /// Prefetches the first rows of `idx`: call before walking it with `ahead`.
    #[inline(always)]
    pub fn prefetch_first(&self, idx: &[usize]) {
        idx.iter().take(PREFETCH_ROWS).for_each(|&i| self.prefetch(i));
    }

    /// At position `r` of a walk over `idx`, prefetches the row `PREFETCH_ROWS` ahead.
    #[inline(always)]
    pub fn ahead(&self, idx: &[usize], r: usize) {
        if let Some(&next) = idx.get(r + PREFETCH_ROWS) {
            self.prefetch(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_at_any_stride() {
        let data: Vec<u8> = (0..12).collect();
        // SAFETY: every row read lies inside `data`.
        let every_other = unsafe { Rows::new(data.as_ptr(), 3, 2, 4, ElementType::U8) };
        assert_eq!(every_other.row::<u8>(2), &[8, 9]);
        let reversed = unsafe { Rows::new(data.as_ptr().add(10), 6, 2, -2, ElementType::U8) };
        assert_eq!(reversed.row::<u8>(0), &[10, 11]);
        assert_eq!(reversed.row::<u8>(5), &[0, 1]);
        let broadcast = unsafe { Rows::new(data.as_ptr(), 1 << 40, 3, 0, ElementType::U8) };
        assert_eq!(broadcast.row::<u8>((1 << 40) - 1), &[0, 1, 2]);
        let plain = unsafe { Rows::contiguous(data.as_ptr(), 4, 3, ElementType::U8) };
        assert_eq!(plain.row_as_bytes(3), &[9, 10, 11]);
    }
}

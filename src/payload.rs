//! The memory an array's payload lives in.
//!
//! One zeroed block (calloc: the kernel hands large blocks out as lazy zero pages, so zeroing
//! costs no pass) with a fixed prefix of `PREFIX` bytes before the payload. The IDX header is
//! inflated into the end of that prefix, right before the payload, so the whole content lands in
//! place and the payload needs no copy; the payload starts 16-byte aligned (calloc's alignment,
//! and `PREFIX` is a multiple of 16), as numpy's own allocations do: every element type fits.
//!
//! numpy takes ownership of a payload through a memory handler (`python.rs`) whose `free`,
//! `malloc`, `calloc` and `realloc` are the functions at the end of this file: the array then
//! owns its data (`OWNDATA`) and frees it with the allocator that made it.

use std::marker::PhantomData;
use std::os::raw::c_void;
use std::ptr::NonNull;

use crate::element::{Element, Family};

/// Bytes reserved before every payload: room for the largest IDX header (4 + 4 * 255 = 1024),
/// and a multiple of 64 so the payload keeps the block's alignment.
pub const PREFIX: usize = 1088;

/// `Typed<Payloads>`: a decoded payload whose element type is known at run time.
pub struct Payloads;
impl Family for Payloads {
    type Of<T: Element> = Payload<T>;
}

/// An owned, zero-initialised payload of `len` elements of `T`, preceded by `PREFIX` bytes.
pub struct Payload<T> {
    ptr: NonNull<T>,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: a Payload owns its block exclusively, like a Vec<T>.
unsafe impl<T: Send> Send for Payload<T> {}
unsafe impl<T: Sync> Sync for Payload<T> {}

impl<T> std::fmt::Debug for Payload<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} elements at {:p})", self.len, self.ptr)
    }
}

impl<T: Element> Payload<T> {
    /// `len` zeroed elements, or None if the allocator refuses. `T: Element` makes all-zero bytes
    /// (and any bytes written through `bytes_with_prefix_mut`) valid values.
    pub fn zeroed(len: usize) -> Option<Payload<T>> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        // SAFETY: alloc has no preconditions; a null result is checked.
        let ptr = unsafe { alloc(bytes, true) } as *mut T;
        Some(Payload { ptr: NonNull::new(ptr)?, len, _owns: PhantomData })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: ptr points to len initialised (zeroed, then written) elements we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The payload's bytes, in native byte order.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: T is an Element (no padding, every byte initialised); the length is the slice's.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const u8, std::mem::size_of_val(self.as_slice())) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in as_slice, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The payload's bytes with the last `before` bytes of the prefix in front of them: where
    /// an IDX file's content (header + payload) goes. Panics if `before > PREFIX`.
    pub fn bytes_with_prefix_mut(&mut self, before: usize) -> &mut [u8] {
        assert!(before <= PREFIX, "an IDX header is at most {PREFIX} bytes");
        let bytes = self.len * std::mem::size_of::<T>();
        // SAFETY: the block holds PREFIX bytes before the payload and the payload after them,
        // all initialised (zeroed); T is plain numeric, so any bytes written are a valid T; &mut
        // self makes the access exclusive.
        unsafe {
            let start = (self.ptr.as_ptr() as *mut u8).sub(before);
            std::slice::from_raw_parts_mut(start, before + bytes)
        }
    }

    /// Gives up ownership: the pointer must later be released with `free`.
    pub fn into_raw(self) -> *mut T {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl<T> Drop for Payload<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from alloc and ownership was not given away.
        unsafe { free(self.ptr.as_ptr() as *mut c_void) }
    }
}

/// A zeroed (or not) block of `PREFIX + size` bytes; returns the payload pointer, or null.
///
/// # Safety
/// None beyond releasing the result with `free` (or `realloc`).
pub unsafe extern "C" fn alloc(size: usize, zeroed: bool) -> *mut c_void {
    let Some(total) = size.checked_add(PREFIX) else { return std::ptr::null_mut() };
    let base = if zeroed { libc::calloc(1, total) } else { libc::malloc(total) };
    if base.is_null() {
        return base;
    }
    (base as *mut u8).add(PREFIX) as *mut c_void
}

/// Resizes a payload block, keeping its contents; returns the new payload pointer, or null (the
/// old block is then untouched).
///
/// # Safety
/// `payload` is null or came from `alloc`/`realloc` and was not freed.
pub unsafe extern "C" fn realloc(payload: *mut c_void, size: usize) -> *mut c_void {
    if payload.is_null() {
        return alloc(size, false);
    }
    let Some(total) = size.checked_add(PREFIX) else { return std::ptr::null_mut() };
    let base = libc::realloc((payload as *mut u8).sub(PREFIX) as *mut c_void, total);
    if base.is_null() {
        return base;
    }
    (base as *mut u8).add(PREFIX) as *mut c_void
}

/// Releases a payload block.
///
/// # Safety
/// `payload` is null or came from `alloc`/`realloc` and was not freed.
pub unsafe extern "C" fn free(payload: *mut c_void) {
    if !payload.is_null() {
        libc::free((payload as *mut u8).sub(PREFIX) as *mut c_void);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_aligned_and_writable_before_the_payload() {
        let mut p = Payload::<f64>::zeroed(3).unwrap();
        assert_eq!(p.as_slice(), &[0.0; 3]);
        assert_eq!(p.as_slice().as_ptr() as usize % 16, 0);
        let bytes = p.bytes_with_prefix_mut(12);
        assert_eq!(bytes.len(), 12 + 24);
        bytes[12..20].copy_from_slice(&1.5f64.to_ne_bytes());
        assert_eq!(p.as_slice()[0], 1.5);
        let empty = Payload::<u8>::zeroed(0).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn raw_blocks_round_trip_through_realloc_and_free() {
        let p = Payload::<u8>::zeroed(4).unwrap();
        let raw = p.into_raw() as *mut c_void;
        unsafe {
            *(raw as *mut u8) = 7;
            let bigger = realloc(raw, 1 << 20);
            assert!(!bigger.is_null());
            assert_eq!(*(bigger as *mut u8), 7);
            free(bigger);
            free(std::ptr::null_mut());
        }
    }
}

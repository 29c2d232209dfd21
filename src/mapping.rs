//! A whole file mapped copy-on-write (Unix), for the warm cache and decompressed copies found
//! on disk: pages are read when first touched, writes stay private to the process, and the
//! mapping holds no file descriptor (the fd is closed as soon as the file is mapped, so a
//! program may hold thousands of mapped arrays under a small `ulimit -n`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;

use crate::Error;

/// A private (copy-on-write), readable and writable mapping of a whole regular file.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; nothing in it is tied to a thread.
unsafe impl Send for Mapping {}
// SAFETY: &Mapping hands out only the address and length; whoever writes through the address
// (numpy) synchronises as it does for any other array memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `path`; None for an empty file (there is nothing to map). Anything but a regular
    /// file (a FIFO, a device, a folder) is refused without blocking: it is opened non-blocking
    /// and judged by `fstat` before any mapping.
    pub fn open(path: &Path) -> Result<Option<Mapping>, Error> {
        let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
        let meta = file.metadata()?;
        let kind = meta.file_type();
        if !kind.is_file() {
            let what = if kind.is_dir() {
                "a folder"
            } else if kind.is_fifo() {
                "a FIFO"
            } else {
                "not a regular file"
            };
            return Err(Error::Format(format!("cannot map {what}")));
        }
        let len = usize::try_from(meta.len()).map_err(|_| Error::Format("file too large to map".into()))?;
        if len == 0 {
            return Ok(None);
        }
        Self::map(&file, len).map(Some)
    }

    fn map(file: &File, len: usize) -> Result<Mapping, Error> {
        // SAFETY: a fresh private mapping of `len` bytes of an open regular file; the kernel
        // picks the address. MAP_PRIVATE: writes never reach the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        // The fd is closed when `file` drops; the mapping stays valid without it.
        NonNull::new(ptr.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| Error::Format("mmap returned a null address".into()))
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` readable bytes at `ptr` for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped, once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("fmnist-mapping-{}-{name}", std::process::id()));
        File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    #[test]
    fn maps_copy_on_write() {
        // (That no descriptor stays open is tested from Python, under a lowered RLIMIT_NOFILE
        // in a process of its own: here other tests open files concurrently.)
        let path = temp("cow", b"abcdef");
        let m = Mapping::open(&path).unwrap().unwrap();
        assert_eq!(m.as_slice(), b"abcdef");
        // SAFETY: writing inside the mapping, which is private to this process.
        unsafe { *m.as_ptr() = b'X' };
        assert_eq!(m.as_slice(), b"Xbcdef");
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef", "writes never reach the file");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(m.as_slice()[1..], *b"bcdef", "the mapping outlives the name");
    }

    #[test]
    fn empty_files_and_folders() {
        let path = temp("empty", b"");
        assert!(Mapping::open(&path).unwrap().is_none());
        std::fs::remove_file(&path).unwrap();
        let err = Mapping::open(&std::env::temp_dir()).err().unwrap();
        assert!(err.to_string().contains("a folder"), "{err}");
    }
}

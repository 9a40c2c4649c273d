//! `GrowableReadMap`: a read-only file map that grows in place, never moving.
//!
//! The same reservation scheme as [`GrowableMap`], with the pages mapped
//! read-only: a program that changes its file through `write`/`pwrite` (a
//! database, say) reads it through this map, and no stray pointer can write
//! the file through it.

use std::fmt;
use std::fs::File;
use std::ops::Deref;

use crate::error::Result;
use crate::growable::GrowableMap;
use crate::guard::Fault;
use crate::sys::Protection;

/// A read-only map of a whole file, inside a fixed reservation of address
/// space, that grows with its file without moving.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::unix::fs::FileExt;
/// # let dir = tempfile::tempdir()?;
/// let file = std::fs::OpenOptions::new().read(true).write(true).create(true)
///     .open(dir.path().join("log.bin"))?;
/// // Only this example writes the file, through `write_all_at` below, and
/// // SAFETY: never over bytes a slice of the map still refers to.
/// let map = unsafe { mmapkit::GrowableReadMap::new(file, 1 << 30)? };
/// map.grow_to(8192)?;
/// map.file().write_all_at(b"hello", 4096)?;
/// assert_eq!(&map[4096..4101], b"hello");
/// # Ok(())
/// # }
/// ```
pub struct GrowableReadMap(GrowableMap);

impl GrowableReadMap {
    /// The reservation [`GrowableMap::DEFAULT_RESERVE`] gives.
    pub const DEFAULT_RESERVE: usize = GrowableMap::DEFAULT_RESERVE;

    /// Maps all of `file` (opened at least for reading) read-only inside a new
    /// reservation of `reserve` bytes of address space (rounded up to pages).
    ///
    /// # Safety
    /// No process, handle or mapping may modify bytes of the file that a slice
    /// of this map still refers to. (Writing bytes no slice covers, through the
    /// file, is how such a map is meant to be used.)
    pub unsafe fn new(file: File, reserve: usize) -> Result<GrowableReadMap> {
        // SAFETY: the caller's contract is the one `with_protection` needs, narrowed to the bytes slices cover, which
        // is all a read-only map can observe.
        unsafe { GrowableMap::with_protection(file, reserve, Protection::Read) }.map(GrowableReadMap)
    }

    /// Grows the file to `new_len` bytes (its blocks allocated with
    /// `fallocate`, so later writes cannot meet a full disk) and maps the new
    /// bytes in place. Slices taken before stay valid. Less than the current
    /// length, or more than the reservation, is an error.
    pub fn grow_to(&self, new_len: u64) -> Result<()> {
        self.0.grow(new_len, true)
    }

    /// Grows the file to `new_len` bytes with `ftruncate` (a sparse tail: no
    /// blocks allocated) and maps the new bytes in place. For files written
    /// with `pwrite`, which reports a full disk itself; writing into
    /// `fallocate`d (unwritten) extents costs ext4 an extent conversion per
    /// write, which this avoids. Reading a hole reads zeros.
    pub fn grow_sparse_to(&self, new_len: u64) -> Result<()> {
        self.0.grow(new_len, false)
    }

    /// Maps the bytes another handle or process has grown the file by, in
    /// place (see [`GrowableMap::follow_file`]). Returns the new length.
    pub fn follow_file(&self) -> Result<usize> {
        self.0.follow_file()
    }

    /// The current length in bytes (the file's length as the map knows it).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map (and file) is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The size of the reservation: the most the map can grow to.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// The base address, which never changes.
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }

    /// The file behind the map.
    pub fn file(&self) -> &File {
        self.0.file()
    }

    /// Bytes `range` of the map, once every page of them has been touched: an
    /// error if the range is outside the map or reaches a page whose file data
    /// is gone (see [`GrowableMap::get_checked`]).
    pub fn get_checked(&self, range: std::ops::Range<usize>) -> Result<&[u8]> {
        self.0.get_checked(range)
    }

    /// Gives the kernel `advice` for the whole map and every part growth maps
    /// later (see [`GrowableMap::advise`]).
    pub fn advise(&self, advice: crate::Advice) -> Result<()> {
        self.0.advise(advice)
    }

    /// The fault that has hit this map, if any (see [`GrowableMap::fault`]).
    pub fn fault(&self) -> Option<Fault> {
        self.0.fault()
    }
}

impl Deref for GrowableReadMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for GrowableReadMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrowableReadMap")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

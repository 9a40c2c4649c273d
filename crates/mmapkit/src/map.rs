//! `Map`: a read-only mapping.

use std::fmt;
use std::ops::Deref;
use std::os::fd::AsFd;
use std::path::Path;

use crate::advice::{Advice, DestructiveAdvice};
use crate::error::{Result, Unchanged};
use crate::guard::Fault;
use crate::map_mut::MapMut;
use crate::options::MapOptions;
use crate::raw::RawMap;
use crate::residency::Residency;
use crate::sys::Protection;

/// A read-only mapping of a file (or of memory made writable and then frozen).
///
/// It dereferences to `[u8]`; every slice borrows the map, so none can outlive
/// it, and dropping the map unmaps it. Made by [`MapOptions`], or [`Map::new`]
/// and [`Map::open`] for the whole file.
pub struct Map {
    raw: RawMap,
}

impl Map {
    pub(crate) fn from_raw(raw: RawMap) -> Self {
        Map { raw }
    }

    /// Maps the whole file read-only. See [`MapOptions::map`].
    ///
    /// # Safety
    /// No process may modify the file while the map is alive;
    /// see [`MapOptions::map`].
    pub unsafe fn new<F: AsFd>(file: &F) -> Result<Map> {
        // SAFETY: the caller accepts the same contract.
        unsafe { MapOptions::new().map(file) }
    }

    /// Opens the file at `path` and maps all of it read-only. See [`MapOptions::open`].
    ///
    /// # Safety
    /// No process may modify the file while the map is alive;
    /// see [`MapOptions::map`].
    pub unsafe fn open<P: AsRef<Path>>(path: P) -> Result<Map> {
        // SAFETY: the caller accepts the same contract.
        unsafe { MapOptions::new().open(path) }
    }

    /// The address of the first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr()
    }

    /// The fault that has hit this map, if any: a page whose file data was gone
    /// (the file shrank, or its storage failed) was accessed. Those bytes now
    /// read as zeros. `None` for unguarded and anonymous maps.
    pub fn fault(&self) -> Option<Fault> {
        self.raw.fault()
    }

    /// Runs `f` on the map's bytes and returns its result, or the [`Fault`] if
    /// any fault has hit the map (during `f` or before it, since pages patched
    /// earlier read as zeros). The check costs one atomic load.
    #[inline]
    pub fn checked<T>(&self, f: impl FnOnce(&[u8]) -> T) -> Result<T, Fault> {
        self.raw.checked(|| f(self.raw.bytes()))
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`. An error if the range
    /// is outside the map or reaches a page whose file data is gone; bytes
    /// before the first such page stay readable.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.raw.read_at(offset, buf)
    }

    /// Maps `file` (the one this map was made from) again after a fault: the
    /// same offset, through the file's current end (or over the same range,
    /// clipped to it, if a length was given). The old mapping is dropped.
    ///
    /// # Safety
    /// The constructor's contract applies to the new mapping.
    pub unsafe fn remap<F: AsFd>(&mut self, file: &F) -> Result<()> {
        self.raw = MapOptions::remap(&self.raw, file.as_fd())?;
        Ok(())
    }

    /// Gives the kernel advice about the whole map.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        self.raw.advise(advice, None)
    }

    /// Gives the kernel advice about bytes `offset..offset+len` (rounded out to
    /// whole pages). A range outside the map is an error.
    pub fn advise_range(&self, advice: Advice, offset: usize, len: usize) -> Result<()> {
        self.raw.advise(advice, Some((offset, len)))
    }

    /// Gives advice that may change what the bytes read as, over the whole
    /// pages inside bytes `offset..offset+len` (or the whole map with `None`).
    ///
    /// # Safety
    /// No slice of the affected pages may be alive or used afterwards with the
    /// expectation that it kept its contents.
    pub unsafe fn advise_destructive(&self, advice: DestructiveAdvice, range: Option<(usize, usize)>) -> Result<()> {
        // SAFETY: the caller promises no live reference observes the change.
        unsafe { self.raw.advise_destructive(advice, range) }
    }

    /// Locks the map's pages in memory (`mlock`).
    pub fn lock(&self) -> Result<()> {
        self.raw.set_locked(true)
    }

    /// Unlocks the map's pages (`munlock`).
    pub fn unlock(&self) -> Result<()> {
        self.raw.set_locked(false)
    }

    /// Which of the map's pages are resident in memory now (`mincore`).
    pub fn residency(&self) -> Result<Residency> {
        self.raw.residency()
    }

    /// Makes the map writable. For a shared file map the file must have been
    /// opened for writing; on failure the map comes back unchanged.
    pub fn make_mut(mut self) -> Result<MapMut, Unchanged<Map>> {
        // SAFETY: `self` is consumed, so no reference into the map is live.
        match unsafe { self.raw.protect(Protection::ReadWrite) } {
            Ok(()) => Ok(MapMut::from_raw(self.raw)),
            Err(error) => Err(Unchanged { map: self, error }),
        }
    }
}

impl Deref for Map {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.raw.bytes()
    }
}

impl AsRef<[u8]> for Map {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").field("ptr", &self.as_ptr()).field("len", &self.len()).finish()
    }
}

//! `MapMut`: a writable mapping (shared, copy-on-write, or anonymous).

use std::ops::DerefMut;
use std::path::Path;

use crate::DestructiveAdvice;
use crate::error::{Result, Unchanged};
use crate::guard::Fault;
use crate::map::Map;
use crate::mapping::Mapping;
use crate::options::MapOptions;
use crate::source::MapSource;
use crate::sys::Protection;

/// A writable mapping: of a file (shared, or copy-on-write), or anonymous memory.
///
/// It dereferences to `[u8]` and `mut [u8]`. Writes to a shared file map reach
/// the page cache at once and the disk after [`flush`](Self::flush). Dropping
/// the map unmaps it (without flushing: the kernel still writes dirty pages back
/// later, but only `flush` says when, and reports errors).
pub struct MapMut {
    raw: Mapping,
}

impl MapMut {
    pub(crate) fn from_raw(raw: Mapping) -> Self {
        MapMut { raw }
    }

    pub(crate) fn into_raw(self) -> Mapping {
        self.raw
    }

    /// Maps the whole file read-write, shared. See [`MapOptions::map_mut`].
    ///
    /// # Safety
    /// No other process, handle or mapping may modify the file while
    /// the map is alive; see [`MapOptions::map_mut`].
    pub unsafe fn new<F: MapSource + ?Sized>(file: &F) -> Result<MapMut> {
        // SAFETY: the caller accepts the same contract.
        unsafe { MapOptions::new().map_mut(file) }
    }

    /// Opens the file at `path` read-write and maps all of it, shared.
    ///
    /// # Safety
    /// As for [`MapMut::new`].
    pub unsafe fn open<P: AsRef<Path>>(path: P) -> Result<MapMut> {
        // SAFETY: the caller accepts the same contract.
        unsafe { MapOptions::new().open_mut(path) }
    }

    /// `len` bytes of private, zero-filled memory. See [`MapOptions::map_anon`].
    pub fn anon(len: usize) -> Result<MapMut> {
        MapOptions::new().len(len).map_anon()
    }

    /// The address of the first byte, for writing.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.raw.ptr()
    }

    /// Writes every changed page back to the file and waits until it is on disk
    /// (`msync(MS_SYNC)`). A no-op for anonymous and copy-on-write maps.
    pub fn flush(&self) -> Result<()> {
        self.raw.flush(0, self.raw.len(), true)
    }

    /// Starts writing changed pages back without waiting (`msync(MS_ASYNC)`).
    pub fn flush_async(&self) -> Result<()> {
        self.raw.flush(0, self.raw.len(), false)
    }

    /// Writes bytes `offset..offset+len` back (rounded out to whole pages) and
    /// waits. A range outside the map is an error, not a silent partial flush.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        self.raw.flush(offset, len, true)
    }

    /// Starts writing bytes `offset..offset+len` back without waiting.
    pub fn flush_async_range(&self, offset: usize, len: usize) -> Result<()> {
        self.raw.flush(offset, len, false)
    }

    /// Runs `f` on the map's bytes, writable, and returns its result, or the
    /// [`Fault`] if any fault has hit the map. Writes `f` made to patched
    /// pages are lost, which is why the fault is returned.
    #[inline]
    pub fn checked_mut<T>(&mut self, f: impl FnOnce(&mut [u8]) -> T) -> Result<T, Fault> {
        let result = f(self);
        self.raw.checked(|| result)
    }

    /// Copies `data` into the map at `offset`. An error if the range is outside
    /// the map, or reaches a page whose file data is gone: such a write cannot
    /// reach the file and is reported, never lost silently.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        // SAFETY: every MapMut is writable.
        unsafe { self.raw.write_at(offset, data) }
    }

    /// Gives advice that may change what the bytes read as, over the whole pages
    /// inside bytes `offset..offset+len` (or the whole map with `None`). Safe:
    /// `&mut self` means no slice of the map is alive to see the change.
    pub fn advise_destructive(&mut self, advice: DestructiveAdvice, range: Option<(usize, usize)>) -> Result<()> {
        // SAFETY: `&mut self` rules out any live reference into the map.
        unsafe { self.raw.advise_destructive(advice, range) }
    }

    /// Makes the map executable and no longer writable (`PROT_READ |
    /// PROT_EXEC`), as a JIT does once it has written its code; on failure the
    /// map comes back unchanged.
    ///
    /// # Safety
    /// The bytes are then run as machine code if anything jumps to them: they
    /// must be code the caller means to run.
    pub unsafe fn make_exec(mut self) -> Result<Map, Unchanged<MapMut>> {
        // SAFETY: `self` is consumed, so no `&mut` into the map is live; the code is the caller's (contract).
        match unsafe { self.raw.protect(Protection::ReadExec) } {
            Ok(()) => Ok(Map::from_raw(self.raw)),
            Err(error) => Err(Unchanged { map: self, error }),
        }
    }

    /// Makes the map read-only; on failure the map comes back unchanged.
    pub fn make_read_only(mut self) -> Result<Map, Unchanged<MapMut>> {
        // SAFETY: `self` is consumed, so no `&mut` into the map is live.
        match unsafe { self.raw.protect(Protection::Read) } {
            Ok(()) => Ok(Map::from_raw(self.raw)),
            Err(error) => Err(Unchanged { map: self, error }),
        }
    }
}

impl DerefMut for MapMut {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: every MapMut is made writable: by its constructor (Protection::ReadWrite) or by `Map::make_mut`.
        unsafe { self.raw.bytes_mut() }
    }
}

impl AsMut<[u8]> for MapMut {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

crate::map_common::impl_map_common!(MapMut);

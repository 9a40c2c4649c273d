//! `MapRaw`: a mapping that hands out raw pointers only.

use crate::error::Result;
use crate::guard::Fault;
use crate::map::Map;
use crate::map_mut::MapMut;
use crate::mapping::Mapping;
use crate::options::MapOptions;
use crate::remap_options::RemapOptions;
use crate::residency::Residency;
use crate::source::MapSource;
use crate::{Advice, DestructiveAdvice};

/// A mapping of a file that gives out raw pointers, never slices: for memory
/// that other processes or threads write while it is mapped, where a `&[u8]`
/// would be unsound. Because it hands out no references, making one is safe;
/// what is done through its pointers is the caller's to make sound (atomics,
/// volatile access, or a protocol of its own).
///
/// Made by [`MapRaw::map`] and [`MapOptions::map_raw`] (read-write) or
/// [`MapOptions::map_raw_read_only`], or from a [`Map`] or [`MapMut`] with
/// `into`. Flushes, advice, locks, residency and the fault guard work as for
/// the other maps.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::atomic::{AtomicU64, Ordering};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("counter");
/// let file = std::fs::OpenOptions::new().read(true).write(true).create(true).open(&path)?;
/// file.set_len(4096)?;
/// let map = mmapkit::MapRaw::map(&file)?;
/// // SAFETY: the map is page-aligned, live while `map` is, and every process uses the word only atomically.
/// let counter = unsafe { AtomicU64::from_ptr(map.as_mut_ptr().cast()) };
/// counter.fetch_add(1, Ordering::SeqCst);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MapRaw {
    raw: Mapping,
}

impl MapRaw {
    pub(crate) fn from_raw(raw: Mapping) -> MapRaw {
        MapRaw { raw }
    }

    /// Maps all of `file` read-write, shared (the file must be open for
    /// reading and writing). See [`MapOptions::map_raw`].
    pub fn map<F: MapSource + ?Sized>(file: &F) -> Result<MapRaw> {
        MapOptions::new().map_raw(file)
    }

    /// The address of the first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr()
    }

    /// The address of the first byte, for writing. Writing through it into a
    /// map made read-only faults (the protection is the kernel's).
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.raw.ptr()
    }

    /// The number of bytes mapped.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.raw.len() == 0
    }

    /// The fault that has hit this map, if any (see [`Map::fault`]).
    pub fn fault(&self) -> Option<Fault> {
        self.raw.fault()
    }

    /// Writes changed pages back to the file and waits (`msync(MS_SYNC)`).
    pub fn flush(&self) -> Result<()> {
        self.raw.flush(0, self.raw.len(), true)
    }

    /// Starts writing changed pages back without waiting (`msync(MS_ASYNC)`).
    pub fn flush_async(&self) -> Result<()> {
        self.raw.flush(0, self.raw.len(), false)
    }

    /// Writes bytes `offset..offset+len` back (rounded out to pages) and waits.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        self.raw.flush(offset, len, true)
    }

    /// Starts writing bytes `offset..offset+len` back without waiting.
    pub fn flush_async_range(&self, offset: usize, len: usize) -> Result<()> {
        self.raw.flush(offset, len, false)
    }

    /// Gives the kernel advice about the whole map.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        self.raw.advise(advice, None)
    }

    /// Gives the kernel advice about bytes `offset..offset+len`.
    pub fn advise_range(&self, advice: Advice, offset: usize, len: usize) -> Result<()> {
        self.raw.advise(advice, Some((offset, len)))
    }

    /// Gives advice that may change what the bytes read as.
    ///
    /// # Safety
    /// Whoever reads the affected pages must expect their contents to change.
    pub unsafe fn advise_destructive(&self, advice: DestructiveAdvice, range: Option<(usize, usize)>) -> Result<()> {
        // SAFETY: per the caller.
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

    /// Maps `file` again over the range the map was asked for (see [`Map::refresh`]).
    pub fn refresh<F: MapSource + ?Sized>(&mut self, file: &F) -> Result<()> {
        self.raw = MapOptions::refresh(&self.raw, file.descriptor())?;
        Ok(())
    }

    /// Grows or shrinks the map (see [`MapMut::remap`]).
    ///
    /// # Safety
    /// No pointer into the map may be used after it moved or shrank.
    pub unsafe fn remap(&mut self, new_len: usize, options: RemapOptions) -> Result<()> {
        // SAFETY: a raw map hands out no references; its pointers are the caller's (contract).
        unsafe { self.raw.resize(new_len, options.moves()) }
    }
}

impl From<Map> for MapRaw {
    fn from(map: Map) -> MapRaw {
        MapRaw { raw: map.into_raw() }
    }
}

impl From<MapMut> for MapRaw {
    fn from(map: MapMut) -> MapRaw {
        MapRaw { raw: map.into_raw() }
    }
}

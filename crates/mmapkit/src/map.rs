//! `Map`: a read-only mapping.

use std::path::Path;

use crate::DestructiveAdvice;
use crate::error::{Result, Unchanged};
use crate::map_mut::MapMut;
use crate::options::MapOptions;
use crate::raw::RawMap;
use crate::source::MapSource;
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
    pub unsafe fn new<F: MapSource + ?Sized>(file: &F) -> Result<Map> {
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

crate::map_common::impl_map_common!(Map);

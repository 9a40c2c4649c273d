//! `Map`: a read-only mapping.

use std::path::Path;

use crate::DestructiveAdvice;
use crate::error::{Result, Unchanged};
use crate::map_mut::MapMut;
use crate::mapping::Mapping;
use crate::options::MapOptions;
use crate::source::MapSource;
use crate::sys::Protection;

/// A read-only mapping of a file (or of memory made writable and then frozen).
///
/// It dereferences to `[u8]`; every slice borrows the map, so none can outlive
/// it, and dropping the map unmaps it. Made by [`MapOptions`], or [`Map::new`]
/// and [`Map::open`] for the whole file.
pub struct Map {
    raw: Mapping,
}

impl Map {
    pub(crate) fn from_raw(raw: Mapping) -> Self {
        Map { raw }
    }

    pub(crate) fn into_raw(self) -> Mapping {
        self.raw
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

    /// Makes the map executable (`PROT_READ | PROT_EXEC`), as a JIT does with
    /// code it has written; on failure the map comes back unchanged.
    ///
    /// # Safety
    /// The bytes are then run as machine code if anything jumps to them: they
    /// must be code the caller means to run.
    pub unsafe fn make_exec(mut self) -> Result<Map, Unchanged<Map>> {
        // SAFETY: `self` is consumed, so no reference into the map is live; the code is the caller's (contract).
        match unsafe { self.raw.protect(Protection::ReadExec) } {
            Ok(()) => Ok(self),
            Err(error) => Err(Unchanged { map: self, error }),
        }
    }

    /// Makes an executable map read-only again (not executable); on failure
    /// the map comes back unchanged. A map that is not executable stays as it is.
    pub fn make_read_only(mut self) -> Result<Map, Unchanged<Map>> {
        // SAFETY: `self` is consumed, so no reference into the map is live.
        match unsafe { self.raw.protect(Protection::Read) } {
            Ok(()) => Ok(self),
            Err(error) => Err(Unchanged { map: self, error }),
        }
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

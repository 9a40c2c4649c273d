//! `Mapping`: one live mapping and the operations every map type shares. It
//! owns the address range and unmaps it on drop.

use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::guard::{Fault, Guard, GuardedRange, touch_pages};
use crate::options::MapOptions;
use crate::residency::Residency;
use crate::span::{pages_covering, pages_within};
use crate::sys::{self, Protection, Sharing};
use crate::{Advice, DestructiveAdvice};

/// What a file mapping was asked to be, so it can be made again: after a
/// fault, or once the file has grown back. It keeps the request as given (not
/// what the file held at the time), so a map made again covers the same
/// bytes of the file, as many of them as exist then.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// The options the map was made with: its offset, its length (`None`:
    /// to the end of the file) and its behaviour.
    pub options: MapOptions,
    pub sharing: Sharing,
}

/// A live mapping: `unmap_len` bytes from `base`, of which the caller's data are
/// the `len` bytes from `base + lead`. An empty map owns no address range.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    lead: usize,
    len: usize,
    unmap_len: usize,
    prot: Protection,
    sharing: Sharing,
    /// Whether its pages are huge pages (resizing keeps to base pages).
    huge: bool,
    /// For file maps: how to map the file again.
    origin: Option<Origin>,
    /// For guarded file maps: the fault guard's registration.
    guard: Option<Guard>,
    /// The file's path, where the map was made from one (for error messages).
    path: Option<Box<Path>>,
    /// For shared file maps made read-only: whether the file was opened for
    /// writing (`None`: not known), to say why making the map writable fails.
    opened_writable: Option<bool>,
}

// SAFETY: a Mapping is an owned address range, like a Box<[u8]>: moving it to
// another thread or sharing it between threads is as sound as for the
// `Map`/`MapMut` wrappers that decide what access they hand out.
unsafe impl Send for Mapping {}
// SAFETY: as above; every method that changes the bytes takes `&mut self` in the
// wrappers, or is `unsafe` with the caller promising no concurrent reader.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A map of no bytes, which owns no address range.
    pub(crate) fn empty(prot: Protection, sharing: Sharing, origin: Option<Origin>) -> Self {
        // Aligned to a page, so a slice of any element type at it is sound (at length 0).
        let base = NonNull::new(std::ptr::without_provenance_mut(sys::page_size())).unwrap_or(NonNull::dangling());
        Mapping {
            base,
            lead: 0,
            len: 0,
            unmap_len: 0,
            prot,
            sharing,
            huge: false,
            origin,
            guard: None,
            path: None,
            opened_writable: None,
        }
    }

    /// Takes ownership of a mapping of `unmap_len` bytes at `base` whose data is
    /// `len` bytes from `base + lead`, made with protection `prot`.
    ///
    /// # Safety
    /// `base..base+unmap_len` must be a mapping that nothing else owns or unmaps,
    /// with `lead + len <= unmap_len`.
    pub(crate) unsafe fn from_parts(
        base: NonNull<u8>,
        lead: usize,
        len: usize,
        unmap_len: usize,
        prot: Protection,
        sharing: Sharing,
        origin: Option<Origin>,
    ) -> Self {
        debug_assert!(lead + len <= unmap_len);
        Mapping {
            base,
            lead,
            len,
            unmap_len,
            prot,
            sharing,
            huge: false,
            origin,
            guard: None,
            path: None,
            opened_writable: None,
        }
    }

    /// Marks the mapping as one of huge pages.
    pub(crate) fn set_huge(&mut self) {
        self.huge = true;
    }

    /// Remembers the path the file was opened by, for error messages.
    pub(crate) fn set_path(&mut self, path: &Path) {
        self.path = Some(path.into());
    }

    /// Records whether the file was opened for writing (see `opened_writable`).
    pub(crate) fn set_opened_writable(&mut self, writable: Option<bool>) {
        self.opened_writable = writable;
    }

    /// Why the OS refused a writable shared map of a file opened for writing.
    pub(crate) fn shared_write_refused() -> ErrorKind {
        ErrorKind::AccessMode {
            opened: "read-write",
            needed: "the OS refuses it a writable shared mapping: it is a memfd sealed with F_SEAL_WRITE or \
                     F_SEAL_FUTURE_WRITE, or a file the OS keeps from being written",
        }
    }

    /// The path the file was opened by, if it was.
    pub(crate) fn known_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The file's path, for an error message: the one it was opened by, or
    /// the one the OS gives for the mapped address. Costs nothing until asked.
    pub(crate) fn path(&self) -> Option<PathBuf> {
        match &self.path {
            Some(path) => Some(path.to_path_buf()),
            None if self.origin.is_some() && self.unmap_len > 0 => sys::mapped_path(self.base.as_ptr() as usize),
            None => None,
        }
    }

    /// An error for `op` on this map, naming its file.
    fn fail(&self, op: Operation, err: std::io::Error) -> Error {
        Error::os(op, err).with_path(self.path())
    }

    /// Registers the mapping with the fault guard, so that a page whose file
    /// data disappears reads as zeros and is reported instead of killing the process.
    pub(crate) fn guard(&mut self, file_offset: u64) -> Result<()> {
        if self.unmap_len == 0 {
            return Ok(());
        }
        let start = self.base.as_ptr() as usize;
        let writable = self.prot == Protection::ReadWrite;
        let range = GuardedRange::new(start, self.unmap_len, self.unmap_len, writable, self.lead, file_offset);
        self.guard = Some(Guard::new(range).map_err(|kind| Error::new(Operation::Map, kind).with_path(self.path()))?);
        Ok(())
    }

    pub(crate) fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    pub(crate) fn protection(&self) -> Protection {
        self.prot
    }

    /// The fault that hit this mapping, if any (never for unguarded maps).
    pub(crate) fn fault(&self) -> Option<Fault> {
        self.guard.as_ref().and_then(|g| g.range().fault())
    }

    /// Runs `f` and returns its result only if no fault has hit the mapping.
    /// The check is one load of the fault counter after `f`, ordered after
    /// every access `f` made (see `GuardedRange::faults_after_access`).
    #[inline]
    pub(crate) fn checked<T>(&self, f: impl FnOnce() -> T) -> Result<T, Fault> {
        let range = self.guard.as_ref().map(|g| g.range());
        let result = f();
        match range {
            Some(range) if range.faults_after_access() != 0 => Err(self.recorded_fault()),
            _ => Ok(result),
        }
    }

    /// The fault behind a nonzero fault count: the cold path of every check.
    #[cold]
    #[inline(never)]
    fn recorded_fault(&self) -> Fault {
        self.fault().expect("a counted fault is recorded before the count rises")
    }

    /// Fails if bytes `offset..offset+len`, just accessed, include a page the
    /// guard patched.
    fn check_range(&self, op: Operation, offset: usize, len: usize) -> Result<()> {
        let Some(guard) = &self.guard else { return Ok(()) };
        match guard.range().fault_over(offset, len) {
            Some(fault) => Err(Error::new(op, ErrorKind::Fault(fault)).with_path(self.path())),
            None => Ok(()),
        }
    }

    /// Bytes `offset..offset+len`, every page of them touched first, so that a
    /// page whose file data is gone is found now: an error if the range is
    /// outside the map or reaches such a page.
    pub(crate) fn get_checked(&self, offset: usize, len: usize) -> Result<&[u8]> {
        self.check_inside(Operation::Read, offset, len)?;
        let bytes = &self.bytes()[offset..offset + len];
        touch_pages(bytes);
        self.check_range(Operation::Read, offset, len)?;
        Ok(bytes)
    }

    fn check_inside(&self, op: Operation, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => {
                Err(Error::new(op, ErrorKind::OutsideMapping { offset, len, map_len: self.len }).with_path(self.path()))
            }
        }
    }

    /// Copies bytes from `offset` into `buf`; an error if they are outside the
    /// map or if any of them lie in a page whose file data is gone.
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check_inside(Operation::Read, offset, buf.len())?;
        buf.copy_from_slice(&self.bytes()[offset..offset + buf.len()]);
        self.check_range(Operation::Read, offset, buf.len())
    }

    /// Copies `data` into the map at `offset`; an error if the range is outside
    /// the map or lies in a page whose file data is gone (the write is lost).
    ///
    /// # Safety
    /// The mapping must be writable.
    pub(crate) unsafe fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_inside(Operation::Write, offset, data.len())?;
        // SAFETY: the caller guarantees the mapping is writable.
        let bytes = unsafe { self.bytes_mut() };
        bytes[offset..offset + data.len()].copy_from_slice(data);
        self.check_range(Operation::Write, offset, data.len())
    }

    /// The address of the first data byte.
    pub(crate) fn ptr(&self) -> *mut u8 {
        // `lead` is within the mapping (or 0 for an empty map), so this stays in bounds.
        self.base.as_ptr().wrapping_add(self.lead)
    }

    /// The number of data bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The data bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr()..ptr()+len` is mapped readable for as long as `self` lives (or is an empty slice at a
        // dangling, aligned pointer). Whether other writers exist is the contract of the constructor that made
        // the `Map`/`MapMut` this belongs to.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }

    /// The data bytes, writable.
    ///
    /// # Safety
    /// The mapping must be writable (made with `Protection::ReadWrite`).
    pub(crate) unsafe fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`, plus `&mut self` makes this the only view, and the caller guarantees the pages may be
        // written.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }

    /// The address `start` bytes past the mapping's base.
    fn at(&self, start: usize) -> NonNull<u8> {
        // SAFETY: callers pass `start` from `pages_covering`/`pages_within`, which never exceed the mapping, so the
        // pointer stays inside it.
        unsafe { self.base.add(start) }
    }

    fn whole(&self) -> (usize, usize) {
        (0, self.lead + self.len)
    }

    /// `msync` over the pages covering `offset..offset+len` of the data.
    pub(crate) fn flush(&self, offset: usize, len: usize, wait: bool) -> Result<()> {
        let (start, n) = pages_covering(self.lead, self.len, offset, len, sys::page_size())
            .map_err(|kind| Error::new(Operation::Flush, kind).with_path(self.path()))?;
        if n > 0 {
            // SAFETY: `start` is page-aligned and `start..start+n` lies in this live mapping.
            unsafe { sys::sync(self.at(start), n, wait) }.map_err(|e| self.fail(Operation::Flush, e))?;
        }
        // Writes to patched pages went to anonymous memory, not the file: once
        // a fault has hit, no flush can promise every write reached the file.
        match self.fault() {
            Some(fault) => Err(Error::new(Operation::Flush, ErrorKind::Fault(fault)).with_path(self.path())),
            None => Ok(()),
        }
    }

    /// `madvise` with content-preserving advice over the pages covering the range.
    pub(crate) fn advise(&self, advice: Advice, range: Option<(usize, usize)>) -> Result<()> {
        let (start, n) = match range {
            None => self.whole(),
            Some((offset, len)) => pages_covering(self.lead, self.len, offset, len, sys::page_size())
                .map_err(|kind| Error::new(Operation::Advise, kind).with_path(self.path()))?,
        };
        if n == 0 {
            return Ok(());
        }
        // SAFETY: `start` is page-aligned and the range lies in this live mapping.
        unsafe { sys::advise(self.at(start), n, advice) }.map_err(|e| self.fail(Operation::Advise, e))
    }

    /// `madvise` with advice that may change contents, over the whole pages
    /// inside the range.
    ///
    /// # Safety
    /// No reference into the affected pages may be live.
    pub(crate) unsafe fn advise_destructive(
        &self,
        advice: DestructiveAdvice,
        range: Option<(usize, usize)>,
    ) -> Result<()> {
        let (offset, len) = range.unwrap_or((0, self.len));
        let (start, n) = pages_within(self.lead, self.len, offset, len, sys::page_size())
            .map_err(|kind| Error::new(Operation::Advise, kind).with_path(self.path()))?;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: aligned range inside this mapping; the caller promises no reference observes the contents changing.
        unsafe { sys::advise_destructive(self.at(start), n, advice) }.map_err(|e| self.fail(Operation::Advise, e))
    }

    /// `mlock` (or `munlock`) over the whole mapping.
    pub(crate) fn set_locked(&self, locked: bool) -> Result<()> {
        let (start, n) = self.whole();
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the whole live mapping; locking changes residency, not contents.
        let result = unsafe { if locked { sys::lock(self.at(start), n) } else { sys::unlock(self.at(start), n) } };
        result.map_err(|e| self.fail(Operation::Lock, e))
    }

    /// Which pages of the mapping are resident in memory.
    pub(crate) fn residency(&self) -> Result<Residency> {
        let (start, n) = self.whole();
        let mut pages = Vec::new();
        if n > 0 {
            // SAFETY: the whole live mapping, starting at its page-aligned base.
            unsafe { sys::residency(self.at(start), n, &mut pages) }.map_err(|e| self.fail(Operation::Residency, e))?;
        }
        Ok(Residency::new(sys::page_size(), pages))
    }

    /// Changes the protection of the whole mapping.
    ///
    /// # Safety
    /// Making the mapping read-only while a `&mut` into it is live is the
    /// caller's to prevent.
    pub(crate) unsafe fn protect(&mut self, prot: Protection) -> Result<()> {
        if self.unmap_len > 0 {
            // SAFETY: the whole live mapping; the caller keeps references consistent.
            unsafe { sys::protect(self.base, self.unmap_len, prot) }.map_err(|e| self.protect_error(prot, e))?;
        }
        self.prot = prot;
        if let Some(guard) = &self.guard {
            guard.range().set_writable(prot == Protection::ReadWrite);
        }
        Ok(())
    }
}

impl Mapping {
    /// Grows or shrinks the data to `new_len` bytes, in place where it can,
    /// elsewhere only with `may_move` (see `RemapOptions`). The guard's
    /// registration follows, with its fault state as far as it lies in the new
    /// extent. A file map's requested length becomes `new_len`, for a later
    /// refresh. A guarded map that a fault has hit cannot grow (its patched
    /// pages are anonymous memory, not the file's): it must be refreshed first.
    ///
    /// On an error the map is whole: its pages, length and registration are
    /// as before, or (if the guard could not register the new range after the
    /// pages moved) at the new size and unguarded.
    ///
    /// # Safety
    /// No reference into the mapping may be live (it may move or shrink).
    pub(crate) unsafe fn resize(&mut self, new_len: usize, may_move: bool) -> Result<()> {
        if self.huge {
            return Err(self.resize_error(ErrorKind::InvalidArgument("a map of huge pages cannot be resized")));
        }
        let too_large = || ErrorKind::TooLarge { offset: self.lead as u64, len: new_len as u64 };
        if new_len > isize::MAX as usize {
            return Err(self.resize_error(too_large()));
        }
        let page = sys::page_size();
        let Some(new_map_len) = self.lead.checked_add(new_len).and_then(|n| n.checked_next_multiple_of(page)) else {
            return Err(self.resize_error(too_large()));
        };
        if new_len == 0 || self.unmap_len == 0 {
            return self.replace_empty(new_len);
        }
        if new_map_len != self.unmap_len {
            if let Some(guard) = &self.guard {
                if new_map_len > self.unmap_len && guard.range().fault().is_some() {
                    return Err(self.resize_error(ErrorKind::InvalidArgument(
                        "a fault has replaced pages of this map with zeros, so it cannot grow; refresh it first",
                    )));
                }
                // Before any page changes: the new registration must be possible.
                Guard::available().map_err(|kind| self.resize_error(kind))?;
            }
            // The old registration goes before the pages do, so the handler
            // never patches address space that is no longer ours.
            let retired = self.guard.take().map(Guard::retire);
            // SAFETY: the whole mapping is ours, and the caller keeps no reference into it.
            match unsafe { self.resize_pages(new_map_len, may_move) } {
                Ok(base) => (self.base, self.unmap_len, self.len) = (base, new_map_len, new_len),
                Err(error) => {
                    // The pages are as they were: so is the registration.
                    if let Some(old) = retired {
                        self.guard = Guard::new(old.moved(self.base.as_ptr() as usize, self.unmap_len)).ok();
                    }
                    return Err(error);
                }
            }
            self.set_requested_len(new_len);
            if let Some(old) = retired {
                let range = old.moved(self.base.as_ptr() as usize, new_map_len);
                self.guard = Some(Guard::new(range).map_err(|kind| self.resize_error(kind))?);
            }
            return Ok(());
        }
        self.len = new_len;
        self.set_requested_len(new_len);
        Ok(())
    }

    /// Records `len` as the length a file map asks for when it is made again.
    fn set_requested_len(&mut self, len: usize) {
        if let Some(origin) = &mut self.origin {
            origin.options.len(len);
        }
    }

    /// An error for a resize, naming the file (looked up only now).
    fn resize_error(&self, kind: ErrorKind) -> Error {
        Error::new(Operation::Resize, kind).with_path(self.path())
    }

    /// A resize to or from nothing: the old pages go, new ones (anonymous
    /// maps only) come.
    fn replace_empty(&mut self, new_len: usize) -> Result<()> {
        let fail = |kind| Error::new(Operation::Resize, kind).with_path(self.path());
        if new_len == 0 {
            let origin = self.origin.take().map(|mut origin| {
                origin.options.len(0);
                origin
            });
            let path = self.path.take();
            *self = Mapping::empty(self.prot, self.sharing, origin);
            self.path = path;
            return Ok(());
        }
        if self.origin.is_some() {
            return Err(fail(ErrorKind::InvalidArgument(
                "an empty file map has no pages to resize; refresh it once the file holds its range",
            )));
        }
        let len = new_len
            .checked_next_multiple_of(sys::page_size())
            .ok_or_else(|| fail(ErrorKind::TooLarge { offset: 0, len: new_len as u64 }))?;
        let base = sys::map_anon(len, self.prot, self.sharing, sys::Behavior::default())
            .map_err(|error| fail(ErrorKind::AnonymousMemory { len: new_len, error }))?;
        // SAFETY: `base` is a fresh mapping of `len` bytes that nothing else owns.
        *self = unsafe { Mapping::from_parts(base, 0, new_len, len, self.prot, self.sharing, None) };
        Ok(())
    }

    /// Resizes the pages to `new_map_len` bytes; returns where they are now.
    ///
    /// # Safety
    /// No reference into the mapping may be live.
    unsafe fn resize_pages(&mut self, new_map_len: usize, may_move: bool) -> Result<NonNull<u8>> {
        let fail = |kind| Error::new(Operation::Resize, kind).with_path(self.path());
        let no_room = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::OutOfMemory if !may_move => fail(ErrorKind::NoRoomToGrow { len: new_map_len }),
            _ => fail(ErrorKind::os(e)),
        };
        if sys::HAS_MREMAP {
            // SAFETY: the whole mapping is ours, unreferenced (caller).
            return unsafe { sys::mremap(self.base, self.unmap_len, new_map_len, may_move) }.map_err(no_room);
        }
        // SAFETY: as above (caller).
        unsafe { self.resize_pages_without_mremap(new_map_len, may_move) }
    }

    /// `resize_pages` where there is no `mremap`: a shrink unmaps the tail, a
    /// grow maps pages after the last one, or (anonymous private maps, with
    /// `may_move`) copies the bytes to a new mapping of the map's protection.
    ///
    /// # Safety
    /// No reference into the mapping may be live.
    unsafe fn resize_pages_without_mremap(&mut self, new_map_len: usize, may_move: bool) -> Result<NonNull<u8>> {
        let fail = |kind| Error::new(Operation::Resize, kind).with_path(self.path());
        if new_map_len < self.unmap_len {
            // SAFETY: the tail is part of our mapping, and nothing refers to it (caller).
            let tail = unsafe { self.base.add(new_map_len) };
            // SAFETY: as above.
            unsafe { sys::unmap(tail, self.unmap_len - new_map_len) }.map_err(|e| fail(ErrorKind::os(e)))?;
            return Ok(self.base);
        }
        if self.origin.is_some() {
            return Err(fail(ErrorKind::Unsupported(mmapkit_sys::Unsupported::here(
                "growing a file map in place without mremap (refresh it with a longer range instead)",
            ))));
        }
        // SAFETY: one past our last page: the start of the pages to add.
        let tail = unsafe { self.base.add(self.unmap_len) };
        let extra = new_map_len - self.unmap_len;
        if sys::map_anon_at(tail, extra, self.prot, self.sharing).is_ok() {
            return Ok(self.base);
        }
        if !may_move {
            return Err(fail(ErrorKind::NoRoomToGrow { len: new_map_len }));
        }
        if self.sharing == Sharing::Shared {
            // A copy would not be shared with the processes this memory is shared with.
            return Err(fail(ErrorKind::Unsupported(mmapkit_sys::Unsupported::here(
                "moving shared anonymous memory without mremap",
            ))));
        }
        // Writable while the bytes are copied in, whatever the map's protection.
        let base = sys::map_anon(new_map_len, Protection::ReadWrite, self.sharing, sys::Behavior::default())
            .map_err(|error| fail(ErrorKind::AnonymousMemory { len: new_map_len, error }))?;
        // SAFETY: both ranges are mapped, distinct (the new one is fresh), and at least `unmap_len` long; the old one
        // is readable (every map with data is) and the new one writable.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr(), base.as_ptr(), self.unmap_len) };
        if self.prot != Protection::ReadWrite {
            // SAFETY: the new range is ours alone: nothing refers to it yet.
            if let Err(e) = unsafe { sys::protect(base, new_map_len, self.prot) } {
                // SAFETY: as above; the old mapping stays the map's.
                let _ = unsafe { sys::unmap(base, new_map_len) };
                return Err(fail(ErrorKind::os(e)));
            }
        }
        // SAFETY: the old range is ours and no longer used: its bytes were copied.
        let _ = unsafe { sys::unmap(self.base, self.unmap_len) };
        Ok(base)
    }

    /// Why a protection change failed: `EACCES` on a shared file map asked to
    /// become writable means its file was not opened for writing.
    fn protect_error(&self, prot: Protection, err: std::io::Error) -> Error {
        let shared_file = self.origin.is_some() && self.sharing == Sharing::Shared;
        if prot == Protection::ReadWrite && shared_file && err.kind() == std::io::ErrorKind::PermissionDenied {
            let kind = match self.opened_writable {
                // Opened for writing, yet refused: a seal (EPERM or EACCES, by kernel version), not the access mode.
                Some(true) => Mapping::shared_write_refused(),
                Some(false) => ErrorKind::AccessMode {
                    opened: "read-only",
                    needed: "a writable shared mapping needs read and write access",
                },
                None => ErrorKind::os(err),
            };
            return Error::new(Operation::Protect, kind).with_path(self.path());
        }
        self.fail(Operation::Protect, err)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Leave the guard first, so the handler never patches an address range
        // that a new mapping may take after the unmap.
        drop(self.guard.take());
        if self.unmap_len > 0 {
            // SAFETY: this Mapping owns the range, and borrows of it end with `self`. (munmap of a range we mapped
            // can only fail on invalid arguments, which `from_parts`' contract rules out, so the result is not
            // needed.)
            let _ = unsafe { sys::unmap(self.base, self.unmap_len) };
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The permissions `/proc/self/maps` shows for the mapping holding `addr`.
    fn permissions_at(addr: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps
            .lines()
            .find(|line| {
                let range = line.split(' ').next().unwrap();
                let (start, end) = range.split_once('-').unwrap();
                let (start, end) = (usize::from_str_radix(start, 16).unwrap(), usize::from_str_radix(end, 16).unwrap());
                (start..end).contains(&addr)
            })
            .unwrap_or_else(|| panic!("no mapping at {addr:#x}"));
        line.split(' ').nth(1).unwrap().to_string()
    }

    /// An anonymous private map of one page of `prot`, filled before the
    /// protection was set, with its next page taken, so it can only grow by
    /// moving; and the taken page.
    fn boxed_in(prot: Protection) -> (Mapping, NonNull<u8>) {
        let page = sys::page_size();
        let base = sys::map_anon(2 * page, Protection::ReadWrite, Sharing::Private, sys::Behavior::default()).unwrap();
        // SAFETY: the second page of the fresh mapping above.
        let blocker = unsafe { base.add(page) };
        // SAFETY: the first page is ours, writable, and nothing else refers to it.
        unsafe { std::ptr::write_bytes(base.as_ptr(), 0x5a, page) };
        // SAFETY: the first page is ours alone.
        unsafe { sys::protect(base, page, prot) }.unwrap();
        // SAFETY: the first page is a mapping only the Mapping owns; the second is kept apart as the blocker.
        (unsafe { Mapping::from_parts(base, 0, page, page, prot, Sharing::Private, None) }, blocker)
    }

    #[test]
    fn read_only_and_exec_maps_grow_by_moving_without_mremap() {
        let exe = std::env::current_exe().unwrap();
        let name = "mapping::tests::child_grow_by_moving_without_mremap";
        let output = std::process::Command::new(exe)
            .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child: {:?}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    #[ignore = "child process of read_only_and_exec_maps_grow_by_moving_without_mremap"]
    fn child_grow_by_moving_without_mremap() {
        let page = sys::page_size();
        for (prot, perms) in [(Protection::Read, "r--p"), (Protection::ReadExec, "r-xp")] {
            let (mut map, blocker) = boxed_in(prot);
            let old = map.base;
            // SAFETY: the map is ours and nothing refers into it.
            let err = unsafe { map.resize_pages_without_mremap(2 * page, false) }.unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::NoRoomToGrow { .. }), "{err}");
            // SAFETY: as above.
            let base = unsafe { map.resize_pages_without_mremap(2 * page, true) }.unwrap();
            assert_ne!(base, old, "the map moved");
            (map.base, map.unmap_len, map.len) = (base, 2 * page, 2 * page);
            assert_eq!(permissions_at(base.as_ptr() as usize), perms, "the moved map keeps its protection");
            assert!(map.bytes()[..page].iter().all(|&b| b == 0x5a), "its bytes came along");
            assert!(map.bytes()[page..].iter().all(|&b| b == 0), "the added bytes are zeros");
            // SAFETY: the blocker page is ours and unused.
            unsafe { sys::unmap(blocker, page) }.unwrap();
        }
    }
}

//! `RawMap`: one live mapping and the operations `Map` and `MapMut` share.
//! It owns the address range and unmaps it on drop.

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
pub(crate) struct RawMap {
    base: NonNull<u8>,
    lead: usize,
    len: usize,
    unmap_len: usize,
    prot: Protection,
    /// For file maps: how to map the file again.
    origin: Option<Origin>,
    /// For guarded file maps: the fault guard's registration.
    guard: Option<Guard>,
}

// SAFETY: a RawMap is an owned address range, like a Box<[u8]>: moving it to
// another thread or sharing it between threads is as sound as for the
// `Map`/`MapMut` wrappers that decide what access they hand out.
unsafe impl Send for RawMap {}
// SAFETY: as above; every method that changes the bytes takes `&mut self` in the
// wrappers, or is `unsafe` with the caller promising no concurrent reader.
unsafe impl Sync for RawMap {}

impl RawMap {
    /// A map of no bytes, which owns no address range.
    pub(crate) fn empty(prot: Protection, origin: Option<Origin>) -> Self {
        RawMap { base: NonNull::dangling(), lead: 0, len: 0, unmap_len: 0, prot, origin, guard: None }
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
        origin: Option<Origin>,
    ) -> Self {
        debug_assert!(lead + len <= unmap_len);
        RawMap { base, lead, len, unmap_len, prot, origin, guard: None }
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
        self.guard = Some(Guard::new(range).map_err(|kind| Error::new(Operation::Map, kind))?);
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
            Some(fault) => Err(Error::new(op, ErrorKind::Fault(fault))),
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
            _ => Err(Error::new(op, ErrorKind::OutsideMapping { offset, len, map_len: self.len })),
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
            .map_err(|kind| Error::new(Operation::Flush, kind))?;
        if n > 0 {
            // SAFETY: `start` is page-aligned and `start..start+n` lies in this live mapping.
            unsafe { sys::sync(self.at(start), n, wait) }.map_err(|e| Error::os(Operation::Flush, e))?;
        }
        // Writes to patched pages went to anonymous memory, not the file: once
        // a fault has hit, no flush can promise every write reached the file.
        match self.fault() {
            Some(fault) => Err(Error::new(Operation::Flush, ErrorKind::Fault(fault))),
            None => Ok(()),
        }
    }

    /// `madvise` with content-preserving advice over the pages covering the range.
    pub(crate) fn advise(&self, advice: Advice, range: Option<(usize, usize)>) -> Result<()> {
        let (start, n) = match range {
            None => self.whole(),
            Some((offset, len)) => pages_covering(self.lead, self.len, offset, len, sys::page_size())
                .map_err(|kind| Error::new(Operation::Advise, kind))?,
        };
        if n == 0 {
            return Ok(());
        }
        // SAFETY: `start` is page-aligned and the range lies in this live mapping.
        unsafe { sys::advise(self.at(start), n, advice) }.map_err(|e| Error::os(Operation::Advise, e))
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
            .map_err(|kind| Error::new(Operation::Advise, kind))?;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: aligned range inside this mapping; the caller promises no reference observes the contents changing.
        unsafe { sys::advise_destructive(self.at(start), n, advice) }.map_err(|e| Error::os(Operation::Advise, e))
    }

    /// `mlock` (or `munlock`) over the whole mapping.
    pub(crate) fn set_locked(&self, locked: bool) -> Result<()> {
        let (start, n) = self.whole();
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the whole live mapping; locking changes residency, not contents.
        let result = unsafe { if locked { sys::lock(self.at(start), n) } else { sys::unlock(self.at(start), n) } };
        result.map_err(|e| Error::os(Operation::Lock, e))
    }

    /// Which pages of the mapping are resident in memory.
    pub(crate) fn residency(&self) -> Result<Residency> {
        let (start, n) = self.whole();
        let mut pages = Vec::new();
        if n > 0 {
            // SAFETY: the whole live mapping, starting at its page-aligned base.
            unsafe { sys::residency(self.at(start), n, &mut pages) }.map_err(|e| Error::os(Operation::Residency, e))?;
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
            unsafe { sys::protect(self.base, self.unmap_len, prot) }.map_err(|e| Error::os(Operation::Protect, e))?;
        }
        self.prot = prot;
        if let Some(guard) = &self.guard {
            guard.range().set_writable(prot == Protection::ReadWrite);
        }
        Ok(())
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // Leave the guard first, so the handler never patches an address range
        // that a new mapping may take after the unmap.
        drop(self.guard.take());
        if self.unmap_len > 0 {
            // SAFETY: this RawMap owns the range, and borrows of it end with `self`. (munmap of a range we mapped
            // can only fail on invalid arguments, which `from_parts`' contract rules out, so the result is not
            // needed.)
            let _ = unsafe { sys::unmap(self.base, self.unmap_len) };
        }
    }
}

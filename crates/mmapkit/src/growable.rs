//! `GrowableMap`: a writable file map that grows in place, never moving.
//!
//! A large range of address space is reserved once (`PROT_NONE`,
//! `MAP_NORESERVE`: it costs no memory), the file is mapped at its start with
//! `MAP_FIXED`, and growing maps the new tail right after the old one. The base
//! address never changes, so slices taken before a grow stay valid across it:
//! readers never wait for growth (bbolt's remap lock) and there is no fixed map
//! size to outgrow (LMDB's `MDB_MAP_FULL`), only the reservation, which can be
//! far larger than the file will ever be.

use crate::source::MapSource;
use std::fmt;
use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Advice;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::guard::{Fault, Guard, GuardedRange};
use crate::sys::{self, FileKind, Protection, Sharing};

/// A shared, writable map of a whole file, inside a fixed reservation of
/// address space, that grows with its file without moving.
///
/// ```
/// # fn main() -> mmapkit::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let file = std::fs::OpenOptions::new().read(true).write(true).create(true)
///     .open(dir.path().join("grows.bin")).unwrap();
/// // SAFETY: nothing else in this example touches the file.
/// let mut map = unsafe { mmapkit::GrowableMap::new(file, 1 << 30)? };
/// let base = map.as_ptr();
/// map.grow_to(10_000)?;
/// map[9_999] = 1;
/// map.grow_to(1 << 20)?;
/// assert_eq!(map.as_ptr(), base);
/// assert_eq!(map[9_999], 1);
/// # Ok(())
/// # }
/// ```
pub struct GrowableMap {
    file: File,
    base: NonNull<u8>,
    reserved: usize,
    /// The file's length as this map knows it: the bytes a slice may cover.
    len: AtomicUsize,
    /// Bytes from `base` mapped to the file (whole pages); growth holds this lock.
    mapped: Mutex<usize>,
    /// The fault guard's registration of the whole reservation.
    guard: Option<Guard>,
    /// `ReadWrite`, or `Read` inside a [`GrowableReadMap`](crate::GrowableReadMap).
    protection: Protection,
    /// The advice given with [`GrowableMap::advise`], applied to every tail
    /// growth maps (the kernel starts each new mapping at its default).
    /// Taken after `mapped`.
    advice: Mutex<Option<Advice>>,
}

// SAFETY: the map owns its reservation like a Box<[u8]> owns its buffer; the
// shared state (`len`, `mapped`) is an atomic and a mutex.
unsafe impl Send for GrowableMap {}
// SAFETY: `&self` methods only read the bytes below `len`, which `grow_to`
// never remaps, or take the `mapped` lock to map pages above them.
unsafe impl Sync for GrowableMap {}

impl GrowableMap {
    /// A reservation size that suits most uses on 64-bit machines: 64 GiB of
    /// address space, which costs nothing until the file fills it.
    pub const DEFAULT_RESERVE: usize = if usize::BITS >= 64 { 1 << 36 } else { 1 << 30 };

    /// Maps all of `file` (opened for reading and writing) inside a new
    /// reservation of `reserve` bytes of address space (rounded up to pages).
    ///
    /// # Safety
    /// As for [`MapOptions::map_mut`](crate::MapOptions::map_mut): no other
    /// process, handle or mapping may modify the file while the map
    /// is alive.
    pub unsafe fn new(file: File, reserve: usize) -> Result<GrowableMap> {
        // SAFETY: the caller upholds `new`'s contract, which is `with_protection`'s.
        unsafe { GrowableMap::with_protection(file, reserve, Protection::ReadWrite) }
    }

    /// `new`, with the pages mapped `protection` (`Read` or `ReadWrite`).
    ///
    /// # Safety
    /// As for [`GrowableMap::new`].
    pub(crate) unsafe fn with_protection(file: File, reserve: usize, protection: Protection) -> Result<GrowableMap> {
        let writable = protection == Protection::ReadWrite;
        let fail = |kind| Error::new(Operation::Map, kind).with_path(sys::fd_path(file.descriptor()));
        let info = sys::file_info(file.descriptor()).map_err(|e| fail(ErrorKind::os(e)))?;
        if info.kind != FileKind::Regular {
            return Err(fail(ErrorKind::NotMappable(info.kind.describe())));
        }
        let access = sys::access_mode(file.descriptor()).map_err(|e| fail(ErrorKind::os(e)))?;
        if !access.can_read() {
            return Err(fail(ErrorKind::AccessMode {
                opened: "write-only",
                needed: "a growable map needs read access",
            }));
        }
        if writable && !access.can_write() {
            return Err(fail(ErrorKind::AccessMode {
                opened: "read-only",
                needed: "a writable growable map needs read and write access",
            }));
        }
        let reserved = reserve.checked_next_multiple_of(sys::page_size()).filter(|&r| r > 0).ok_or_else(|| {
            fail(ErrorKind::InvalidArgument("the reservation must be between 1 byte and the address space size"))
        })?;
        if info.len > reserved as u64 {
            return Err(fail(ErrorKind::ReservationExceeded { requested: info.len, reserved }));
        }
        let base = sys::reserve(reserved).map_err(|e| fail(ErrorKind::os(e)))?;
        let mut map = GrowableMap {
            file,
            base,
            reserved,
            len: AtomicUsize::new(0),
            mapped: Mutex::new(0),
            guard: None,
            protection,
            advice: Mutex::new(None),
        };
        // The whole reservation is registered once; the guard patches only the
        // part mapped to the file, which `extend` keeps it informed of.
        map.guard = Some(
            Guard::new(GuardedRange::new(base.as_ptr() as usize, reserved, 0, writable, 0, 0))
                .map_err(|kind| Error::new(Operation::Map, kind).with_path(sys::fd_path(map.file.descriptor())))?,
        );
        // The file is already `info.len` bytes long: map that much, allocate nothing.
        map.extend(&mut map.lock_mapped(), info.len as usize)
            .map_err(|e| Error::os(Operation::Map, e).with_path(sys::fd_path(map.file.descriptor())))?;
        Ok(map)
    }

    fn lock_mapped(&self) -> std::sync::MutexGuard<'_, usize> {
        // A panic while holding the lock leaves `mapped` accurate (it is written
        // only after a successful mmap), so a poisoned lock is still usable.
        self.mapped.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Maps the pages needed for `new_len` bytes and publishes the new length.
    fn extend(&self, mapped: &mut usize, new_len: usize) -> std::io::Result<()> {
        let needed = new_len.next_multiple_of(sys::page_size());
        if needed > *mapped {
            // SAFETY: `*mapped..needed` lies inside our reservation (new_len <= reserved, which is page-aligned), so
            // the pointer stays in bounds; and it lies above every byte a slice can cover (slices end at
            // `len <= *mapped`), so nothing refers to it.
            let tail = unsafe { self.base.add(*mapped) };
            // SAFETY: as above: the range is ours and unreferenced.
            unsafe {
                sys::map_file_fixed(
                    tail,
                    needed - *mapped,
                    self.protection,
                    Sharing::Shared,
                    self.file.descriptor(),
                    *mapped as u64,
                )
            }?;
            let tail_len = needed - *mapped;
            *mapped = needed;
            if let Some(guard) = &self.guard {
                guard.range().set_mapped(needed);
            }
            let advice = *self.advice.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(advice) = advice {
                // SAFETY: the tail was just mapped at this page-aligned address, for this length.
                unsafe { sys::advise(tail, tail_len, advice) }?;
            }
        }
        self.len.store(new_len, Ordering::Release);
        Ok(())
    }

    /// Grows the file to `new_len` bytes, with its blocks allocated so that
    /// writes through the map cannot meet a full disk, and maps the new bytes in
    /// place. Slices taken before stay valid. Asking for less than the current
    /// length, or for more than the reservation, is an error.
    pub fn grow_to(&self, new_len: u64) -> Result<()> {
        self.grow(new_len, true)
    }

    /// Grows to `new_len`, allocating the file's blocks (`fallocate`) or only
    /// setting its length (`ftruncate`: a sparse tail, for files written with
    /// `pwrite`, where a full disk is an error from the write).
    pub(crate) fn grow(&self, new_len: u64, allocate: bool) -> Result<()> {
        let mut mapped = self.lock_mapped();
        let current = self.len.load(Ordering::Relaxed);
        let fail = |kind| Error::new(Operation::Grow, kind).with_path(sys::fd_path(self.file.descriptor()));
        if new_len < current as u64 {
            return Err(fail(ErrorKind::WouldShrink { requested: new_len, current }));
        }
        if new_len > self.reserved as u64 {
            return Err(fail(ErrorKind::ReservationExceeded { requested: new_len, reserved: self.reserved }));
        }
        if new_len == current as u64 {
            return Ok(());
        }
        if allocate {
            sys::allocate(self.file.descriptor(), new_len).map_err(|e| fail(ErrorKind::os(e)))?;
        } else {
            self.file.set_len(new_len).map_err(|e| fail(ErrorKind::os(e)))?;
        }
        self.extend(&mut mapped, new_len as usize).map_err(|e| fail(ErrorKind::os(e)))
    }

    /// Maps the bytes the file has gained since this map last grew, without
    /// changing the file: for a file another handle or process grows (a
    /// database's writer, with readers in other processes). Returns the new
    /// length. A file shorter than the map is not followed (slices keep their
    /// bytes; reads past the file's end are the fault guard's), and a file
    /// longer than the reservation is an error naming both sizes.
    pub fn follow_file(&self) -> Result<usize> {
        let mut mapped = self.lock_mapped();
        let current = self.len.load(Ordering::Relaxed);
        let fail = |kind| Error::new(Operation::Grow, kind).with_path(sys::fd_path(self.file.descriptor()));
        let file_len = self.file.metadata().map_err(|e| fail(ErrorKind::os(e)))?.len();
        if file_len <= current as u64 {
            return Ok(current);
        }
        if file_len > self.reserved as u64 {
            return Err(fail(ErrorKind::ReservationExceeded { requested: file_len, reserved: self.reserved }));
        }
        self.extend(&mut mapped, file_len as usize).map_err(|e| fail(ErrorKind::os(e)))?;
        Ok(file_len as usize)
    }

    /// Gives the kernel `advice` for the whole map, and for every part that
    /// growth maps later: [`Advice::Random`] turns off read-ahead for good,
    /// which random reads of a file larger than memory need. An `Unsupported`
    /// error for advice the OS does not take.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        let mapped = self.lock_mapped();
        let fail = |e| Error::os(Operation::Advise, e).with_path(sys::fd_path(self.file.descriptor()));
        if *mapped > 0 {
            // SAFETY: `base..base + mapped` is this map's file mapping, page-aligned, and stays mapped while we
            // hold the `mapped` lock; advice never changes what the bytes read as.
            unsafe { sys::advise(self.base, *mapped, advice) }.map_err(fail)?;
        }
        *self.advice.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            if advice == Advice::Normal { None } else { Some(advice) };
        Ok(())
    }

    /// The current length in bytes (the file's length).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the map (and file) is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the reservation: the most the map can grow to.
    pub fn capacity(&self) -> usize {
        self.reserved
    }

    /// The base address, which never changes.
    pub fn as_ptr(&self) -> *const u8 {
        self.base.as_ptr()
    }

    /// The file behind the map.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The fault that has hit this map, if any: a page whose file data was
    /// gone (the file shrank under the map, or its storage failed) was accessed,
    /// and from that page on the map reads as zeros. It carries the file's
    /// length as it is now ([`Fault::file_len`]), which tells a truncation
    /// from a failed read or a full disk.
    pub fn fault(&self) -> Option<Fault> {
        self.guard.as_ref().and_then(|g| g.range().fault()).map(|fault| self.measured(fault))
    }

    /// `fault` with the file's length as it is now, where it can be read.
    fn measured(&self, fault: Fault) -> Fault {
        match sys::file_info(self.file.descriptor()) {
            Ok(info) => fault.with_file_len(info.len),
            Err(_) => fault,
        }
    }

    /// Bytes `range` of the map, as a slice, once every page of them has been
    /// touched: an error if the range is outside the map or reaches a page
    /// whose file data is gone. The zero-copy way to read bytes that must be
    /// the file's: a plain slice of a lost page reads zeros without an error.
    pub fn get_checked(&self, range: std::ops::Range<usize>) -> Result<&[u8]> {
        let path = || sys::fd_path(self.file.descriptor());
        let len = crate::span::range_len(&range, Operation::Read).map_err(|e| e.with_path(path()))?;
        let map_len = self.len();
        let bytes = self.get(range.clone()).ok_or_else(|| {
            Error::new(Operation::Read, ErrorKind::OutsideMapping { offset: range.start, len, map_len })
                .with_path(path())
        })?;
        crate::guard::touch_pages(bytes);
        match self.guard.as_ref().and_then(|g| g.range().fault_over(range.start, len)) {
            None => Ok(bytes),
            Some(fault) => Err(Error::new(Operation::Read, ErrorKind::Fault(self.measured(fault))).with_path(path())),
        }
    }

    /// Writes changed pages back to the file and waits (`msync(MS_SYNC)`).
    /// After a fault this is an error: writes to patched pages did not reach the file.
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0, self.len())
    }

    /// Writes bytes `offset..offset+len` back (rounded out to pages) and waits.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        let fail = |kind| Error::new(Operation::Flush, kind).with_path(sys::fd_path(self.file.descriptor()));
        let (start, n) = crate::span::pages_covering(0, self.len(), offset, len, sys::page_size()).map_err(fail)?;
        if n == 0 {
            return self.fault().map_or(Ok(()), |fault| Err(fail(ErrorKind::Fault(fault))));
        }
        // SAFETY: `start..start+n` is page-aligned and below `len`, inside the mapped part.
        unsafe { sys::sync(self.base.add(start), n, true) }.map_err(|e| fail(ErrorKind::os(e)))?;
        match self.fault() {
            Some(fault) => Err(fail(ErrorKind::Fault(fault))),
            None => Ok(()),
        }
    }
}

impl Deref for GrowableMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are mapped readable and stay mapped for the life of `self` (growth only adds
        // pages above them).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len()) }
    }
}

impl DerefMut for GrowableMap {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, the pages are mapped writable, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len()) }
    }
}

impl Drop for GrowableMap {
    fn drop(&mut self) {
        // Leave the guard before the address range can be reused.
        drop(self.guard.take());
        // SAFETY: the reservation is ours and borrows of it end with `self`. munmap of our own reservation cannot fail,
        // so the result is not needed.
        let _ = unsafe { sys::unmap(self.base, self.reserved) };
    }
}

impl fmt::Debug for GrowableMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrowableMap")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len())
            .field("capacity", &self.reserved)
            .finish()
    }
}

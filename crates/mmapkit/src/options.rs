//! `MapOptions`: the builder every mapping is made with.

use crate::sys::Descriptor;
use std::fs::{File, OpenOptions};

use crate::source::MapSource;
use std::path::Path;

use crate::Advice;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::map::Map;
use crate::map_mut::MapMut;
use crate::map_raw::MapRaw;
use crate::mapping::{Mapping, Origin};
use crate::span::{Span, resolve_len};
use crate::sys::{self, Behavior, FileKind, Protection, Sharing};

/// The size of a huge page, for [`MapOptions::huge_pages`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugePageSize {
    log2: u8,
}

impl HugePageSize {
    /// 2 MiB pages (x86_64 and aarch64 with 4 KiB base pages).
    pub const SIZE_2MIB: HugePageSize = HugePageSize { log2: 21 };
    /// 1 GiB pages.
    pub const SIZE_1GIB: HugePageSize = HugePageSize { log2: 30 };

    /// A huge page of `bytes` bytes, if that is a power of two larger than a base page.
    pub fn from_bytes(bytes: usize) -> Option<HugePageSize> {
        (bytes.is_power_of_two() && bytes > sys::page_size())
            .then(|| HugePageSize { log2: bytes.trailing_zeros() as u8 })
    }

    /// The system's default huge page size (`Hugepagesize` in `/proc/meminfo`;
    /// `Unsupported` on macOS and FreeBSD, which have no `MAP_HUGETLB`).
    pub fn system_default() -> Result<HugePageSize> {
        let bytes = sys::default_huge_page_size().map_err(|e| Error::os(Operation::Map, e))?;
        HugePageSize::from_bytes(bytes).ok_or(Error::new(
            Operation::Map,
            ErrorKind::InvalidArgument("the kernel reports an unusable huge page size"),
        ))
    }

    /// The size in bytes.
    pub fn bytes(self) -> usize {
        1 << self.log2
    }
}

/// How to make a mapping: the range of the file, and how its pages behave.
///
/// Set what you need, then call one of the `map*` methods. Offsets need not be
/// page-aligned: the mapping starts at the page that holds `offset` and the
/// slice you get starts exactly at `offset`.
///
/// ```
/// # fn main() -> mmapkit::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("data.bin");
/// # std::fs::write(&path, vec![7u8; 10_000]).unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// // SAFETY: this example's file is not changed by anyone while it is mapped.
/// let map = unsafe { mmapkit::MapOptions::new().offset(4097).len(100).map(&file)? };
/// assert_eq!(map.len(), 100);
/// assert_eq!(map[0], 7);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MapOptions {
    offset: u64,
    len: Option<usize>,
    populate: bool,
    no_reserve: bool,
    lock: bool,
    huge: Option<Option<HugePageSize>>,
    unguarded: bool,
    stack: bool,
}

impl MapOptions {
    /// Options for a whole-file mapping with default behaviour.
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// Starts the mapping at byte `offset` of the file (any value; default 0).
    pub fn offset(&mut self, offset: u64) -> &mut Self {
        self.offset = offset;
        self
    }

    /// Maps `len` bytes (default: from the offset to the end of the file; for
    /// anonymous maps, required). The range must lie inside the file.
    pub fn len(&mut self, len: usize) -> &mut Self {
        self.len = Some(len);
        self
    }

    /// Whether to read every page in before returning (`MAP_POPULATE`), so
    /// later accesses do not fault (default: no).
    pub fn populate(&mut self, on: bool) -> &mut Self {
        self.populate = on;
        self
    }

    /// Whether to leave swap space unreserved for the mapping
    /// (`MAP_NORESERVE`; default: reserved).
    pub fn no_reserve(&mut self, on: bool) -> &mut Self {
        self.no_reserve = on;
        self
    }

    /// Whether to lock the pages in memory once mapped (`mlock`; default: no);
    /// an error if the limit on locked memory (`RLIMIT_MEMLOCK`) does not allow it.
    pub fn lock(&mut self, on: bool) -> &mut Self {
        self.lock = on;
        self
    }

    /// Whether to leave the map out of the fault guard (default: guarded). A
    /// file that shrinks (or fails) under an unguarded map kills the process
    /// with SIGBUS on the next access to the lost pages, as with a plain
    /// `mmap`; in exchange the map costs no registration. Anonymous maps are
    /// never guarded (they cannot fault).
    pub fn unguarded(&mut self, on: bool) -> &mut Self {
        self.unguarded = on;
        self
    }

    /// Whether to make an anonymous map suited to be a thread's stack
    /// (`MAP_STACK`, Linux and FreeBSD; `Unsupported` on macOS; default: no).
    pub fn stack(&mut self, on: bool) -> &mut Self {
        self.stack = on;
        self
    }

    /// Uses huge pages. For anonymous maps this is `MAP_HUGETLB` with the given
    /// size (`None`: the system default) and needs huge pages reserved in
    /// `/proc/sys/vm/nr_hugepages`; the length is rounded up to whole huge pages
    /// so the map can be unmapped again. For file maps it is the advice
    /// `MADV_HUGEPAGE` (transparent huge pages where the filesystem supports them).
    pub fn huge_pages(&mut self, size: Option<HugePageSize>) -> &mut Self {
        self.huge = Some(size);
        self
    }

    /// Maps the file read-only, shared: other mappings' and writers' changes are seen.
    ///
    /// # Safety
    /// The returned `Map` hands out `&[u8]` into the file's pages. Rust requires
    /// that bytes behind a `&[u8]` never change while it is held, so no process
    /// (this one included, through another handle or mapping) may modify the
    /// mapped part of the file while the map is alive. A truncation cannot
    /// crash a guarded map (see the crate docs on the fault guard).
    pub unsafe fn map<F: MapSource + ?Sized>(&self, file: &F) -> Result<Map> {
        self.map_file(file.descriptor(), Protection::Read, Sharing::Shared, None).map(Map::from_raw)
    }

    /// Maps the file read-write, shared: writes reach the file (after
    /// [`MapMut::flush`], durably) and every other mapping of it.
    ///
    /// # Safety
    /// As for [`map`](Self::map): no other process, handle or mapping may modify
    /// the mapped part of the file while the map is alive.
    pub unsafe fn map_mut<F: MapSource + ?Sized>(&self, file: &F) -> Result<MapMut> {
        self.map_file(file.descriptor(), Protection::ReadWrite, Sharing::Shared, None).map(MapMut::from_raw)
    }

    /// Maps the file copy-on-write: the map is writable, but writes stay in this
    /// process and never reach the file. The file may be opened read-only.
    ///
    /// # Safety
    /// Pages not yet written still show the file's current contents, so as for
    /// [`map`](Self::map) no one may modify the mapped part of the file.
    pub unsafe fn map_copy<F: MapSource + ?Sized>(&self, file: &F) -> Result<MapMut> {
        self.map_file(file.descriptor(), Protection::ReadWrite, Sharing::Private, None).map(MapMut::from_raw)
    }

    /// Maps the file copy-on-write but read-only, so that it can later be made
    /// writable with [`Map::make_mut`] without writes reaching the file.
    ///
    /// # Safety
    /// As for [`map_copy`](Self::map_copy).
    pub unsafe fn map_copy_read_only<F: MapSource + ?Sized>(&self, file: &F) -> Result<Map> {
        self.map_file(file.descriptor(), Protection::Read, Sharing::Private, None).map(Map::from_raw)
    }

    /// Maps the file read-only and executable (`PROT_READ | PROT_EXEC`),
    /// shared: for loaders and JIT code written to a file.
    ///
    /// # Safety
    /// As for [`map`](Self::map); and the bytes are run as machine code, so
    /// they must be code the caller means to run.
    pub unsafe fn map_exec<F: MapSource + ?Sized>(&self, file: &F) -> Result<Map> {
        self.map_file(file.descriptor(), Protection::ReadExec, Sharing::Shared, None).map(Map::from_raw)
    }

    /// Maps the file read-write, shared, as a [`MapRaw`]: safe, since a raw map
    /// hands out only raw pointers, for memory that other processes or threads
    /// write while it is mapped.
    pub fn map_raw<F: MapSource + ?Sized>(&self, file: &F) -> Result<MapRaw> {
        self.map_file(file.descriptor(), Protection::ReadWrite, Sharing::Shared, None).map(MapRaw::from_raw)
    }

    /// Maps the file read-only, shared, as a [`MapRaw`] (see [`map_raw`](Self::map_raw)).
    pub fn map_raw_read_only<F: MapSource + ?Sized>(&self, file: &F) -> Result<MapRaw> {
        self.map_file(file.descriptor(), Protection::Read, Sharing::Shared, None).map(MapRaw::from_raw)
    }

    /// Maps the file read-only, safely, if the operating system guarantees
    /// its bytes cannot change while it is mapped: a memfd sealed against
    /// writes and shrinking (`F_SEAL_WRITE | F_SEAL_SHRINK`, Linux and
    /// FreeBSD) or an fs-verity file (Linux). Any other file is refused with
    /// [`ErrorKind::MayChange`], saying why: map it with the `unsafe`
    /// [`map`](Self::map) instead, under its contract.
    pub fn map_if_safe<F: MapSource + ?Sized>(&self, file: &F) -> Result<Map> {
        let fd = file.descriptor();
        let fail = |kind| Error::new(Operation::Map, kind).with_path(sys::fd_path(fd));
        match sys::why_immutable(fd).map_err(|e| fail(ErrorKind::os(e)))? {
            // SAFETY: the OS refuses every change to the file's bytes (seals, or fs-verity), so a `&[u8]` of them
            // never sees them change; faults (a failed read) are still the guard's to report.
            Some(_) => unsafe { self.map(file) },
            None => Err(fail(ErrorKind::MayChange { os: sys::OS })),
        }
    }

    /// Opens the file at `path` read-only and maps it as [`map`](Self::map) does.
    /// Errors name the path.
    ///
    /// # Safety
    /// As for [`map`](Self::map).
    pub unsafe fn open<P: AsRef<Path>>(&self, path: P) -> Result<Map> {
        let path = path.as_ref();
        let file = open(path, OpenOptions::new().read(true))?;
        self.map_file(file.descriptor(), Protection::Read, Sharing::Shared, Some(path)).map(Map::from_raw)
    }

    /// Opens the file at `path` for reading and writing and maps it as
    /// [`map_mut`](Self::map_mut) does. Errors name the path.
    ///
    /// # Safety
    /// As for [`map_mut`](Self::map_mut).
    pub unsafe fn open_mut<P: AsRef<Path>>(&self, path: P) -> Result<MapMut> {
        let path = path.as_ref();
        let file = open(path, OpenOptions::new().read(true).write(true))?;
        self.map_file(file.descriptor(), Protection::ReadWrite, Sharing::Shared, Some(path)).map(MapMut::from_raw)
    }

    /// Maps `len` bytes of private, zero-filled memory.
    ///
    /// Safe: no other process can see or change this memory.
    pub fn map_anon(&self) -> Result<MapMut> {
        self.map_anon_raw(Sharing::Private).map(MapMut::from_raw)
    }

    /// Maps `len` bytes of zero-filled memory shared with the children this
    /// process later creates with `fork` (`MAP_ANON | MAP_SHARED`).
    ///
    /// # Safety
    /// A forked child that writes the memory changes bytes under this process's
    /// slices. Until the map is dropped, no other process may write the
    /// memory while this one holds a slice of it, other than through atomics
    /// reached by raw pointer.
    pub unsafe fn map_anon_shared(&self) -> Result<MapMut> {
        self.map_anon_raw(Sharing::Shared).map(MapMut::from_raw)
    }

    fn map_file(
        &self,
        fd: Descriptor<'_>,
        prot: Protection,
        sharing: Sharing,
        known_path: Option<&Path>,
    ) -> Result<Mapping> {
        let origin = Origin { options: self.clone(), sharing };
        map_origin(origin, fd, prot, known_path, Fit::Exact)
    }

    /// What `mmap` is asked for besides the range.
    fn behavior(&self, huge_log2: Option<u8>) -> Behavior {
        Behavior { populate: self.populate, no_reserve: self.no_reserve, huge_log2, stack: self.stack }
    }

    fn map_anon_raw(&self, sharing: Sharing) -> Result<Mapping> {
        let fail = |kind| Error::new(Operation::Map, kind);
        if self.offset != 0 {
            return Err(fail(ErrorKind::InvalidArgument("an anonymous map has no file offset; leave `offset` unset")));
        }
        let len = self.len.unwrap_or(0);
        if len == 0 {
            return Ok(Mapping::empty(Protection::ReadWrite, sharing, None));
        }
        let huge = match self.huge {
            None => None,
            Some(Some(size)) => Some(size),
            Some(None) => Some(HugePageSize::system_default()?),
        };
        let unit = huge.map_or(sys::page_size(), HugePageSize::bytes);
        let unmap_len =
            len.checked_next_multiple_of(unit).ok_or(fail(ErrorKind::TooLarge { offset: 0, len: len as u64 }))?;
        let behavior = self.behavior(huge.map(|h| h.log2));
        let base =
            sys::map_anon(unmap_len, Protection::ReadWrite, sharing, behavior).map_err(|e| match ErrorKind::os(e) {
                ErrorKind::Os(error) => fail(ErrorKind::AnonymousMemory { len, error }),
                other => fail(other),
            })?;
        // SAFETY: `base` is a fresh mapping of `unmap_len` bytes that nothing else owns.
        let mut raw = unsafe { Mapping::from_parts(base, 0, len, unmap_len, Protection::ReadWrite, sharing, None) };
        if huge.is_some() {
            raw.set_huge();
        }
        self.lock_if_asked(raw)
    }

    /// Maps `file` again as `old` was asked to be mapped: the same offset,
    /// protection, sharing and options, over the bytes of the requested range
    /// that the file holds now (to its current end for a whole-file map). A
    /// file now shorter than the offset gives an empty map that remembers the
    /// request, so a later refresh, once the file has grown back, maps it again.
    pub(crate) fn refresh(old: &Mapping, fd: Descriptor<'_>) -> Result<Mapping> {
        let Some(origin) = old.origin() else {
            return Err(Error::new(Operation::Map, ErrorKind::InvalidArgument("only file maps can be mapped again")));
        };
        let mut new = map_origin(origin.clone(), fd, old.protection(), None, Fit::ClipToFile)?;
        if let Some(path) = old.known_path() {
            new.set_path(path);
        }
        Ok(new)
    }

    fn lock_if_asked(&self, raw: Mapping) -> Result<Mapping> {
        if self.lock {
            raw.set_locked(true)?;
        }
        Ok(raw)
    }
}

/// How a requested range meets a file shorter than it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// The range must lie inside the file: an error names what is missing.
    Exact,
    /// The part of the range the file holds is mapped (none, if it holds none).
    ClipToFile,
}

/// Maps what `origin` asks for of the file behind `fd`.
fn map_origin(
    origin: Origin,
    fd: Descriptor<'_>,
    prot: Protection,
    known_path: Option<&Path>,
    fit: Fit,
) -> Result<Mapping> {
    // The path is looked up only when an error needs it, off the fast path.
    let path_of = || known_path.map(Path::to_path_buf).or_else(|| sys::fd_path(fd));
    let fail = |kind| Error::new(Operation::Map, kind).with_path(path_of());
    let options = &origin.options;
    let sharing = origin.sharing;

    let info = sys::file_info(fd).map_err(|e| fail(ErrorKind::os(e)))?;
    let len = match info.kind {
        // A shared-memory object (macOS's have no file-type bits) maps to its size like a file.
        FileKind::Regular | FileKind::BlockDevice | FileKind::SharedMemory => match fit {
            Fit::Exact => resolve_len(options.offset, options.len, info.len).map_err(fail)?,
            Fit::ClipToFile => {
                let end = match options.len {
                    Some(len) => options.offset.saturating_add(len as u64).min(info.len),
                    None => info.len,
                };
                let held = end.saturating_sub(options.offset);
                usize::try_from(held).map_err(|_| fail(ErrorKind::TooLarge { offset: options.offset, len: held }))?
            }
        },
        // A character device (/dev/zero, a UIO device, a framebuffer) has no
        // length to map to: the caller names one, and the driver decides.
        FileKind::CharacterDevice => {
            options.len.ok_or_else(|| fail(ErrorKind::LengthRequired(info.kind.describe())))?
        }
        other => return Err(fail(ErrorKind::NotMappable(other.describe()))),
    };
    if len == 0 {
        // No mmap call will check the access mode, so check it here.
        return match access_problem(fd, prot, sharing) {
            Some(kind) => Err(fail(kind)),
            None => Ok(Mapping::empty(prot, sharing, Some(origin))),
        };
    }
    let span = Span::new(options.offset, len, sys::page_size())
        .ok_or_else(|| fail(ErrorKind::TooLarge { offset: options.offset, len: len as u64 }))?;
    let behavior = options.behavior(None);
    let base = sys::map_file(span.map_len, prot, sharing, behavior, fd, span.file_offset).map_err(|e| {
        // EACCES usually means the file was not opened for the access the
        // map needs; say which, rather than just "permission denied".
        let explained =
            (e.kind() == std::io::ErrorKind::PermissionDenied).then(|| access_problem(fd, prot, sharing)).flatten();
        let writable_shared = prot == Protection::ReadWrite && sharing == Sharing::Shared;
        let refused = e.kind() == std::io::ErrorKind::PermissionDenied && writable_shared;
        fail(explained.or_else(|| refused.then(Mapping::shared_write_refused)).unwrap_or(ErrorKind::os(e)))
    })?;
    let (guarded, huge, lock) = (!options.unguarded, options.huge.is_some(), options.lock);
    // SAFETY: `base` is a fresh mapping of `span.map_len` bytes that nothing else owns.
    let mut raw = unsafe { Mapping::from_parts(base, span.lead, len, span.map_len, prot, sharing, Some(origin)) };
    if sharing == Sharing::Shared && prot != Protection::ReadWrite {
        // For the message of a later refusal to make it writable.
        raw.set_opened_writable(sys::access_mode(fd).ok().map(|access| access.can_write()));
    }
    if let Some(path) = known_path {
        raw.set_path(path);
    }
    if guarded {
        raw.guard(span.file_offset).map_err(|e| e.with_path(path_of()))?;
    }
    if huge {
        raw.advise(Advice::HugePage, None).map_err(|e| e.with_path(path_of()))?;
    }
    if lock {
        raw.set_locked(true).map_err(|e| e.with_path(path_of()))?;
    }
    Ok(raw)
}

/// What is wrong with `fd`'s access mode for a map of `prot` and `sharing`, if anything.
fn access_problem(fd: Descriptor<'_>, prot: Protection, sharing: Sharing) -> Option<ErrorKind> {
    let access = sys::access_mode(fd).ok()?;
    if !access.can_read() {
        return Some(ErrorKind::AccessMode { opened: "write-only", needed: "every mapping needs read access" });
    }
    if prot == Protection::ReadWrite && sharing == Sharing::Shared && !access.can_write() {
        return Some(ErrorKind::AccessMode {
            opened: "read-only",
            needed: "a writable shared mapping needs read and write access",
        });
    }
    None
}

/// Opens `path` with `options`; the error names the path.
pub(crate) fn open(path: &Path, options: &OpenOptions) -> Result<File> {
    options.open(path).map_err(|e| Error::os(Operation::Open, e).with_path(Some(path.to_path_buf())))
}

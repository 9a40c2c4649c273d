//! `Region`: a shared-memory object mapped read-write, with a validated
//! header. Made by name (POSIX shm, `/dev/shm`), by file path, or as an
//! anonymous memfd passed to another process over a Unix socket.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mmapkit::{MapMut, MapOptions};
use mmapkit_sys::{fd_passing, file, process, range_lock, shm};

use crate::error::{Content, Op, Result, ShmError};
use crate::header::{self, HEADER_SIZE, Header};
use crate::layout::Layout;
use crate::lifecycle::{self, ATTACH_PLACES, Claim, Reclaim};

/// Where a region lives, for naming it in errors and removing it on drop.
#[derive(Clone, Debug)]
enum Origin {
    Named(String),
    File(PathBuf),
    Memfd,
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Named(name) => format!("shared memory {name}"),
            Origin::File(path) => format!("shared file {}", path.display()),
            Origin::Memfd => "memfd region".to_owned(),
        }
    }
}

/// How regions are created and opened.
#[derive(Clone, Debug)]
pub struct RegionOptions {
    mode: u32,
    timeout: Duration,
    keep: bool,
    group: bool,
}

impl Default for RegionOptions {
    fn default() -> Self {
        RegionOptions { mode: 0o600, timeout: Duration::from_secs(5), keep: false, group: false }
    }
}

impl RegionOptions {
    /// Owner-only (`0600`) regions, a 5 s wait for a region to become ready,
    /// and removal of created regions on drop.
    pub fn new() -> Self {
        Self::default()
    }

    /// Permission bits for regions this creates (default `0o600`), set
    /// exactly, whatever the umask.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// How long an opener waits for the creator to finish (default 5 s).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Whether the region is shared with a group (default: no, owner only).
    ///
    /// Creating: the region gets read and write for its group (`0660` from
    /// the default mode); its group is the creator's effective group (give
    /// the creator that group, or `chown` the object). Opening: a region
    /// owned by another user is accepted when its group is one of this
    /// process's groups and it grants that group read and write; without
    /// this option it is refused ([`ShmError::WrongOwner`]), whatever its
    /// mode. Every process of the group can then write the region, so
    /// every one of them must be trusted as a peer.
    pub fn group(&mut self, yes: bool) -> &mut Self {
        self.group = yes;
        self
    }

    /// The permission bits a created region gets.
    fn create_mode(&self) -> u32 {
        if self.group { self.mode | 0o060 } else { self.mode }
    }

    /// Whether a created region's name stays in place when it is dropped
    /// (default: no, it is removed).
    pub fn keep(&mut self, yes: bool) -> &mut Self {
        self.keep = yes;
        self
    }
}

/// Normalises a POSIX shm name to `/name`, refusing what the kernel would.
pub(crate) fn shm_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.contains('/') || bare.len() > 250 || bare == "." || bare == ".." {
        return Err(ShmError::BadName { name: name.to_owned() });
    }
    Ok(format!("/{bare}"))
}

/// A mapped shared-memory region: a [header](crate::Layout) and a payload.
///
/// The region hands out raw pointers only; the typed views built on it
/// ([`Shared`](crate::Shared), [`ShmMutex`](crate::ShmMutex)) state what
/// makes their references sound. The creator removes the name on drop unless
/// told to [`keep`](RegionOptions::keep) it.
pub struct Region {
    map: MapMut,
    file: OwnedFd,
    origin: Origin,
    /// Whether this handle created the region: only the creator removes it.
    created: bool,
    /// Whether the name stays when the creator's handle is dropped.
    keep: bool,
    payload_len: usize,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("origin", &self.origin).field("payload_len", &self.payload_len).finish()
    }
}

impl Region {
    /// Creates the POSIX shared-memory object `name` (`O_EXCL`, mode from
    /// `options`) of `payload_len` bytes, runs `init` on the zeroed payload,
    /// then marks it ready for openers.
    ///
    /// A name left behind by a creator that died (or dropped a
    /// [`keep`](RegionOptions::keep) region) and that nobody is attached to is
    /// reclaimed first, under the rule [`Holders`](crate::Holders) states; a name someone holds is
    /// [`ShmError::Exists`].
    pub fn create_named(
        name: &str,
        layout: Layout,
        payload_len: usize,
        options: &RegionOptions,
        init: impl FnOnce(*mut u8),
    ) -> Result<Region> {
        let name = shm_name(name)?;
        let describe = format!("shared memory {name}");
        let start = Instant::now();
        let fd = 'create: loop {
            let fd = loop {
                match shm::create(&name, options.create_mode()) {
                    Ok(fd) => break fd,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(ShmError::os(Op::Create, &describe, e)),
                }
                match lifecycle::reclaim_named(&name, start.elapsed() >= options.timeout)? {
                    Reclaim::Done | Reclaim::Gone => {}
                    Reclaim::InUse => return Err(ShmError::Exists { region: describe }),
                    Reclaim::Young => std::thread::sleep(Duration::from_millis(1)),
                }
            };
            loop {
                let claim =
                    lifecycle::claim_as_creator(fd.as_fd()).map_err(|e| ShmError::os(Op::Attach, &describe, e))?;
                // Our object is empty until we size it; one that has a length was forced by a reclaimer that found
                // it empty past the timeout, and that removes the name: make a new object.
                let len = file::file_status(fd.as_fd()).map_err(|e| ShmError::os(Op::Inspect, &describe, e))?.len;
                if len != 0 {
                    continue 'create;
                }
                match claim {
                    Claim::Held | Claim::NoLocks => break 'create fd,
                    // Another creator's look at our object (it found the name taken) holds every lock for a moment.
                    Claim::Busy if start.elapsed() < options.timeout => std::thread::sleep(Duration::from_micros(100)),
                    Claim::Busy => {
                        return Err(ShmError::Busy {
                            region: describe,
                            waited: start.elapsed(),
                            places: ATTACH_PLACES,
                        });
                    }
                }
            }
        };
        file::set_mode(fd.as_fd(), options.create_mode()).map_err(|e| ShmError::os(Op::Create, &describe, e))?;
        let origin = Origin::Named(name);
        Region::initialise(fd, origin, layout, payload_len, options, init, true)
    }

    /// Opens the POSIX shared-memory object `name`, waits until its creator
    /// has made it ready, and checks that it holds `layout`. A region being
    /// reclaimed as it is opened is opened again by name.
    pub fn open_named(name: &str, layout: Layout, options: &RegionOptions) -> Result<Region> {
        let name = shm_name(name)?;
        let describe = format!("shared memory {name}");
        let start = Instant::now();
        loop {
            let fd = shm::open(&name).map_err(|e| ShmError::os(Op::Open, &describe, e))?;
            match Region::attach(fd, Origin::Named(name.clone()), layout, options, true) {
                Err(ShmError::Reclaimed { .. }) if start.elapsed() < options.timeout => {}
                other => return other,
            }
        }
    }

    /// Opens the region `name` if it exists, or creates it (as
    /// [`create_named`](Self::create_named) does, reclaiming a stale name)
    /// if it does not; [`created`](Self::created) tells which. Two processes
    /// racing to do this get one region: one creates it, the other opens it.
    pub fn open_or_create_named(
        name: &str,
        layout: Layout,
        payload_len: usize,
        options: &RegionOptions,
        init: impl FnOnce(*mut u8),
    ) -> Result<Region> {
        let mut init = Some(init);
        open_or_create(
            options,
            || {
                let init = init.take();
                Region::create_named(name, layout, payload_len, options, |payload| {
                    if let Some(init) = init {
                        init(payload)
                    }
                })
            },
            || Region::open_named(name, layout, options),
        )
    }

    /// Creates a shared region in a new file at `path` (`O_EXCL`, mode from
    /// `options`). See [`create_named`](Self::create_named).
    pub fn create_file(
        path: &Path,
        layout: Layout,
        payload_len: usize,
        options: &RegionOptions,
        init: impl FnOnce(*mut u8),
    ) -> Result<Region> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).mode(options.mode).open(path);
        let file = file.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ShmError::Exists { region: format!("shared file {}", path.display()) },
            _ => ShmError::os(Op::Create, &format!("shared file {}", path.display()), e),
        })?;
        Region::initialise(file.into(), Origin::File(path.to_path_buf()), layout, payload_len, options, init, true)
    }

    /// Opens a shared region in the file at `path`. See [`open_named`](Self::open_named).
    pub fn open_file(path: &Path, layout: Layout, options: &RegionOptions) -> Result<Region> {
        let describe = format!("shared file {}", path.display());
        let file =
            OpenOptions::new().read(true).write(true).open(path).map_err(|e| ShmError::os(Op::Open, &describe, e))?;
        Region::attach(file.into(), Origin::File(path.to_path_buf()), layout, options, true)
    }

    /// Creates an anonymous region in a memfd sealed against shrinking; share
    /// it with [`send`](Self::send). It has no name to leak after a crash.
    pub fn create_memfd(layout: Layout, payload_len: usize, init: impl FnOnce(*mut u8)) -> Result<Region> {
        let len = (HEADER_SIZE + payload_len) as u64;
        let fd = shm::anonymous("mmapkit-shm", len).map_err(|e| ShmError::os(Op::Create, "memfd region", e))?;
        Region::initialise(fd, Origin::Memfd, layout, payload_len, &RegionOptions::new(), init, false)
    }

    /// Sends this region's descriptor over a connected Unix socket (Unix only).
    #[cfg(unix)]
    pub fn send(&self, socket: &UnixStream) -> Result<()> {
        fd_passing::send_fd(socket, self.file.as_fd()).map_err(|e| ShmError::os(Op::Send, &self.origin.describe(), e))
    }

    /// Receives a memfd region sent with [`send`](Self::send), checks that it
    /// is sealed against shrinking and holds `layout`.
    #[cfg(unix)]
    pub fn receive(socket: &UnixStream, layout: Layout, options: &RegionOptions) -> Result<Region> {
        let received = fd_passing::recv_fd(socket).map_err(|e| ShmError::os(Op::Receive, "memfd region", e))?;
        let sealed =
            shm::cannot_shrink(received.as_fd()).map_err(|e| ShmError::os(Op::CheckSeals, "memfd region", e))?;
        // Where the OS can seal (Linux, FreeBSD), an unsealed one is refused;
        // where it cannot (macOS), it is mapped under the fault guard, which
        // turns a truncation by the sender into errors.
        if !sealed && shm::CAN_SEAL {
            return Err(ShmError::NotSealed { region: "memfd region".to_owned() });
        }
        // A description of our own, so locks taken on it are this process's.
        let own = range_lock::reopen(received.as_fd()).map_err(|e| ShmError::os(Op::Reopen, "memfd region", e))?;
        Region::attach(own, Origin::Memfd, layout, options, !sealed)
    }

    fn map(fd: &OwnedFd, len: u64, origin: &Origin, guarded: bool) -> Result<MapMut> {
        let mut options = MapOptions::new();
        options.len(len as usize);
        if !guarded {
            // Sealed against shrinking: it cannot fault by truncation.
            options.unguarded(true);
        }
        // SAFETY: the map's bytes are never handed out as slices: the region gives raw pointers, and the typed views
        // on it state their contracts.
        unsafe { options.map_mut(fd) }.map_err(|e| ShmError::os(Op::Map, &origin.describe(), e.into()))
    }

    fn initialise(
        fd: OwnedFd,
        origin: Origin,
        layout: Layout,
        payload_len: usize,
        options: &RegionOptions,
        init: impl FnOnce(*mut u8),
        guarded: bool,
    ) -> Result<Region> {
        let describe = origin.describe();
        let len = (HEADER_SIZE + payload_len) as u64;
        // From here on a failure must not leave the name behind.
        let mut region = Region {
            map: MapMut::anon(0).map_err(|e| ShmError::os(Op::Map, &describe, e.into()))?,
            file: fd,
            origin,
            created: true,
            keep: options.keep,
            payload_len,
        };
        if !matches!(region.origin, Origin::Memfd) {
            file::set_len(region.file.as_fd(), len).map_err(|e| ShmError::os(Op::Resize, &describe, e))?;
        }
        region.map = Region::map(&region.file, len, &region.origin, guarded)?;
        let header = region.header_ptr();
        // SAFETY: the mapping is `len >= HEADER_SIZE` bytes and writable.
        unsafe { header::begin(header, layout, payload_len as u64, process::pid()) };
        init(region.payload_ptr());
        // SAFETY: as above.
        unsafe { header::publish(header) };
        Ok(region)
    }

    fn attach(fd: OwnedFd, origin: Origin, layout: Layout, options: &RegionOptions, guarded: bool) -> Result<Region> {
        let describe = origin.describe();
        let status = file::file_status(fd.as_fd()).map_err(|e| ShmError::os(Op::Inspect, &describe, e))?;
        let start = Instant::now();
        let us = process::effective_uid();
        if status.owner != us && us != 0 && !Region::group_allows(options, &status)? {
            return Err(ShmError::WrongOwner { region: describe, owner: status.owner, us });
        }
        if matches!(origin, Origin::Named(_)) {
            loop {
                match lifecycle::claim_attach(fd.as_fd()).map_err(|e| ShmError::os(Op::Attach, &describe, e))? {
                    Claim::Held | Claim::NoLocks => break,
                    Claim::Busy if start.elapsed() < options.timeout => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Claim::Busy => {
                        return Err(ShmError::Busy {
                            region: describe,
                            waited: options.timeout,
                            places: ATTACH_PLACES,
                        });
                    }
                }
            }
        }
        // Between the creator's create and its ftruncate the object is empty:
        // wait (within the timeout) for it to reach its size.
        let mut len = status.len;
        while len < HEADER_SIZE as u64 {
            if start.elapsed() >= options.timeout {
                return Err(ShmError::TooSmall {
                    region: describe,
                    len,
                    what: Content::Header,
                    need: HEADER_SIZE as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
            len = file::file_status(fd.as_fd()).map_err(|e| ShmError::os(Op::Inspect, &describe, e))?.len;
        }
        let map = Region::map(&fd, len, &origin, guarded)?;
        let mut region = Region { map, file: fd, origin, created: false, keep: true, payload_len: 0 };
        let remaining = options.timeout.saturating_sub(start.elapsed());
        // SAFETY: the mapping is at least HEADER_SIZE bytes and lives in `region`.
        let snapshot = unsafe { header::wait_ready(region.header_ptr(), &describe, layout, len, remaining) }?;
        region.payload_len = snapshot.payload_len as usize;
        Ok(region)
    }

    /// Whether [`RegionOptions::group`] lets this process open a region of
    /// another user's with `status`: group access asked for, the region's
    /// group one of ours, and read and write granted to it.
    fn group_allows(options: &RegionOptions, status: &file::FileStatus) -> Result<bool> {
        if !options.group || status.mode & 0o060 != 0o060 {
            return Ok(false);
        }
        process::in_group(status.group).map_err(|e| ShmError::os(Op::Inspect, "this process's groups", e))
    }

    /// Whether this handle created the region (rather than opened it).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Who holds the region: whether its creator's handle is open, and how
    /// many handles and ends are attached (this one among them). A named or
    /// file region only: a memfd region has nobody to reclaim it.
    pub fn holders(&self) -> Result<lifecycle::Holders> {
        let own = range_lock::reopen(self.file.as_fd()).map_err(|e| ShmError::os(Op::Reopen, &self.describe(), e))?;
        lifecycle::holders(own.as_fd(), self.creator_pid()).map_err(|e| ShmError::os(Op::Attach, &self.describe(), e))
    }

    fn header_ptr(&self) -> *mut Header {
        self.map.as_ptr().cast_mut().cast()
    }

    /// Maps in, writable, the first `len` bytes of the payload (at most all of
    /// it), allocating them if they are not yet (`MADV_POPULATE_WRITE`), so
    /// that touching them later costs no page fault. The bytes are not
    /// changed. Fails on kernels before 5.14, and with `Fault` if the file was
    /// cut short under the mapping.
    pub fn populate(&self, len: usize) -> Result<()> {
        self.map
            .advise_range(mmapkit::Advice::PopulateWrite, HEADER_SIZE, len.min(self.payload_len))
            .map_err(|e| ShmError::os(Op::Populate, &self.describe(), e.into()))
    }

    /// The first payload byte (aligned to 128 bytes).
    pub fn payload_ptr(&self) -> *mut u8 {
        // HEADER_SIZE is inside the mapping, which is at least that long.
        self.map.as_ptr().cast_mut().wrapping_add(HEADER_SIZE)
    }

    /// The payload's length in bytes, as validated against the mapping.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The region's own open file description (for liveness locks).
    pub(crate) fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// A description for messages: `shared memory /name`.
    pub fn describe(&self) -> String {
        self.origin.describe()
    }

    /// The creator's pid, as its header says.
    pub fn creator_pid(&self) -> u32 {
        // SAFETY: the mapping is at least HEADER_SIZE bytes and lives in `self`.
        unsafe { header::read(self.header_ptr()) }.creator_pid
    }

    /// Whether the region's name stays in place when this handle is dropped
    /// (at first, as the [`RegionOptions::keep`] it was created with said).
    /// Only the handle that created the region ever removes it.
    pub fn keep(&mut self, yes: bool) {
        self.keep = yes;
    }
}

/// Creates with `create`, or on [`ShmError::Exists`] opens with `open`,
/// until one works or the timeout passes: the region may be removed between
/// the two, or reclaimed while being opened.
pub(crate) fn open_or_create<T>(
    options: &RegionOptions,
    mut create: impl FnMut() -> Result<T>,
    mut open: impl FnMut() -> Result<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        match create() {
            Err(ShmError::Exists { .. }) => {}
            other => return other,
        }
        match open() {
            Err(ShmError::Os { op: Op::Open, error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(ShmError::Reclaimed { .. }) => {}
            other => return other,
        }
        if start.elapsed() >= options.timeout {
            return open();
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if !self.created || self.keep {
            return;
        }
        match &self.origin {
            Origin::Named(name) => {
                let _ = shm::unlink(name);
            }
            Origin::File(path) => {
                let _ = std::fs::remove_file(path);
            }
            Origin::Memfd => {}
        }
    }
}

//! Who holds a named region, and reclaiming one whose holders are all gone:
//! the owner and attach locks, and the reclaim rule [`Holders`] states.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use mmapkit::MapOptions;
use mmapkit_sys::{file, process, range_lock, shm};

use crate::error::{Op, Result, ShmError};
use crate::header::{self, HEADER_SIZE, Header, MAGIC};

/// The creator's lock byte.
pub(crate) const OWNER_BYTE: u64 = 1 << 41;
/// The first attach byte.
const ATTACH_BASE: u64 = OWNER_BYTE + 1;
/// How many handles may be attached to one named region at once.
pub const ATTACH_PLACES: u64 = 1024;
/// The first of the liveness bytes the ends of channels, boards and services
/// hold, and how many there are at most.
pub(crate) const ENDS_RANGE: (u64, u64) = (1 << 40, 256);

fn unsupported(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported
}

/// What taking a handle's locks found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The locks are held through this handle's descriptor.
    Held,
    /// The OS has no such locks here; nothing is held.
    NoLocks,
    /// Every attach byte is taken, or a reclaimer holds them all.
    Busy,
}

/// Takes the owner byte and an attach byte for the creator of the object
/// just made on `fd`.
pub(crate) fn claim_as_creator(fd: BorrowedFd<'_>) -> io::Result<Claim> {
    match range_lock::try_lock_byte(fd, OWNER_BYTE) {
        Err(e) if unsupported(&e) => Ok(Claim::NoLocks),
        Err(e) => Err(e),
        Ok(false) => Ok(Claim::Busy),
        Ok(true) => claim_attach(fd),
    }
}

/// Takes the first free attach byte for a handle opened on `fd`.
pub(crate) fn claim_attach(fd: BorrowedFd<'_>) -> io::Result<Claim> {
    for place in 0..ATTACH_PLACES {
        match range_lock::try_lock_byte(fd, ATTACH_BASE + place) {
            Err(e) if unsupported(&e) => return Ok(Claim::NoLocks),
            Err(e) => return Err(e),
            Ok(true) => return Ok(Claim::Held),
            Ok(false) => {}
        }
    }
    Ok(Claim::Busy)
}

/// Who holds a region, as its locks (or, without locks, its creator's pid)
/// say ([`Region::holders`](crate::Region::holders)).
///
/// The creator of a named region holds a lock on its owner byte for as long
/// as its handle lives, and every handle (the creator's and each opener's)
/// holds one of [`ATTACH_PLACES`] attach bytes. These are byte-range locks of
/// the handle's own open file description, far past the end of the file:
/// the kernel drops them when the handle closes or its process dies, even by
/// `SIGKILL`. A child forked without exec holds copies of its parent's
/// descriptors, and so their locks, until it execs or exits.
///
/// # The reclaim rule
///
/// A name whose region no handle holds any lock on (its creator is gone and
/// nobody is attached) is stale: the next creator of that name (or
/// `mmapkit shm clean`) reclaims it, removing the name and making a new
/// region under it. A region someone is still attached to is never
/// reclaimed, even if its creator died: creating it fails with
/// [`Exists`](crate::ShmError::Exists) and opening it works as before.
///
/// A reclaimer takes every lock at once (one lock over the owner byte and
/// all attach bytes, all or nothing), marks the header reclaimed, then
/// removes the name. An opener takes its attach byte before it reads the
/// header, so either the reclaimer found it attached and left the region
/// alone, or it finds the mark and opens the name again.
///
/// An object shorter than a header with no lock on it may be a creator's
/// between its create and its locks: it is left alone for the open timeout
/// ([`RegionOptions::timeout`](crate::RegionOptions::timeout)), then
/// reclaimed. Objects that do not start with mmapkit-shm's magic are never
/// touched.
///
/// Where the OS has no such locks on shared memory (macOS, FreeBSD), the
/// creator's pid is the only sign: a region whose creator no longer exists
/// is reclaimed whoever is attached, and a recycled pid keeps a stale region
/// alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holders {
    /// Whether the creating handle is still open (without locks: whether a
    /// process with the creator's pid exists).
    pub owner_alive: bool,
    /// How many handles are attached, the creator's included; `None` where
    /// the OS cannot tell.
    pub handles: Option<u64>,
    /// How many channel, board or service ends are attached; `None` where the
    /// OS cannot tell.
    pub ends: Option<u64>,
}

impl Holders {
    /// Whether the reclaim rule lets the region go: nobody attached (where
    /// the OS can tell) and its creator gone.
    pub fn stale(&self) -> bool {
        !self.owner_alive && self.handles.unwrap_or(0) == 0
    }
}

/// Looks at who holds the region on `fd`, whose header says `creator_pid`.
pub(crate) fn holders(fd: BorrowedFd<'_>, creator_pid: u32) -> io::Result<Holders> {
    match range_lock::range_locked_by_other(fd, OWNER_BYTE, 1) {
        Err(e) if unsupported(&e) => {
            Ok(Holders { owner_alive: process::exists(creator_pid), handles: None, ends: None })
        }
        Err(e) => Err(e),
        Ok(owner_alive) => Ok(Holders {
            owner_alive,
            handles: Some(range_lock::count_locked_by_other(fd, ATTACH_BASE, ATTACH_PLACES)?),
            ends: Some(range_lock::count_locked_by_other(fd, ENDS_RANGE.0, ENDS_RANGE.1)?),
        }),
    }
}

/// What [`reclaim_named`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reclaim {
    /// The name was stale and is gone now.
    Done,
    /// Someone holds the region (or, without locks, its creator exists).
    InUse,
    /// Shorter than a header and unlocked: maybe a creator's first moments.
    Young,
    /// No object has the name (any more).
    Gone,
}

/// Reclaims the object `name` (normalised, `/name`) under the rule above;
/// `force_young` reclaims an unlocked object shorter than a header too.
pub(crate) fn reclaim_named(name: &str, force_young: bool) -> Result<Reclaim> {
    let describe = format!("shared memory {name}");
    let fd = match shm::open(name) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Reclaim::Gone),
        Err(e) => return Err(ShmError::os(Op::Reclaim, &describe, e)),
    };
    let os = |e| ShmError::os(Op::Reclaim, &describe, e);
    let status = file::file_status(fd.as_fd()).map_err(os)?;
    let us = process::effective_uid();
    if status.owner != us && us != 0 {
        return Err(ShmError::WrongOwner { region: describe, owner: status.owner, us });
    }
    let locked = match range_lock::try_lock_range(fd.as_fd(), OWNER_BYTE, 1 + ATTACH_PLACES) {
        Err(e) if unsupported(&e) => None,
        Err(e) => return Err(os(e)),
        Ok(took) => Some(took),
    };
    if locked == Some(false) {
        return Ok(Reclaim::InUse);
    }
    if status.len < HEADER_SIZE as u64 {
        if !force_young {
            return Ok(Reclaim::Young);
        }
        file::set_len(fd.as_fd(), HEADER_SIZE as u64).map_err(os)?;
    }
    let map = header_map(&fd, &describe)?;
    let header: *mut Header = map.as_ptr().cast_mut().cast();
    // SAFETY: the mapping is HEADER_SIZE bytes, lives in `map`, and the header is read with volatile reads.
    let snapshot = unsafe { header::read(header) };
    let empty = snapshot.magic == [0; 8] && status.len < HEADER_SIZE as u64;
    if snapshot.magic != MAGIC && !empty {
        return Err(ShmError::BadMagic { region: describe, found: snapshot.magic });
    }
    if locked.is_none() && process::exists(snapshot.creator_pid) {
        return Ok(Reclaim::InUse);
    }
    // SAFETY: as above; the mapping is writable.
    unsafe { header::retire(header) };
    match shm::unlink(name) {
        Ok(()) => Ok(Reclaim::Done),
        // Another reclaimer (without locks) was first.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Reclaim::Done),
        Err(e) => Err(os(e)),
    }
}

/// The first `HEADER_SIZE` bytes of `fd`, mapped read-write under the fault
/// guard (the object may be cut short by a hostile peer).
pub(crate) fn header_map(fd: &OwnedFd, describe: &str) -> Result<mmapkit::MapMut> {
    let mut options = MapOptions::new();
    options.len(HEADER_SIZE);
    // SAFETY: the bytes are never handed out as slices: the header is read and written through raw pointers with
    // volatile or atomic accesses only.
    unsafe { options.map_mut(fd) }.map_err(|e| ShmError::os(Op::Map, describe, e.into()))
}

//! The named regions the OS shows (`/dev/shm` on Linux): what each is, who
//! holds it, and removing those the reclaim rule ([`Holders`]) lets go.

use std::io;
use std::os::fd::AsFd;

use mmapkit_sys::{file, shm};

use crate::error::{Op, Result, ShmError};
use crate::header::{self, HEADER_SIZE, Header, MAGIC};
use crate::layout::Layout;
use crate::lifecycle::{self, Holders, Reclaim};

/// What a named region holds, as its header's layout says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// A one-to-one channel ([`Sender`](crate::Sender), [`Receiver`](crate::Receiver)).
    Channel,
    /// A many-to-many channel ([`ChannelOptions::many`](crate::ChannelOptions::many)).
    ChannelMany,
    /// A publish-subscribe board ([`Publisher`](crate::Publisher), [`Subscriber`](crate::Subscriber)).
    Board,
    /// A request-response service ([`Server`](crate::Server), [`Client`](crate::Client)).
    Service,
    /// Any other region ([`Shared`](crate::Shared), [`ShmMutex`](crate::ShmMutex), a raw [`Region`](crate::Region)).
    Region,
    /// Shorter than a header: a creator's first moments, or one killed then.
    Empty,
}

impl RegionKind {
    /// The kind as a word: `channel`, `channel-many`, `board`, `service`,
    /// `region` or `empty`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionKind::Channel => "channel",
            RegionKind::ChannelMany => "channel-many",
            RegionKind::Board => "board",
            RegionKind::Service => "service",
            RegionKind::Region => "region",
            RegionKind::Empty => "empty",
        }
    }

    fn of(layout: Layout) -> RegionKind {
        let [one, many] = crate::channel::layouts();
        if layout == one.0 {
            RegionKind::Channel
        } else if layout == many.0 {
            RegionKind::ChannelMany
        } else if layout == crate::pubsub::board_layout() {
            RegionKind::Board
        } else if layout == crate::service::service_layout() {
            RegionKind::Service
        } else {
            RegionKind::Region
        }
    }
}

/// One named mmapkit-shm region, as [`list_named`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedRegion {
    /// Its name, `/name`.
    pub name: String,
    /// What it holds.
    pub kind: RegionKind,
    /// The creator's pid, from the header (0 for an empty one).
    pub creator_pid: u32,
    /// Its length in bytes.
    pub len: u64,
    /// Who holds it.
    pub holders: Holders,
}

/// Every named mmapkit-shm region this process may open, sorted by name;
/// objects that are not mmapkit-shm regions (no magic) or that this process
/// may not open are left out. `Unsupported` where the OS shows no list of
/// shared-memory objects (macOS, FreeBSD).
pub fn list_named() -> Result<Vec<NamedRegion>> {
    let names = shm::names().map_err(|e| ShmError::os(Op::List, "the shared-memory objects", e))?;
    let mut found = Vec::new();
    for name in names {
        if let Some(region) = inspect(&name)? {
            found.push(region);
        }
    }
    Ok(found)
}

/// The region `name`, or `None` if it is gone, not mmapkit-shm's, or not
/// ours to open.
fn inspect(name: &str) -> Result<Option<NamedRegion>> {
    let describe = format!("shared memory {name}");
    let fd = match shm::open(name) {
        Ok(fd) => fd,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) => return Ok(None),
        Err(e) => return Err(ShmError::os(Op::Open, &describe, e)),
    };
    let len = file::file_status(fd.as_fd()).map_err(|e| ShmError::os(Op::Inspect, &describe, e))?.len;
    let (kind, creator_pid) = if len < HEADER_SIZE as u64 {
        (RegionKind::Empty, 0)
    } else {
        let map = lifecycle::header_map(&fd, &describe)?;
        // SAFETY: the mapping is HEADER_SIZE bytes and lives in `map`; the header is read with volatile reads.
        let snapshot = unsafe { header::read(map.as_ptr().cast::<Header>()) };
        if snapshot.magic != MAGIC {
            return Ok(None);
        }
        (RegionKind::of(snapshot.layout), snapshot.creator_pid)
    };
    let holders = lifecycle::holders(fd.as_fd(), creator_pid).map_err(|e| ShmError::os(Op::Attach, &describe, e))?;
    Ok(Some(NamedRegion { name: name.to_owned(), kind, creator_pid, len, holders }))
}

/// Removes the region `name` if the reclaim rule ([`Holders`]) lets it go:
/// nobody holds it. An object shorter than a header with no lock on it is
/// looked at again 50 ms later (a creator takes its locks within moments of
/// making it) and removed if it is still so. `Ok(false)` if it is in use or
/// already gone; an object that is not an mmapkit-shm region is refused
/// ([`ShmError::BadMagic`]), as is one of another user's.
pub fn remove_if_stale(name: &str) -> Result<bool> {
    let name = crate::region::shm_name(name)?;
    match lifecycle::reclaim_named(&name, false)? {
        Reclaim::Done => Ok(true),
        Reclaim::InUse | Reclaim::Gone => Ok(false),
        Reclaim::Young => {
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(lifecycle::reclaim_named(&name, true)? == Reclaim::Done)
        }
    }
}

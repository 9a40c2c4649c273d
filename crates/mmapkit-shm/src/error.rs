//! The errors of mmapkit-shm, each naming the region and what was wrong.

use std::io;
use std::time::Duration;

use crate::layout::Layout;

/// The result type of mmapkit-shm.
pub type Result<T, E = ShmError> = std::result::Result<T, E>;

/// What went wrong with a shared-memory region or an object in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The operating system refused.
    #[error("cannot {action} {region}: {source}")]
    Os {
        /// What was being done ("create", "open", "map", ...).
        action: &'static str,
        /// The region's name or path.
        region: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating a region whose name is taken (`O_EXCL`).
    #[error("cannot create {region}: it already exists (open it instead, or remove it if it is stale)")]
    Exists {
        /// The region's name or path.
        region: String,
    },
    /// The region is owned by another user.
    #[error("{region} is owned by uid {owner}, not by this process's uid {us}; refusing to trust it")]
    WrongOwner {
        /// The region.
        region: String,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        us: u32,
    },
    /// The region is too small to hold what it claims to.
    #[error("{region} is {len} bytes, too small for {what} ({need} bytes)")]
    TooSmall {
        /// The region.
        region: String,
        /// Its length.
        len: u64,
        /// What it should hold.
        what: &'static str,
        /// Bytes needed.
        need: u64,
    },
    /// The region does not start with mmapkit's magic.
    #[error("{region} is not an mmapkit-shm region (its first bytes are {found:02x?})")]
    BadMagic {
        /// The region.
        region: String,
        /// What it starts with.
        found: [u8; 8],
    },
    /// The region was made by an incompatible format version.
    #[error("{region} has format version {found}; this build reads version {expected}")]
    BadVersion {
        /// The region.
        region: String,
        /// Its version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The region holds a different type than the one asked for.
    #[error("{region} holds {found}, not {expected}")]
    WrongLayout {
        /// The region.
        region: String,
        /// What the caller expected.
        expected: Layout,
        /// What the region's header says.
        found: Layout,
    },
    /// The creator did not finish initialising within the timeout.
    #[error("{region} was not ready after {waited:?} (its creator, pid {creator}, may have died while setting it up)")]
    NotReady {
        /// The region.
        region: String,
        /// How long we waited.
        waited: Duration,
        /// The creator's pid from the header.
        creator: u32,
    },
    /// A memfd was received without the seal against shrinking.
    #[error("the memfd received for {region} is not sealed against shrinking; a peer could truncate it")]
    NotSealed {
        /// The region.
        region: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The mutex's state is lost: an owner died and nobody marked it consistent.
    #[error("the mutex is unusable: an owner died holding it and the state was never marked consistent")]
    NotRecoverable,
    /// The other end of a channel died or closed.
    #[error("the {peer} of {region} is gone (it exited or was killed)")]
    PeerGone {
        /// The region.
        region: String,
        /// "sender" or "receiver".
        peer: &'static str,
    },
    /// The channel's end is already taken by another process or handle.
    #[error("{region} already has a {role} attached; a channel has one of each")]
    EndTaken {
        /// The region.
        region: String,
        /// "sender" or "receiver".
        role: &'static str,
    },
    /// A `try_send` found no room.
    #[error("the channel is full")]
    Full,
    /// A `try_recv` found no message.
    #[error("the channel is empty")]
    Empty,
    /// A message is longer than the channel allows.
    #[error("a message of {len} bytes is longer than this channel's limit of {max} bytes")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A receive buffer is shorter than the next message (which stays queued).
    #[error("the next message is {need} bytes; the buffer holds only {have}")]
    BufferTooSmall {
        /// The message's length.
        need: usize,
        /// The buffer's length.
        have: usize,
    },
    /// Shared memory holds values the protocol never writes: a peer is buggy
    /// or hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
}

impl ShmError {
    pub(crate) fn os(action: &'static str, region: &str, source: io::Error) -> ShmError {
        ShmError::Os { action, region: region.to_owned(), source }
    }
}

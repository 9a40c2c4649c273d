//! The errors of mmapkit-shm, one type per kind of operation, so that a
//! caller matches only what its call can return:
//!
//! - [`ShmError`]: making and opening regions, shared values, mutexes and
//!   channel ends (the setup);
//! - [`LockError`]: locking a [`ShmMutex`](crate::ShmMutex);
//! - [`SendError`]: reserving room and sending on a [`Sender`](crate::Sender);
//! - [`RecvError`]: receiving on a [`Receiver`](crate::Receiver);
//! - [`PublishError`]: loaning and publishing on a [`Publisher`](crate::Publisher);
//! - [`SubscriberError`]: receiving on a [`Subscriber`](crate::Subscriber);
//! - [`ServerError`]: receiving requests and responding on a [`Server`](crate::Server);
//! - [`ClientError`]: calling on a [`Client`](crate::Client).
//!
//! Each names the region and what was wrong. An error from the OS carries
//! the OS's message in its own and does not also return it from
//! [`source`](std::error::Error::source), so a chain printed with `{:#}`
//! shows it once.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::layout::Layout;
use crate::role::Role;

/// The result type of mmapkit-shm; its error is a [`ShmError`] unless said.
pub type Result<T, E = ShmError> = std::result::Result<T, E>;

/// What the OS was asked to do when it refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Create the region's shared-memory object or file.
    Create,
    /// Open an existing region.
    Open,
    /// Give a new region its length.
    Resize,
    /// Read the owner and length of a region.
    Inspect,
    /// Map a region.
    Map,
    /// Map a region's pages in ahead of use.
    Populate,
    /// Send a region's descriptor over a Unix socket.
    Send,
    /// Receive a region's descriptor over a Unix socket.
    Receive,
    /// Read a received memfd's seals.
    CheckSeals,
    /// Open a description of a received region of this process's own.
    Reopen,
    /// Claim a channel end's liveness lock.
    ClaimEnd,
    /// Look at whether a channel's other end is alive.
    CheckPeer,
    /// Take a mutex: a [`ShmMutex`](crate::ShmMutex), or the side lock of a
    /// many-to-many channel.
    Lock,
    /// Mark a mutex consistent after its owner died.
    Recover,
    /// Start or clear an end's readiness descriptor.
    Readiness,
    /// Take or look at a region's owner or attach lock.
    Attach,
    /// Reclaim a stale region: mark it and remove its name.
    Reclaim,
    /// List the shared-memory objects the OS shows.
    List,
}

impl fmt::Display for Op {
    /// The operation as the verb of "cannot ... {region}".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Open => "open",
            Op::Resize => "set the length of",
            Op::Inspect => "inspect",
            Op::Map => "map",
            Op::Populate => "populate",
            Op::Send => "send",
            Op::Receive => "receive",
            Op::CheckSeals => "check the seals of",
            Op::Reopen => "reopen",
            Op::ClaimEnd => "claim an end of",
            Op::CheckPeer => "look at the other end of",
            Op::Lock => "lock",
            Op::Recover => "recover the lock of",
            Op::Readiness => "watch for messages on",
            Op::Attach => "take or look at the attach lock of",
            Op::Reclaim => "reclaim",
            Op::List => "list",
        })
    }
}

/// What a region was found too small to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Content {
    /// The header every region starts with.
    Header,
    /// The payload the region's header declares.
    DeclaredPayload,
    /// A [`ShmMutex`](crate::ShmMutex) and its value.
    Mutex,
    /// A [`Shared`](crate::Shared) value.
    Value,
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Content::Header => "a region header",
            Content::DeclaredPayload => "the payload its header declares",
            Content::Mutex => "a shared mutex",
            Content::Value => "the shared value",
        })
    }
}

/// Why a region, a shared value, a mutex or a channel end could not be made
/// or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region's name or path.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
    /// A name the OS would refuse for a shared-memory object.
    #[error("{name:?} is not a shared-memory name: one is 1 to 250 characters with no '/' after the first")]
    BadName {
        /// The name given.
        name: String,
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
        what: Content,
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
    /// The region was found stale and reclaimed by another process while this
    /// one opened it: open the name again.
    #[error("{region} was reclaimed (its creator had died and nobody was attached) while this process opened it")]
    Reclaimed {
        /// The region.
        region: String,
    },
    /// Every attach place of the region is taken, or another process is
    /// reclaiming it, for as long as the timeout.
    #[error("{region} has no free attach place after {waited:?} ({places} are taken, or it is being reclaimed)")]
    Busy {
        /// The region.
        region: String,
        /// How long we waited.
        waited: Duration,
        /// How many attach places a region has.
        places: u64,
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
    /// Every end of this role the channel takes is attached already.
    #[error("{region} has no {role} end free: a channel takes one of each, or 64 of each when made for many")]
    EndTaken {
        /// The region.
        region: String,
        /// The role asked for.
        role: Role,
    },
    /// The region holds values the protocol never writes: a peer is buggy
    /// or hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// Every place for an end of this kind on a publish-subscribe board is taken.
    #[error("{region} has no {party} place free: it takes {max}")]
    NoPlaceFree {
        /// The region.
        region: String,
        /// The kind of end asked for.
        party: Party,
        /// How many of that kind the board takes.
        max: u64,
    },
    /// A subscriber asked for more past messages than the ring keeps.
    #[error("a subscriber of {region} asked for the last {asked} messages; the ring keeps {capacity}")]
    HistoryTooLong {
        /// The region.
        region: String,
        /// The messages asked for.
        asked: u64,
        /// The messages the ring keeps.
        capacity: u64,
    },
    /// A typed end attached to a board or channel made for another message type.
    #[error("{region} carries {theirs}; this end is for {ours}")]
    WrongMessageType {
        /// The region.
        region: String,
        /// This end's type, its size, alignment and fingerprint.
        ours: String,
        /// The type the region was made for, as its header says.
        theirs: String,
    },
    /// A message type that a board's slot or a channel's message cannot hold.
    #[error("{ty} ({size} bytes, alignment {align}) does not fit a message of {room} bytes aligned to {room_align}")]
    TypeDoesNotFit {
        /// The type's name.
        ty: &'static str,
        /// Its size.
        size: usize,
        /// Its alignment.
        align: usize,
        /// The longest message there.
        room: usize,
        /// The alignment a message's bytes start at.
        room_align: usize,
    },
}

/// The kinds of end of a publish-subscribe board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Party {
    /// A [`Publisher`](crate::Publisher).
    Publisher,
    /// A [`Subscriber`](crate::Subscriber).
    Subscriber,
    /// A service's [`Server`](crate::Server).
    Server,
    /// A service's [`Client`](crate::Client).
    Client,
}

impl fmt::Display for Party {
    /// `publisher` or `subscriber`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Party::Publisher => "publisher",
            Party::Subscriber => "subscriber",
            Party::Server => "server",
            Party::Client => "client",
        })
    }
}

impl ShmError {
    pub(crate) fn os(op: Op, region: &str, error: io::Error) -> ShmError {
        ShmError::Os { op, region: region.to_owned(), error }
    }
}

/// Why a [`ShmMutex`](crate::ShmMutex) could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another holder kept the lock for the whole timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The mutex's state is lost: an owner died and nobody marked it consistent.
    #[error("the mutex in {region} is unusable: an owner died holding it and it was never marked consistent")]
    NotRecoverable {
        /// The region.
        region: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

/// Why a [`Sender`](crate::Sender) could not reserve room or send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No room now (`try_reserve` and `try_send` only; with many senders,
    /// also while another sender is reserving).
    #[error("the channel is full")]
    Full,
    /// No room within the timeout (`reserve_timeout` and `send_timeout` only).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The message is longer than the channel allows.
    #[error("a message of {len} bytes is longer than this channel's limit of {max} bytes")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The receiver (every receiver, with many) died or closed.
    #[error("the {peer} of {region} is gone (it exited or was killed)")]
    PeerGone {
        /// The region.
        region: String,
        /// The role that is gone: [`Role::Receiver`].
        peer: Role,
    },
    /// The ring holds values the protocol never writes: a peer is buggy or
    /// hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// The senders' lock of a many-to-many channel is lost.
    #[error("the senders' lock of {region} is unusable: it was never marked consistent after its owner died")]
    NotRecoverable {
        /// The region.
        region: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

/// Why a [`Receiver`](crate::Receiver) received nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// No message now (`try_recv` only).
    #[error("the channel is empty")]
    Empty,
    /// No message within the timeout (`recv_timeout` and `recv_into` only).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The buffer is shorter than the next message, which stays queued
    /// (`recv_into` only).
    #[error("the next message is {need} bytes; the buffer holds only {have}")]
    BufferTooSmall {
        /// The message's length.
        need: usize,
        /// The buffer's length.
        have: usize,
    },
    /// The sender (every sender, with many) died or closed, and every
    /// message it committed has been received.
    #[error("the {peer} of {region} is gone (it exited or was killed)")]
    PeerGone {
        /// The region.
        region: String,
        /// The role that is gone: [`Role::Sender`].
        peer: Role,
    },
    /// The ring holds values the protocol never writes: a peer is buggy or
    /// hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// The receivers' lock of a many-to-many channel is lost.
    #[error("the receivers' lock of {region} is unusable: it was never marked consistent after its owner died")]
    NotRecoverable {
        /// The region.
        region: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

/// Why a [`Publisher`](crate::Publisher) could not loan a slot or publish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A backpressure subscriber (or a lose-oldest one holding the oldest
    /// message) is in the way now, or another publisher is publishing
    /// (`try_loan` and `try_publish` only).
    #[error("the ring is full: a subscriber has not moved on")]
    Full,
    /// No room within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The message is longer than a slot.
    #[error("a message of {len} bytes is longer than this board's slots of {max} bytes")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The slot's length.
        max: usize,
    },
    /// The board holds values the protocol never writes: a peer is buggy or
    /// hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// The publishers' lock is lost.
    #[error("the publishers' lock of {region} is unusable: it was never marked consistent after its owner died")]
    NotRecoverable {
        /// The region.
        region: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

/// Why a [`Subscriber`](crate::Subscriber) received nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriberError {
    /// No message now (`try_recv` only).
    #[error("no message is waiting")]
    Empty,
    /// No message within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A lose-oldest subscriber fell behind and the publishers overwrote
    /// this many messages it had not read; the next receive goes on from the
    /// oldest message kept.
    #[error("{missed} messages were overwritten before this subscriber read them")]
    Lagged {
        /// The messages lost.
        missed: u64,
    },
    /// Every publisher that attached is gone (exited, killed or dropped),
    /// and every message published has been received.
    #[error("every publisher of {region} is gone (they exited or were killed)")]
    PublishersGone {
        /// The region.
        region: String,
    },
    /// The board holds values the protocol never writes: a peer is buggy or
    /// hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

/// Why a [`Server`](crate::Server) received no request or could not respond.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No request is waiting (`try_recv` only).
    #[error("no request is waiting")]
    Empty,
    /// No request within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The response is longer than the service allows.
    #[error("a response of {len} bytes is longer than this service's limit of {max} bytes")]
    MessageTooLarge {
        /// The response's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The client that sent the request died or left before its response
    /// reached it.
    #[error("the client in place {place} of {region} is gone (it exited, was killed, or left)")]
    ClientGone {
        /// The region.
        region: String,
        /// The client's place.
        place: u64,
    },
    /// The service holds values the protocol never writes: a peer is buggy
    /// or hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

/// Why a [`Client`](crate::Client)'s call got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No response (or, with a call still out from an earlier timeout, no
    /// room for a new request) within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request is longer than the service allows.
    #[error("a request of {len} bytes is longer than this service's limit of {max} bytes")]
    MessageTooLarge {
        /// The request's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The server died or left; a request it had taken gets no response.
    #[error("the server of {region} is gone (it exited, was killed, or left)")]
    ServerGone {
        /// The region.
        region: String,
    },
    /// The server dropped the request without responding (or a new server
    /// found it taken by a dead one).
    #[error("the server of {region} dropped the request without a response")]
    NoResponse {
        /// The region.
        region: String,
    },
    /// No call is out to wait for (`response_timeout` with no request sent).
    #[error("no request of this client is waiting for a response")]
    NothingSent,
    /// The service holds values the protocol never writes: a peer is buggy
    /// or hostile. Nothing out of bounds was read or written.
    #[error("{region} is corrupt: {what}")]
    Corrupt {
        /// The region.
        region: String,
        /// What was wrong.
        what: String,
    },
    /// The operating system refused.
    #[error("cannot {op} {region}: {error}")]
    Os {
        /// What was being done.
        op: Op,
        /// The region.
        region: String,
        /// The OS error (its message is part of this one's).
        error: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// An OS error, and its message.
    fn enoent() -> (io::Error, String) {
        let error = io::Error::from(io::ErrorKind::NotFound);
        let message = error.to_string();
        (error, message)
    }

    #[test]
    fn an_os_error_carries_its_message_once_and_no_source() {
        let region = "shared memory /x".to_owned();
        let (error, message) = enoent();
        let setup = ShmError::os(Op::Open, &region, error);
        let (error, _) = enoent();
        let lock = LockError::Os { op: Op::Lock, region: region.clone(), error };
        let (error, _) = enoent();
        let send = SendError::Os { op: Op::CheckPeer, region: region.clone(), error };
        let (error, _) = enoent();
        let recv = RecvError::Os { op: Op::Recover, region: region.clone(), error };
        let errors: [&dyn Error; 4] = [&setup, &lock, &send, &recv];
        for err in errors {
            let text = err.to_string();
            assert_eq!(text.matches(&message).count(), 1, "{text}");
            assert!(text.starts_with("cannot ") && text.contains(&region), "{text}");
            assert!(err.source().is_none(), "{text}: the OS error is also its source");
        }
        assert_eq!(setup.to_string(), format!("cannot open shared memory /x: {message}"));
    }
}

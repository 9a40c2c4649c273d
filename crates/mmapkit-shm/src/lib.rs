//! Shared memory between processes, with the synchronization the kernel does
//! not give: a validated header, typed shared state, a mutex that survives its
//! owner's death, and futex events.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use mmapkit_shm::{Event, RegionOptions, Shared};
//! use zerocopy::{FromBytes, KnownLayout};
//!
//! #[derive(FromBytes, KnownLayout)]
//! #[repr(C)]
//! struct Counter {
//!     hits: AtomicU64,
//!     changed: Event,
//! }
//!
//! # fn main() -> mmapkit_shm::Result<()> {
//! let name = format!("mmapkit-doc-{}", std::process::id());
//! // SAFETY: every process touches Counter only through its atomics and event.
//! let mine = unsafe { Shared::<Counter>::create_named(&name, "Counter v1", &RegionOptions::new(), |_| {})? };
//! // Another process would do the same with open_named:
//! // SAFETY: as above.
//! let theirs = unsafe { Shared::<Counter>::open_named(&name, "Counter v1", &RegionOptions::new())? };
//! theirs.hits.fetch_add(1, Ordering::SeqCst);
//! theirs.changed.notify_all(); // after the change a waiter checks for
//! assert_eq!(mine.hits.load(Ordering::SeqCst), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # The pieces
//!
//! - [`Region`]: a shared-memory object (by name, by file path, or an
//!   anonymous one passed over a Unix socket) with a header: magic, format
//!   version, the [`Layout`] of what it holds, the creator's pid, and an init
//!   state that openers wait on. Created `0600` and `O_EXCL`; opening checks
//!   the owner; the creator removes the name on drop. On macOS, whose
//!   shared-memory names are at most 31 bytes, a longer name is given to the
//!   OS as a hash of it (`/mmk.` and 16 hex digits), the same in every
//!   process; an anonymous region there is an unlinked shared-memory object
//!   rather than a sealed memfd, and one received is mapped under the fault
//!   guard.
//! - Life cycle of named regions: the creator's handle and every attached
//!   one hold kernel-dropped locks on the region, so a name left behind by a
//!   creator killed with `SIGKILL` is told apart from one in use
//!   ([`Region::holders`]) and reclaimed by the next creator when nobody is
//!   attached (the rule is [`Holders`]'s; on macOS and FreeBSD the
//!   creator's pid decides). Every kind of end has
//!   `open_or_create_named` ([`Region::open_or_create_named`],
//!   [`Sender::open_or_create_named`], [`Server::open_or_create_named`], and
//!   so on). [`RegionOptions::group`] shares a region with a group (`0660`),
//!   which is refused by default.
//! - [`Shared<T>`]: a `#[repr(C)]` value in a region, `T: zerocopy::FromBytes`
//!   so that no bytes a peer writes can make it invalid.
//! - [`ShmMutex<T>`]: a value behind a robust, process-shared mutex (the C
//!   library's on Linux and FreeBSD, mmapkit's own on macOS); if
//!   the holder dies, the next locker learns it and repairs the value.
//! - [`Event`]: futex wait with timeout and wake one / wake all, with no lost
//!   wake-ups.
//! - [`Sender`] / [`Receiver`]: a bounded ring of variable-size messages,
//!   zero-copy on both ends ([`Sender::reserve`], [`Receiver::recv`]), with
//!   spin, block or spin-then-block waiting, timeouts, and `PeerGone` when the
//!   other end dies ([`SendError::PeerGone`], [`RecvError::PeerGone`]); one of
//!   each, or ([`ChannelOptions::many`]) up to 64 of each.
//!   An end that may sleep makes the process start one thread, named
//!   `mmapkit-shm-watch`, that looks after the peers of sleeping ends, so that
//!   a blocked end sleeps with no timer, and register a `pthread_atfork`
//!   handler so that a forked child knows it has no such thread
//!   ([`ChannelOptions::peer_check`]; [`ChannelOptions::peer_watch`] turns it
//!   off).
//! - [`Publisher`] / [`Subscriber`]: publish-subscribe, every subscriber
//!   receiving every message from one copy in shared memory, zero-copy on
//!   both ends ([`Publisher::loan`], [`Subscriber::recv`]); per subscriber,
//!   backpressure or lose-oldest with [`SubscriberError::Lagged`]; history
//!   for late joiners; a dead subscriber's place is freed and holds nobody
//!   back ([`PubSubOptions`]).
//! - [`Server`] / [`Client`]: request-response, each request getting its
//!   own response, zero-copy both ways ([`Client::loan`],
//!   [`Request::loan_response`]), with timeouts; a dead server or client is
//!   reported to the other side ([`ClientError::ServerGone`],
//!   [`ServerError::ClientGone`]).
//! - Readiness descriptors ([`Subscriber::readiness`],
//!   [`Receiver::readiness`], [`Server::readiness`] for requests arriving,
//!   [`Client::readiness`] for its response): the end's bell, a named FIFO
//!   that is readable while a message waits or the other side is gone, for
//!   epoll, kqueue or mio. The peer process writes it itself (the waiting
//!   end leaves its bell's number in the shared memory while it waits), so
//!   no thread of the waiting process is in between; the process's one
//!   peer watch thread rings it when the peer dies.
//! - [`wait_any`]: one `poll` over the readiness descriptors of several
//!   receivers and subscribers, for a thread that serves many ends without
//!   a runtime.
//! - With the `tokio` feature, `AsyncReceiver` and `AsyncSubscriber`:
//!   `recv().await` (a copy), `recv_with(f).await` (in place) and a
//!   `futures_core::Stream` of copies, built on the readiness descriptor
//!   registered with tokio's reactor: a waiting task sleeps, with no polling
//!   and no thread per end. `AsyncSender`: `reserve(len).await` and
//!   `send(msg).await`, for a task that may find the ring full: it arms its
//!   bell, which the receiver rings as it frees room. Publishers have no
//!   awaitable form: a board's room is freed by every subscriber in turn,
//!   so a publisher on a runtime uses its `try_` forms and, when held back,
//!   the blocking ones in `tokio::task::spawn_blocking`.
//! - [`typed`]: the same boards and channels carrying values of one type,
//!   loaned and received in place as `T` and `&T`, the type checked when an
//!   end attaches; and services of one request type and one response type
//!   (`typed::Client<Req, Resp>`, `typed::Server<Req, Resp>`), both checked.
//!
//! # Errors
//!
//! Each kind of operation has its own error type, holding only what that
//! operation can meet: [`ShmError`] for making and opening regions, shared
//! values, mutexes and channel ends; [`LockError`] for a mutex's lock;
//! [`SendError`] and [`RecvError`] for a channel's two ends. An error from
//! the OS ([`Op`] says what was asked) carries the OS's message in its own
//! one-line message and has no `source()`, so it prints once in a chain.
//!
//! # Soundness
//!
//! Memory another process can write breaks the promises of `&T` unless every
//! process follows the same protocol, so the constructors that hand out
//! references are `unsafe`, with that protocol as their contract. What this
//! crate guarantees even against a peer that breaks it: every length and
//! offset read from shared memory is read once, validated, then used, so a
//! hostile peer can garble its own data but cannot make this process read or
//! write out of bounds or crash.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod bell;
mod channel;
mod clock;
mod error;
mod event;
mod header;
mod inventory;
mod layout;
mod lifecycle;
mod message_type;
mod mutex;
mod peer_watch;
mod pubsub;
mod readiness;
pub(crate) mod region;
mod role;
mod service;
mod shared;
pub mod typed;
mod wait_set;

#[cfg(feature = "tokio")]
pub use channel::AsyncReceiver;
#[cfg(feature = "tokio")]
pub use channel::AsyncSender;
pub use channel::{ChannelOptions, EarlyWake, Message, Receiver, Reservation, Sender, Wait};
pub use error::{
    ClientError, Content, LockError, Op, Party, PublishError, RecvError, Result, SendError, ServerError, ShmError,
    SubscriberError,
};
pub use event::Event;
pub use inventory::{NamedRegion, RegionKind, list_named, remove_if_stale};
pub use layout::Layout;
pub use lifecycle::{ATTACH_PLACES, Holders};
pub use mutex::{ShmGuard, ShmMutex};
#[cfg(feature = "tokio")]
pub use pubsub::AsyncSubscriber;
pub use pubsub::{Loan, Overflow, PubSubOptions, Publisher, Sample, Subscriber};
pub use region::{Region, RegionOptions};
pub use role::Role;
pub use service::{Client, Request, RequestLoan, Response, ResponseLoan, Server, ServiceOptions};
pub use shared::Shared;
pub use wait_set::{Waitable, wait_any};

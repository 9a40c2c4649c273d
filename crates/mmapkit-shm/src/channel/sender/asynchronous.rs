//! [`AsyncSender`]: a [`Sender`] whose wait for room is awaited on a tokio
//! runtime. Its readiness thread (a gated bridge, see `crate::readiness`)
//! is parked until a task finds the ring full; it then sleeps on the ring's
//! room event, which the receiver notifies as it frees room, and makes the
//! descriptor registered with the runtime's reactor readable once the
//! receiver's head has moved (or the receiver is gone). A waiting task
//! costs no polling, and a sender with room costs the receiver nothing.

use std::future::poll_fn;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{Reservation, Sender};
use crate::channel::kind::Kind;
use crate::channel::peer::{PeerSeen, look_at_peer};
use crate::error::{Op, Result, SendError, ShmError};
use crate::readiness::{Bridge, MapPtr, Probe};
use crate::role::Role;

/// A [`Sender`] whose [`reserve`](Self::reserve) and [`send`](Self::send)
/// can be awaited: a task that finds the ring full sleeps until the
/// receiver frees room.
///
/// Made inside a tokio runtime (with its I/O driver enabled). On a
/// many-to-many channel, room that another sender holds is looked at again
/// each peer check (`ChannelOptions::peer_check`), since a sender's commit
/// frees no event that senders wait on.
pub struct AsyncSender {
    /// Dropped first: a clone of the bridge's descriptor.
    fd: AsyncFd<OwnedFd>,
    /// Dropped before the sender: its thread reads the ring's mapping.
    bridge: Bridge,
    inner: Sender,
}

impl AsyncSender {
    /// Wraps `sender`, starting its room-watching thread and registering its
    /// descriptor with the current tokio runtime. From now on the receiver
    /// notifies the ring's room event when it frees room. Fails outside a
    /// runtime.
    pub fn new(sender: Sender) -> Result<AsyncSender> {
        let describe = sender.end.region.describe();
        let bridge = start_bridge(&sender).map_err(|e| ShmError::os(Op::Readiness, &describe, e))?;
        let own = bridge.as_fd().try_clone_to_owned().map_err(|e| ShmError::os(Op::Readiness, &describe, e))?;
        // SAFETY: `own` is an open descriptor that the AsyncFd owns, so it stays open and the same until the AsyncFd
        // is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(own, Interest::READABLE) }
            .map_err(|e| ShmError::os(Op::Readiness, &describe, e.into_parts().1))?;
        Ok(AsyncSender { fd, bridge, inner: sender })
    }

    /// The sender underneath.
    pub fn get_ref(&self) -> &Sender {
        &self.inner
    }

    /// Gives the sender back, stopping the room-watching thread.
    pub fn into_inner(self) -> Sender {
        let AsyncSender { fd, bridge, inner } = self;
        drop(fd);
        drop(bridge);
        inner
    }

    /// Reserves room for a `len`-byte message, waiting for the receiver to
    /// make room; `Err(PeerGone)` if the receiver is gone while the ring is
    /// full, `Err(MessageTooLarge)` at once for a message that can never fit.
    /// The reservation is written in place and committed as with
    /// [`Sender::reserve`].
    pub async fn reserve(&mut self, len: usize) -> Result<Reservation<'_>, SendError> {
        let (padding, offset, locked) = poll_fn(|cx| self.poll_place(cx, len)).await?;
        Ok(self.inner.reservation(len, padding, offset, locked))
    }

    /// Sends a copy of `message`, waiting for room.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        let mut reservation = self.reserve(message.len()).await?;
        reservation.copy_from_slice(message);
        reservation.commit();
        Ok(())
    }

    /// One look for room, or a registration with the reactor to be woken
    /// when the descriptor is readable.
    fn poll_place(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<Result<(usize, usize, bool), SendError>> {
        loop {
            // Clear before looking: room freed after the look makes the
            // descriptor readable again.
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => Some(guard),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(self.os(error))),
                Poll::Pending => None,
            };
            if let Some(guard) = guard.as_mut() {
                if let Err(error) = self.bridge.clear() {
                    return Poll::Ready(Err(self.os(error)));
                }
                guard.clear_ready();
            }
            if let Some(found) = self.inner.try_place(len)? {
                return Poll::Ready(Ok(found));
            }
            // Full: arm the thread with the head as it is now, then look once
            // more. A move of the head before this read is seen by that look,
            // one after it by the thread. A sender with room never reads the
            // receiver's head here.
            self.bridge.arm(self.inner.end.ring().head());
            if let Some(found) = self.inner.try_place(len)? {
                return Poll::Ready(Ok(found));
            }
            if guard.is_none() {
                return Poll::Pending;
            }
        }
    }

    fn os(&self, error: std::io::Error) -> SendError {
        SendError::Os { op: Op::Readiness, region: self.inner.end.region.describe(), error }
    }
}

/// The gated bridge of `sender`: armed with the receiver's head, it signals
/// once the head moves, or the receiver is gone, or (many-to-many) an armed
/// wait lasts a peer check.
fn start_bridge(sender: &Sender) -> std::io::Result<Bridge> {
    let ring = sender.end.ring();
    ring.sender_may_sleep.store(1, Ordering::SeqCst);
    let head = MapPtr(&ring.head.0 as *const AtomicU64);
    let state = MapPtr(&ring.receiver_state as *const AtomicU32);
    let fd = sender.end.region.file().as_raw_fd();
    let kind = sender.end.kind;
    let probe = Probe {
        // SAFETY: the AsyncSender drops the Bridge, whose thread runs this, before the Sender and its mapping.
        pending: Box::new(move || Some(unsafe { head.get() }.load(Ordering::SeqCst))),
        gone: Box::new(move || {
            // SAFETY: the region's descriptor stays open until the Bridge is dropped, as its mapping does.
            let (file, state) = unsafe { (BorrowedFd::borrow_raw(fd), state.get()) };
            !matches!(look_at_peer(file, state, Role::Receiver, kind), Ok(PeerSeen::Here))
        }),
        every: sender.end.peer_check,
    };
    // SAFETY: the event and the words the probe reads are in the ring's mapping, which the AsyncSender's Sender
    // keeps until the AsyncSender has dropped the Bridge.
    unsafe { Bridge::start_gated(&ring.space_ready, probe, kind == Kind::ManyToMany) }
}

impl std::fmt::Debug for AsyncSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSender").field("sender", &self.inner).finish()
    }
}

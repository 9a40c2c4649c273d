//! [`AsyncSender`]: a [`Sender`] whose wait for room is awaited on a tokio
//! runtime. A task that finds the ring full arms the sender's bell (see
//! `crate::readiness`), registered with the runtime's reactor, and looks
//! once more; the receiver rings it when it frees room (and, many-to-many,
//! another sender when it gives back the senders' lock), the peer watch
//! when the receiver is gone. A waiting task costs no polling and no
//! thread, and a sender with room costs the receiver nothing.

use std::future::poll_fn;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{Reservation, Sender};
use crate::channel::peer;
use crate::error::{Op, Result, SendError, ShmError};
use crate::readiness::Readiness;
use crate::role::Role;

/// A [`Sender`] whose [`reserve`](Self::reserve) and [`send`](Self::send)
/// can be awaited: a task that finds the ring full sleeps until the
/// receiver frees room.
///
/// Made inside a tokio runtime (with its I/O driver enabled). Up to eight
/// senders of a many-to-many channel wait for room at once and are rung;
/// more are woken at each of the peer watch's looks
/// (`ChannelOptions::peer_check`).
pub struct AsyncSender {
    /// Dropped first: a clone of the bell's descriptor.
    fd: AsyncFd<OwnedFd>,
    /// Dropped before the sender: it reads the ring's mapping.
    readiness: Readiness,
    inner: Sender,
}

impl AsyncSender {
    /// Wraps `sender`, making its bell and registering it with the current
    /// tokio runtime. From now on the receiver rings the senders' bells when
    /// it frees room. Fails outside a runtime.
    pub fn new(sender: Sender) -> Result<AsyncSender> {
        let describe = sender.end.region.describe();
        let readiness = start_readiness(&sender).map_err(|e| ShmError::os(Op::Readiness, &describe, e))?;
        sender.end.own_bell.store(readiness.id(), Ordering::Relaxed);
        let own = readiness.as_fd().try_clone_to_owned().map_err(|e| ShmError::os(Op::Readiness, &describe, e))?;
        // SAFETY: `own` is an open descriptor that the AsyncFd owns, so it stays open and the same until the AsyncFd
        // is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(own, Interest::READABLE) }
            .map_err(|e| ShmError::os(Op::Readiness, &describe, e.into_parts().1))?;
        Ok(AsyncSender { fd, readiness, inner: sender })
    }

    /// The sender underneath.
    pub fn get_ref(&self) -> &Sender {
        &self.inner
    }

    /// Gives the sender back, without its bell.
    pub fn into_inner(self) -> Sender {
        let AsyncSender { fd, readiness, inner } = self;
        drop(fd);
        drop(readiness);
        inner.end.own_bell.store(0, Ordering::Relaxed);
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
                if let Err(error) = self.readiness.drain() {
                    return Poll::Ready(Err(self.os(error)));
                }
                guard.clear_ready();
            }
            if let Some(found) = self.inner.try_place(len)? {
                return Poll::Ready(Ok(found));
            }
            // Full: arm the bell, then look once more. Room freed before the
            // arming is seen by that look, room freed after it rings the bell.
            // A sender with room never arms.
            if let Err(error) = self.readiness.arm() {
                return Poll::Ready(Err(self.os(error)));
            }
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

/// The bell of `sender`, armed in the senders' slots, which the receiver
/// rings as it frees room; the peer watch rings it when the receiver is gone.
fn start_readiness(sender: &Sender) -> std::io::Result<Readiness> {
    let end = &sender.end;
    end.ring().sender_may_sleep.store(1, Ordering::SeqCst);
    // SAFETY: the bell slots and the region the look reads are the Sender's, which the AsyncSender drops after the
    // Readiness.
    unsafe {
        let here = peer::watch_look(&end.region, &end.ring().receiver_state, Role::Receiver, end.kind);
        Readiness::start(end.bells_of(Role::Sender), Some(here), end.peer_check)
    }
}

impl std::fmt::Debug for AsyncSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSender").field("sender", &self.inner).finish()
    }
}

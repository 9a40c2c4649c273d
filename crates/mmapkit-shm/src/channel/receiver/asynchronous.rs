//! [`AsyncReceiver`]: a [`Receiver`] awaited on a tokio runtime, through its
//! readiness descriptor registered with the runtime's reactor
//! ([`tokio::io::unix::AsyncFd`]). A waiting task costs no polling: it
//! sleeps until the descriptor is readable: the sending process rings the
//! receiver's bell when a message arrives, the peer watch when the sender
//! is gone.

use std::future::poll_fn;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::Receiver;
use crate::error::{Op, RecvError, Result, ShmError};

/// A [`Receiver`] whose receives can be awaited, and a
/// [`Stream`](futures_core::Stream) of copies of its messages.
///
/// Made inside a tokio runtime (with its I/O driver enabled). The message is
/// read in place by [`recv_with`](Self::recv_with), or copied out by
/// [`recv`](Self::recv) and the stream: a borrowed message cannot outlive
/// the await that found it.
pub struct AsyncReceiver {
    inner: Receiver,
    fd: AsyncFd<OwnedFd>,
    /// Whether the stream has yielded its error and ended.
    ended: bool,
}

impl AsyncReceiver {
    /// Wraps `receiver`, starting its readiness descriptor (and thread) if it
    /// had none, and registering the descriptor with the current tokio
    /// runtime. Fails outside a runtime.
    pub fn new(mut receiver: Receiver) -> Result<AsyncReceiver> {
        let describe = receiver.end.region.describe();
        let own = receiver.readiness()?.try_clone_to_owned().map_err(|e| ShmError::os(Op::Readiness, &describe, e))?;
        // SAFETY: `own` is an open descriptor that the AsyncFd owns, so it stays open and the same until the AsyncFd
        // is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(own, Interest::READABLE) }
            .map_err(|e| ShmError::os(Op::Readiness, &describe, e.into_parts().1))?;
        Ok(AsyncReceiver { inner: receiver, fd, ended: false })
    }

    /// The receiver underneath.
    pub fn get_ref(&self) -> &Receiver {
        &self.inner
    }

    /// Gives the receiver back.
    pub fn into_inner(self) -> Receiver {
        self.inner
    }

    /// Waits for the next message and calls `f` on it in place, then frees
    /// its room; `Err(PeerGone)` once the sender is gone and every message
    /// is read.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
        let mut f = Some(f);
        poll_fn(|cx| self.poll_with(cx, &mut f)).await
    }

    /// Waits for the next message and returns a copy of it.
    pub async fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_with(<[u8]>::to_vec).await
    }

    /// One look for a message (calling `f` on it), or a registration with the
    /// reactor to be woken when the descriptor is readable. The bell is armed
    /// only when a look finds nothing, so a sender whose receiver keeps up
    /// rings nothing.
    fn poll_with<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<impl FnOnce(&[u8]) -> R>,
    ) -> Poll<Result<R, RecvError>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => Some(guard),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(self.os(error))),
                Poll::Pending => None,
            };
            if let Some(guard) = guard.as_mut() {
                self.inner.readiness.drain().map_err(|e| self.os(e))?;
                guard.clear_ready();
            }
            if let Some((found, locked)) = self.inner.attempt()? {
                return Poll::Ready(Ok(self.deliver(found, locked, f)));
            }
            // Nothing: arm the bell, then look once more. A message committed
            // before the arming is seen by that look, one after it rings.
            self.inner.readiness.arm().map_err(|e| self.os(e))?;
            if let Some((found, locked)) = self.inner.attempt()? {
                return Poll::Ready(Ok(self.deliver(found, locked, f)));
            }
            // The peer's going rings the bell (the peer watch looks while the
            // bell is armed): look at the peer after a wake-up, or where no
            // watch runs.
            let look = guard.is_some() || !crate::peer_watch::watching_here();
            if look && self.inner.end.peer_gone()? {
                // One last look: a message may have come before the sender went.
                return Poll::Ready(match self.inner.full_attempt()? {
                    Some((found, locked)) => Ok(self.deliver(found, locked, f)),
                    None => Err(self.inner.end.gone().into()),
                });
            }
            if guard.is_none() {
                return Poll::Pending;
            }
        }
    }

    /// Calls `f` on the message found, then frees its room.
    fn deliver<R>(&mut self, found: super::Found, locked: bool, f: &mut Option<impl FnOnce(&[u8]) -> R>) -> R {
        let message = self.inner.message(found, locked);
        let f = f.take().expect("poll_with is not called again once it has returned Ready");
        f(&message)
    }

    fn os(&self, error: std::io::Error) -> RecvError {
        RecvError::Os { op: Op::Readiness, region: self.inner.end.region.describe(), error }
    }
}

impl futures_core::Stream for AsyncReceiver {
    /// A copy of each message, then one `PeerGone` (or other error), then
    /// the end of the stream.
    type Item = Result<Vec<u8>, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let mut f = Some(<[u8]>::to_vec);
        let item = ready!(this.poll_with(cx, &mut f));
        this.ended = item.is_err();
        Poll::Ready(Some(item))
    }
}

impl std::fmt::Debug for AsyncReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncReceiver").field("receiver", &self.inner).finish()
    }
}

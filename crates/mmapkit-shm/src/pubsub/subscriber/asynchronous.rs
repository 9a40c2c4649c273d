//! [`AsyncSubscriber`]: a [`Subscriber`] awaited on a tokio runtime, through
//! its readiness descriptor registered with the runtime's reactor
//! ([`tokio::io::unix::AsyncFd`]), with no polling: a waiting task sleeps
//! until a publisher rings its bell for a message, or the peer watch for
//! the publishers' end.

use std::future::poll_fn;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{Sample, Subscriber};
use crate::error::{Op, Result, ShmError, SubscriberError};

/// A [`Subscriber`] whose receives can be awaited, and a
/// [`Stream`](futures_core::Stream) of copies of its messages.
///
/// Made inside a tokio runtime (with its I/O driver enabled). A message is
/// read in place by [`recv_with`](Self::recv_with), or copied out by
/// [`recv`](Self::recv) and the stream. [`SubscriberError::Lagged`] comes
/// through as an item, as from [`Subscriber::try_recv`]; the stream ends
/// after any other error (`PublishersGone` once every publisher is gone and
/// every message is read).
pub struct AsyncSubscriber {
    inner: Subscriber,
    fd: AsyncFd<OwnedFd>,
    /// Whether the stream has yielded its last error and ended.
    ended: bool,
}

impl AsyncSubscriber {
    /// Wraps `subscriber`, starting its readiness descriptor (and thread) if
    /// it had none, and registering the descriptor with the current tokio
    /// runtime. Fails outside a runtime.
    pub fn new(mut subscriber: Subscriber) -> Result<AsyncSubscriber> {
        let describe = subscriber.board.region.describe();
        let own =
            subscriber.readiness()?.try_clone_to_owned().map_err(|e| ShmError::os(Op::Readiness, &describe, e))?;
        // SAFETY: `own` is an open descriptor that the AsyncFd owns, so it stays open and the same until the AsyncFd
        // is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(own, Interest::READABLE) }
            .map_err(|e| ShmError::os(Op::Readiness, &describe, e.into_parts().1))?;
        Ok(AsyncSubscriber { inner: subscriber, fd, ended: false })
    }

    /// The subscriber underneath.
    pub fn get_ref(&self) -> &Subscriber {
        &self.inner
    }

    /// Gives the subscriber back.
    pub fn into_inner(self) -> Subscriber {
        self.inner
    }

    /// Waits for the next message and calls `f` on it in place (its number
    /// is [`Sample::seq`]), then moves on.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&Sample<'_>) -> R) -> Result<R, SubscriberError> {
        let mut f = Some(f);
        poll_fn(|cx| self.poll_with(cx, &mut f)).await
    }

    /// Waits for the next message and returns its number and a copy of it.
    pub async fn recv(&mut self) -> Result<(u64, Vec<u8>), SubscriberError> {
        self.recv_with(|sample| (sample.seq(), sample.to_vec())).await
    }

    /// One look for a message (calling `f` on it), or a registration with the
    /// reactor to be woken when the descriptor is readable. The bell is armed
    /// only when a look finds nothing, so a publisher whose subscribers keep
    /// up rings nothing.
    fn poll_with<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<impl FnOnce(&Sample<'_>) -> R>,
    ) -> Poll<Result<R, SubscriberError>> {
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
            if let Some(found) = self.inner.attempt()? {
                return Poll::Ready(Ok(self.deliver(found, f)));
            }
            // Nothing: arm the bell, then look once more. A message published
            // before the arming is seen by that look, one after it rings.
            self.inner.readiness.arm().map_err(|e| self.os(e))?;
            if let Some(found) = self.inner.attempt()? {
                return Poll::Ready(Ok(self.deliver(found, f)));
            }
            // The peer's going rings the bell (the peer watch looks while the
            // bell is armed): look at the peer after a wake-up, or where no
            // watch runs.
            let look = guard.is_some() || !crate::peer_watch::watching_here();
            if look && self.inner.gone()? {
                // One last look: a message may have come before the last publisher went.
                return Poll::Ready(match self.inner.attempt()? {
                    Some(found) => Ok(self.deliver(found, f)),
                    None => Err(self.inner.publishers_gone_error()),
                });
            }
            if guard.is_none() {
                return Poll::Pending;
            }
        }
    }

    /// Calls `f` on the message found, then moves on.
    fn deliver<R>(&mut self, found: super::Found, f: &mut Option<impl FnOnce(&Sample<'_>) -> R>) -> R {
        let sample = self.inner.sample(found);
        let f = f.take().expect("poll_with is not called again once it has returned Ready");
        f(&sample)
    }

    fn os(&self, error: std::io::Error) -> SubscriberError {
        SubscriberError::Os { op: Op::Readiness, region: self.inner.board.region.describe(), error }
    }
}

impl futures_core::Stream for AsyncSubscriber {
    /// The number and a copy of each message; `Lagged` where messages were
    /// lost; a last error, then the end of the stream.
    type Item = Result<(u64, Vec<u8>), SubscriberError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let mut f = Some(|sample: &Sample<'_>| (sample.seq(), sample.to_vec()));
        let item = ready!(this.poll_with(cx, &mut f));
        this.ended = matches!(item, Err(ref e) if !matches!(e, SubscriberError::Lagged { .. }));
        Poll::Ready(Some(item))
    }
}

impl std::fmt::Debug for AsyncSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSubscriber").field("subscriber", &self.inner).finish()
    }
}

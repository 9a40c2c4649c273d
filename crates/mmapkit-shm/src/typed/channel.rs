//! [`Sender<T>`] and [`Receiver<T>`]: a channel carrying values of one
//! type, reserved and received in place. A channel's messages start 8-aligned,
//! so `T` may be aligned to at most 8 bytes.

use std::marker::PhantomData;
use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::wrong_length;
use crate::channel::{self as bytes, ChannelOptions};
use crate::error::{RecvError, Result, SendError};
use crate::message_type::MessageType;

fn typed_options<T>(options: &ChannelOptions) -> ChannelOptions {
    let mut options = options.clone();
    options.message_type = MessageType::of::<T>();
    options
}

/// A sender of `T`s: see [`crate::Sender`].
pub struct Sender<T> {
    inner: bytes::Sender,
    _type: PhantomData<fn(T)>,
}

/// A receiver of `T`s: see [`crate::Receiver`].
pub struct Receiver<T> {
    inner: bytes::Receiver,
    _type: PhantomData<fn() -> T>,
}

macro_rules! typed_constructors {
    ($end:ident) => {
        impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> $end<T> {
            /// Creates the channel's named region for `T`s and attaches as this end.
            ///
            /// # Safety
            /// As for [`crate::Sender::create_named`].
            pub unsafe fn create_named(name: &str, options: &ChannelOptions) -> Result<$end<T>> {
                // SAFETY: per the caller.
                let inner = unsafe { bytes::$end::create_named(name, &typed_options::<T>(options)) }?;
                Ok($end { inner, _type: PhantomData })
            }

            /// Opens a channel made for `T`s and attaches as this end; one made
            /// for another type is refused, naming both.
            ///
            /// # Safety
            /// As for [`crate::Sender::create_named`].
            pub unsafe fn open_named(name: &str, options: &ChannelOptions) -> Result<$end<T>> {
                // SAFETY: per the caller.
                let inner = unsafe { bytes::$end::open_named(name, &typed_options::<T>(options)) }?;
                Ok($end { inner, _type: PhantomData })
            }

            /// The byte end underneath.
            pub fn as_bytes(&self) -> &bytes::$end {
                &self.inner
            }
        }

        impl<T> std::fmt::Debug for $end<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("type", &std::any::type_name::<T>())
                    .field("inner", &self.inner)
                    .finish()
            }
        }
    };
}

typed_constructors!(Sender);
typed_constructors!(Receiver);

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> Sender<T> {
    /// Reserves room for one `T` (holding whatever bytes were there),
    /// waiting at most `timeout`.
    pub fn reserve_timeout(&mut self, timeout: Option<Duration>) -> Result<Reserved<'_, T>, SendError> {
        Ok(Reserved { inner: self.inner.reserve_timeout(size_of::<T>(), timeout)?, _type: PhantomData })
    }

    /// Reserves room for one `T`, waiting as long as it takes.
    pub fn reserve(&mut self) -> Result<Reserved<'_, T>, SendError> {
        self.reserve_timeout(None)
    }

    /// Reserves room for one `T` if there is room now.
    pub fn try_reserve(&mut self) -> Result<Reserved<'_, T>, SendError> {
        Ok(Reserved { inner: self.inner.try_reserve(size_of::<T>())?, _type: PhantomData })
    }

    /// Sends a copy of `value` if there is room now.
    pub fn try_send(&mut self, value: &T) -> Result<(), SendError> {
        self.inner.try_send(value.as_bytes())
    }

    /// Sends a copy of `value`, waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, value: &T, timeout: Option<Duration>) -> Result<(), SendError> {
        self.inner.send_timeout(value.as_bytes(), timeout)
    }

    /// Sends a copy of `value`, waiting as long as it takes.
    pub fn send(&mut self, value: &T) -> Result<(), SendError> {
        self.inner.send(value.as_bytes())
    }
}

/// Room for one `T` in the ring; [`commit`](Self::commit) sends it.
pub struct Reserved<'a, T> {
    inner: bytes::Reservation<'a>,
    _type: PhantomData<&'a mut T>,
}

impl<T> Reserved<'_, T> {
    /// Sends the value.
    pub fn commit(self) {
        self.inner.commit();
    }
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::Deref for Reserved<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the reservation is size_of::<T>() bytes 8-aligned in the ring (records start 8-aligned), and the
        // attach checked align_of::<T>() <= 8; T is FromBytes, so any bytes are a valid T; the reserved space is
        // this end's alone until committed.
        unsafe { &*self.inner.as_ptr().cast::<T>() }
    }
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::DerefMut for Reserved<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { &mut *self.inner.as_mut_ptr().cast::<T>() }
    }
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> Receiver<T> {
    /// The next value, waiting at most `timeout`. A message of another
    /// length (which only a byte sender can send) is released and reported
    /// as `Corrupt`.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Received<'_, T>, RecvError> {
        let region = self.inner.region().describe();
        let message = self.inner.recv_timeout(timeout)?;
        checked::<T>(message, region)
    }

    /// The next value, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<Received<'_, T>, RecvError> {
        self.recv_timeout(None)
    }

    /// The next value, if one is waiting.
    pub fn try_recv(&mut self) -> Result<Received<'_, T>, RecvError> {
        let region = self.inner.region().describe();
        let message = self.inner.try_recv()?;
        checked::<T>(message, region)
    }
}

/// A message whose length is checked to be a `T`'s (one of another length,
/// which only a byte sender can send, is released and reported).
fn checked<T>(message: bytes::Message<'_>, region: String) -> Result<Received<'_, T>, RecvError> {
    if message.len() != size_of::<T>() {
        let what = wrong_length::<T>(message.len());
        drop(message);
        return Err(RecvError::Corrupt { region, what });
    }
    Ok(Received { inner: message, _type: PhantomData })
}

/// A value received in place; dropping it gives its room back.
pub struct Received<'a, T> {
    inner: bytes::Message<'a>,
    _type: PhantomData<&'a T>,
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::Deref for Received<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the message is exactly size_of::<T>() bytes (checked at the receive), 8-aligned in the ring, and
        // the attach checked align_of::<T>() <= 8; T is FromBytes and Immutable, and the bytes are not written while
        // lent out (the channel's contract).
        unsafe { &*self.inner.as_ptr().cast::<T>() }
    }
}

impl<T> std::fmt::Debug for Reserved<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reserved").field("type", &std::any::type_name::<T>()).finish()
    }
}

impl<T> std::fmt::Debug for Received<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received").field("type", &std::any::type_name::<T>()).finish()
    }
}

//! [`Publisher<T>`] and [`Subscriber<T>`]: a publish-subscribe board
//! carrying values of one type, loaned and received in place.

use std::marker::PhantomData;
use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::wrong_length;
use crate::error::{PublishError, Result, SubscriberError};
use crate::message_type::MessageType;
use crate::pubsub::{self as bytes, PubSubOptions};

/// A board's slot size for `T` (the options' `max_message` is replaced).
fn typed_options<T>(options: &PubSubOptions) -> PubSubOptions {
    let mut options = options.clone();
    options.max_message(size_of::<T>().max(1));
    options
}

/// A publisher of `T`s: see [`crate::Publisher`].
pub struct Publisher<T> {
    inner: bytes::Publisher,
    _type: PhantomData<fn(T)>,
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> Publisher<T> {
    /// Creates the board's named region for `T`s (each slot holds one; the
    /// options' `max_message` is not used) and attaches as a publisher.
    ///
    /// # Safety
    /// As for [`crate::Publisher::create_named`].
    pub unsafe fn create_named(name: &str, options: &PubSubOptions) -> Result<Publisher<T>> {
        let inner = bytes::Publisher::create_named_as(name, &typed_options::<T>(options), &MessageType::of::<T>())?;
        Ok(Publisher { inner, _type: PhantomData })
    }

    /// Opens a board made for `T`s and attaches as a publisher; a board made
    /// for another type is refused, naming both.
    ///
    /// # Safety
    /// As for [`crate::Publisher::create_named`].
    pub unsafe fn open_named(name: &str, options: &PubSubOptions) -> Result<Publisher<T>> {
        let inner = bytes::Publisher::open_named_as(name, options, &MessageType::of::<T>())?;
        Ok(Publisher { inner, _type: PhantomData })
    }

    /// Loans the next slot as a `T` (holding the bytes the slot last held),
    /// waiting at most `timeout` for room.
    pub fn loan_timeout(&mut self, timeout: Option<Duration>) -> Result<TypedLoan<'_, T>, PublishError> {
        let loan = self.inner.loan_timeout(size_of::<T>(), timeout)?;
        Ok(TypedLoan::new(loan))
    }

    /// Loans the next slot as a `T`, waiting as long as it takes.
    pub fn loan(&mut self) -> Result<TypedLoan<'_, T>, PublishError> {
        self.loan_timeout(None)
    }

    /// Loans the next slot as a `T` if there is room now.
    pub fn try_loan(&mut self) -> Result<TypedLoan<'_, T>, PublishError> {
        Ok(TypedLoan::new(self.inner.try_loan(size_of::<T>())?))
    }

    /// Publishes a copy of `value`, waiting at most `timeout` for room.
    pub fn publish_timeout(&mut self, value: &T, timeout: Option<Duration>) -> Result<(), PublishError> {
        self.inner.publish_timeout(value.as_bytes(), timeout)
    }

    /// Publishes a copy of `value`, waiting as long as it takes.
    pub fn publish(&mut self, value: &T) -> Result<(), PublishError> {
        self.inner.publish(value.as_bytes())
    }

    /// Publishes a copy of `value` if there is room now.
    pub fn try_publish(&mut self, value: &T) -> Result<(), PublishError> {
        self.inner.try_publish(value.as_bytes())
    }

    /// The byte publisher underneath.
    pub fn as_bytes(&self) -> &bytes::Publisher {
        &self.inner
    }
}

impl<T> std::fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("type", &std::any::type_name::<T>()).field("inner", &self.inner).finish()
    }
}

/// A slot lent out as a `T`; [`commit`](Self::commit) publishes it.
pub struct TypedLoan<'a, T> {
    loan: bytes::Loan<'a>,
    _type: PhantomData<&'a mut T>,
}

impl<'a, T: IntoBytes + FromBytes + KnownLayout + Immutable> TypedLoan<'a, T> {
    fn new(mut loan: bytes::Loan<'a>) -> TypedLoan<'a, T> {
        // The board was made or checked for T: slots of at least its size, at 64-aligned addresses.
        debug_assert!(T::mut_from_bytes(&mut loan[..]).is_ok());
        TypedLoan { loan, _type: PhantomData }
    }

    /// Publishes the value to every subscriber.
    pub fn commit(self) {
        self.loan.commit();
    }

    /// The number of the message.
    pub fn seq(&self) -> u64 {
        self.loan.seq()
    }
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::Deref for TypedLoan<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the loan is size_of::<T>() bytes (asked for in the loan) at a 64-aligned slot start, and the
        // attach checked align_of::<T>() <= 64; T is FromBytes, so whatever the slot held is a valid T; the loan's
        // bytes are this end's alone while it lives.
        unsafe { &*self.loan.as_ptr().cast::<T>() }
    }
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::DerefMut for TypedLoan<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above; `&mut self` makes this the only view, and T is IntoBytes, so any T written is bytes.
        unsafe { &mut *self.loan.as_mut_ptr().cast::<T>() }
    }
}

/// A subscriber of `T`s: see [`crate::Subscriber`].
pub struct Subscriber<T> {
    inner: bytes::Subscriber,
    _type: PhantomData<fn() -> T>,
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> Subscriber<T> {
    /// Creates the board's named region for `T`s and attaches as a subscriber.
    ///
    /// # Safety
    /// As for [`crate::Publisher::create_named`].
    pub unsafe fn create_named(name: &str, options: &PubSubOptions) -> Result<Subscriber<T>> {
        let inner = bytes::Subscriber::create_named_as(name, &typed_options::<T>(options), &MessageType::of::<T>())?;
        Ok(Subscriber { inner, _type: PhantomData })
    }

    /// Opens a board made for `T`s and attaches as a subscriber; a board
    /// made for another type is refused, naming both.
    ///
    /// # Safety
    /// As for [`crate::Publisher::create_named`].
    pub unsafe fn open_named(name: &str, options: &PubSubOptions) -> Result<Subscriber<T>> {
        let inner = bytes::Subscriber::open_named_as(name, options, &MessageType::of::<T>())?;
        Ok(Subscriber { inner, _type: PhantomData })
    }

    /// The next value, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<TypedSample<'_, T>, SubscriberError> {
        let region = self.inner.region().describe();
        let sample = self.inner.recv_timeout(timeout)?;
        check_len::<T>(sample, region)
    }

    /// The next value, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<TypedSample<'_, T>, SubscriberError> {
        self.recv_timeout(None)
    }

    /// The next value, if one is waiting.
    pub fn try_recv(&mut self) -> Result<TypedSample<'_, T>, SubscriberError> {
        let region = self.inner.region().describe();
        let sample = self.inner.try_recv()?;
        check_len::<T>(sample, region)
    }

    /// The byte subscriber underneath.
    pub fn as_bytes(&self) -> &bytes::Subscriber {
        &self.inner
    }
}

impl<T> std::fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("type", &std::any::type_name::<T>()).field("inner", &self.inner).finish()
    }
}

/// A sample whose length is checked to be a `T`'s (one of another length,
/// which only a byte publisher can send, is released and reported).
fn check_len<T>(sample: bytes::Sample<'_>, region: String) -> Result<TypedSample<'_, T>, SubscriberError> {
    if sample.len() != size_of::<T>() {
        let what = wrong_length::<T>(sample.len());
        drop(sample);
        return Err(SubscriberError::Corrupt { region, what });
    }
    Ok(TypedSample { sample, _type: PhantomData })
}

/// A value received in place; dropping it moves the subscriber on.
pub struct TypedSample<'a, T> {
    sample: bytes::Sample<'a>,
    _type: PhantomData<&'a T>,
}

impl<T> TypedSample<'_, T> {
    /// The number of the message.
    pub fn seq(&self) -> u64 {
        self.sample.seq()
    }
}

impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::Deref for TypedSample<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the sample is exactly size_of::<T>() bytes (checked in check_len) at a 64-aligned slot start, and
        // the attach checked align_of::<T>() <= 64; T is FromBytes, so the bytes are a valid T, and Immutable, so a
        // `&T` is a view of bytes no publisher writes while the sample lives (the board's contract).
        unsafe { &*self.sample.as_ptr().cast::<T>() }
    }
}

impl<T> std::fmt::Debug for TypedLoan<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedLoan").field("type", &std::any::type_name::<T>()).field("seq", &self.loan.seq()).finish()
    }
}

impl<T> std::fmt::Debug for TypedSample<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSample").field("type", &std::any::type_name::<T>()).field("seq", &self.seq()).finish()
    }
}

//! The receiving end: [`Receiver`] finds the next committed message and
//! lends it out as a [`Message`], which gives its bytes back to the sender
//! when dropped.
//!
//! A one-to-one receiver waits on the sender's tail and reads the record at
//! its head (the quick look), leaving padding and damage to the full look. A
//! many-to-many receiver reads the shared head under the receivers' lock,
//! which its message holds until it is released.

use std::cell::Cell;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::constructors::constructors;
use super::end::End;
use super::failure::Failure;
use super::kind::Kind;
use super::peer;
use super::ring::{KIND_PADDING, Peek, RECORD_HEADER, check_record, peek_record, poll_record, record_size};
use super::side_lock::SideLock;
use crate::bell;
use crate::error::{Op, RecvError, Result, ShmError};
use crate::readiness::{Readiness, ReadinessCell};
use crate::role::Role;

/// The receiving end.
pub struct Receiver {
    /// The readiness descriptor, if asked for (dropped first: it reads the
    /// mapping).
    readiness: ReadinessCell,
    end: End,
    /// Our own copy of the head (only we write it).
    head: Cell<u64>,
    /// The sender's tail as last read (one-to-one channels): records below
    /// it are committed, so the tail's line is read only once the head
    /// catches up with it.
    tail_seen: Cell<u64>,
}

#[cfg(feature = "tokio")]
mod asynchronous;
#[cfg(feature = "tokio")]
pub use asynchronous::AsyncReceiver;

constructors!(Receiver, Role::Receiver);

/// A committed message found in the ring: where its bytes start, how many,
/// and the head once it is released.
struct Found {
    offset: usize,
    len: usize,
    new_head: u64,
}

impl Receiver {
    fn from_end(end: End) -> Receiver {
        let head = end.ring().head();
        Receiver { readiness: ReadinessCell::default(), end, head: Cell::new(head), tail_seen: Cell::new(head) }
    }

    fn next(&self) -> Result<Option<Found>, Failure> {
        next_message(&self.end, &self.head)
    }

    #[inline]
    fn release(&self, new_head: u64) {
        release(&self.end, &self.head, new_head);
    }

    #[inline]
    fn message(&mut self, Found { offset, len, new_head }: Found, locked: bool) -> Message<'_> {
        // SAFETY: offset..offset+len lies inside the data (checked by peek_record or check_record).
        let bytes = unsafe { self.end.data.add(offset) }.cast_const();
        Message { receiver: self, bytes, len, new_head, locked, keep: false }
    }

    /// One look for a message (and whether it holds the receivers' lock). A
    /// one-to-one channel first takes the [quick look](Self::quick_look),
    /// which finds an ordinary message or nothing; the full look handles the
    /// rest.
    #[inline(always)]
    fn attempt(&self) -> Result<Option<(Found, bool)>, Failure> {
        if self.end.kind == Kind::OneToOne
            && let Some(decided) = self.quick_look()
        {
            return Ok(decided.map(|found| (found, false)));
        }
        self.full_attempt()
    }

    /// A one-to-one receiver's look at the record at its head: `Some` with
    /// the message or nothing yet, `None` for what the full look must read
    /// (padding, or a record that fails the checks).
    ///
    /// The quick look waits on the sender's tail, not on the record's header:
    /// the tail's line is written once per message, while the record's lines
    /// are written many times, and a receiver polling them would take them
    /// back from the sender between its writes. The header is still what
    /// counts: a tail that runs ahead of the committed records (which only a
    /// broken peer writes) finds a zero header, which is "nothing yet"; a
    /// tail behind the head (a sender died before publishing a message that
    /// the full look then found) shows nothing new until a sender's tail
    /// passes the head again.
    #[inline(always)]
    fn quick_look(&self) -> Option<Option<Found>> {
        let head = self.head.get();
        if head >= self.tail_seen.get() {
            let tail = self.end.ring().tail();
            if tail <= head {
                return Some(None);
            }
            self.tail_seen.set(tail);
        }
        let offset = (head as usize) & (self.end.capacity - 1);
        // SAFETY: the offset is 8-aligned (every record size is a multiple of 8) and inside the data.
        match unsafe { peek_record(self.end.data, offset, self.end.capacity) } {
            Peek::Message { len } => {
                let new_head = head.wrapping_add(record_size(len) as u64);
                Some(Some(Found { offset: offset + RECORD_HEADER, len, new_head }))
            }
            Peek::Nothing => Some(None),
            Peek::Other => None,
        }
    }

    /// Whether an attempt could find something (the condition a wait sleeps
    /// on): for one receiver, what the quick look checks; for many, the
    /// header at the shared head.
    #[inline(always)]
    fn ready(&self) -> bool {
        match self.end.kind {
            Kind::OneToOne => {
                let head = self.head.get();
                head < self.tail_seen.get() || self.end.ring().tail() > head
            }
            Kind::ManyToMany => {
                let offset = (self.end.ring().head() as usize) & (self.end.capacity - 1);
                // SAFETY: the offset is 8-aligned and inside the data.
                unsafe { poll_record(self.end.data, offset, self.end.capacity) }.is_some()
            }
        }
    }

    /// The full look: padding, damage, and with many receivers, under the
    /// receivers' lock, which stays held (for the Message) only when one is
    /// found. A lock another receiver holds counts as "nothing yet", so waits
    /// keep their timeouts whatever other receivers do.
    #[inline(never)]
    fn full_attempt(&self) -> Result<Option<(Found, bool)>, Failure> {
        let locked = match self.end.take_role_lock(Some(Duration::ZERO))? {
            SideLock::Busy => return Ok(None),
            SideLock::Held { .. } => true,
            SideLock::Unneeded => false,
        };
        if locked {
            self.head.set(self.end.ring().head());
        }
        let found = self.next();
        if locked && !matches!(found, Ok(Some(_))) {
            self.end.give_role_lock();
        }
        Ok(found?.map(|f| (f, locked)))
    }

    /// A descriptor that is readable while a message is waiting, or once
    /// the sender is gone, for a poll loop (epoll, kqueue, mio): the
    /// receiver's bell, a FIFO the sending process writes to itself (no
    /// thread of this process is in between; the process's peer watch tells
    /// of a sender's death). When it is readable, call
    /// [`clear_readiness`](Self::clear_readiness) first, then receive until
    /// `Empty`.
    pub fn readiness(&mut self) -> Result<BorrowedFd<'_>> {
        let end = &self.end;
        self.readiness.fd(|| start_readiness(end))
    }

    /// Drains the [`readiness`](Self::readiness) descriptor and readies it
    /// for the next message (nothing to do when none was asked for).
    pub fn clear_readiness(&self) -> Result<(), RecvError> {
        self.readiness.clear().map_err(|error| self.readiness_error(error))
    }

    fn readiness_error(&self, error: std::io::Error) -> RecvError {
        RecvError::Os { op: Op::Readiness, region: self.end.region.describe(), error }
    }

    /// The next message, if one is waiting.
    pub fn try_recv(&mut self) -> Result<Message<'_>, RecvError> {
        if let Some((found, locked)) = self.attempt()? {
            return Ok(self.message(found, locked));
        }
        if !self.end.peer_gone()? {
            return Err(RecvError::Empty);
        }
        match self.full_attempt()? {
            Some((found, locked)) => Ok(self.message(found, locked)),
            None => Err(self.end.gone().into()),
        }
    }

    /// The next message, waiting at most `timeout` (`None`: as long as it takes).
    #[inline(always)]
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Message<'_>, RecvError> {
        let (found, locked) = self.end.wait_for(
            &self.end.ring().data_ready,
            timeout,
            None,
            || self.ready(),
            || self.attempt(),
            || self.full_attempt(),
        )?;
        Ok(self.message(found, locked))
    }

    /// The next message, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<Message<'_>, RecvError> {
        self.recv_timeout(None)
    }

    /// Copies the next message into `buf` and returns its length; a buffer too
    /// short is an error and the message stays queued.
    pub fn recv_into(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize, RecvError> {
        let message = self.recv_timeout(timeout)?;
        if message.len() > buf.len() {
            let need = message.len();
            message.keep();
            return Err(RecvError::BufferTooSmall { need, have: buf.len() });
        }
        buf[..message.len()].copy_from_slice(&message);
        Ok(message.len())
    }
}

/// The next message's data offset, length and the head after it, if one is
/// committed. Padding is skipped (and released) on the way.
fn next_message(end: &End, head: &Cell<u64>) -> Result<Option<Found>, Failure> {
    loop {
        let offset = (head.get() as usize) & (end.capacity - 1);
        // SAFETY: offset is 8-aligned (every record size is a multiple of 8) and at least 8 bytes of data remain
        // before the end.
        let Some(record) = (unsafe { poll_record(end.data, offset, end.capacity) }) else {
            return Ok(None);
        };
        let size = check_record(record, offset, end.capacity).map_err(|e| end.corrupt(e))?;
        if record.kind == KIND_PADDING {
            release(end, head, head.get().wrapping_add(size as u64));
            continue;
        }
        let new_head = head.get().wrapping_add(size as u64);
        return Ok(Some(Found { offset: offset + RECORD_HEADER, len: record.len, new_head }));
    }
}

/// The receiver's bell, armed in the receivers' slots (the senders ring
/// them), and rung at once if a message is already waiting.
fn start_readiness(end: &End) -> Result<Readiness> {
    let ring = end.ring();
    // From now on every commit rings the receivers' bells.
    ring.receiver_may_sleep.store(1, Ordering::SeqCst);
    // SAFETY: the bell slots and the region the look reads are `end`'s; the Receiver that holds `end` drops the
    // Readiness first.
    let readiness = unsafe {
        let here = peer::watch_look(&end.region, &ring.sender_state, Role::Sender, end.kind);
        Readiness::start(end.bells_of(Role::Receiver), Some(here), end.peer_check)
    };
    let os = |e| ShmError::os(Op::Readiness, &end.region.describe(), e);
    let readiness = readiness.map_err(os)?;
    end.own_bell.store(readiness.id(), Ordering::Relaxed);
    if ring.tail.0.load(Ordering::SeqCst) != ring.head.0.load(Ordering::SeqCst) {
        readiness.ring_here().map_err(os)?;
    }
    Ok(readiness)
}

/// Gives the bytes before `new_head` back to the sender.
#[inline]
fn release(end: &End, head: &Cell<u64>, new_head: u64) {
    head.set(new_head);
    let ring = end.ring();
    ring.head.0.store(new_head, Ordering::Release);
    if ring.sender_may_sleep.load(Ordering::Relaxed) != 0 {
        ring.space_ready.notify_one();
        bell::ring(end.bells_of(Role::Sender));
    }
}

/// A received message, borrowed from the ring; released when dropped.
pub struct Message<'a> {
    receiver: &'a mut Receiver,
    bytes: *const u8,
    len: usize,
    new_head: u64,
    /// Whether this message holds the receivers' lock (many-to-many).
    locked: bool,
    /// Leave it in the ring instead of releasing it.
    keep: bool,
}

impl Message<'_> {
    /// Leaves the message in the ring, to be received again.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: published bytes inside the data, which the sender does not touch until we release them (the
        // channel's contract).
        unsafe { std::slice::from_raw_parts(self.bytes, self.len) }
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.keep {
            let new_head = self.new_head;
            self.receiver.release(new_head);
        }
        if self.locked {
            self.receiver.end.give_role_lock();
        }
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message").field("len", &self.len).finish()
    }
}

//! The sending end: [`Sender`] finds room in the ring and hands it out as a
//! [`Reservation`], which the message is written into and which its
//! [`commit`](Reservation::commit) publishes.
//!
//! A one-to-one sender reserves without a lock, a clock or a read of the
//! receiver's line while the head it last read shows room, and may wake a
//! sleeping receiver early for a large message. A many-to-many sender holds
//! the senders' lock from reserving to committing, and re-reads the
//! positions (which other senders move) each time it takes it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::catch_up::catch_up;
use super::constructors::constructors;
use super::early_wake::{EARLY_WAKE_LEN, WakeCost};
use super::end::End;
use super::failure::Failure;
use super::kind::Kind;
use super::options::EarlyWake;
use super::ring::{
    KIND_MESSAGE, KIND_PADDING, RECORD_HEADER, check_positions, clear_record, commit_record, max_message, record_size,
};
use super::side_lock::SideLock;
use crate::bell;
use crate::error::{Result, SendError};
use crate::role::Role;

/// The sending end.
pub struct Sender {
    end: End,
    /// Our own copy of the tail (only we write it).
    tail: u64,
    /// The head as last read: room we know of without touching the
    /// receiver's cache line.
    head_seen: u64,
    /// How long the wake-up system calls that found the receiver asleep
    /// took (those of messages of at least [`EARLY_WAKE_LEN`] bytes, the
    /// first for each message).
    wake_cost: WakeCost,
}

#[cfg(feature = "tokio")]
mod asynchronous;
#[cfg(feature = "tokio")]
pub use asynchronous::AsyncSender;

constructors!(Sender, Role::Sender);

impl Sender {
    fn from_end(end: End) -> Sender {
        let head_seen = end.ring().head();
        let mut tail = end.ring().tail();
        if end.kind == Kind::OneToOne {
            // The only sender (the liveness byte says so) may publish.
            tail = catch_up(&end, head_seen, tail);
        }
        Sender { end, tail, head_seen, wake_cost: WakeCost::default() }
    }

    /// Where a record of `size` bytes goes, if there is room now: (padding
    /// before it, data offset of the record). Reads the receiver's head only
    /// when the last value read shows too little room.
    fn room(&mut self, size: usize) -> Result<Option<(usize, usize)>, Failure> {
        let found = fits(&self.end, self.head_seen, self.tail, size)?;
        if found.is_some() {
            return Ok(found);
        }
        self.head_seen = self.end.ring().head();
        fits(&self.end, self.head_seen, self.tail, size)
    }

    /// Re-reads the positions, which other senders may have moved; after a
    /// sender died holding the lock, past what it may have committed without
    /// publishing.
    fn refresh(&mut self, after_death: bool) {
        self.head_seen = self.end.ring().head();
        let tail = self.end.ring().tail();
        // Under the senders' lock, which the dead sender held.
        self.tail = if after_death { catch_up(&self.end, self.head_seen, tail) } else { tail };
    }

    #[inline]
    fn reservation(&mut self, len: usize, padding: usize, offset: usize, locked: bool) -> Reservation<'_> {
        let size = record_size(len);
        let padding_record = (padding > 0).then(|| {
            let at = (self.tail as usize) & (self.end.capacity - 1);
            // `at..at+padding` is free space at the data's end (checked by `fits`).
            (self.end.data.wrapping_add(at), padding - RECORD_HEADER)
        });
        let new_tail = self.tail.wrapping_add((padding + size) as u64);
        let woke_early = len >= EARLY_WAKE_LEN
            && self.end.kind == Kind::OneToOne
            && self.wake_cost.wakes_early(self.end.early_wake)
            && self.end.ring().receiver_may_sleep.load(Ordering::Relaxed) != 0
            && self.wake_timing();
        // SAFETY: `offset..offset+size` is free space inside the data.
        let record = unsafe { self.end.data.add(offset) };
        Reservation {
            bytes: record.wrapping_add(RECORD_HEADER),
            len,
            record,
            padding: padding_record,
            new_tail,
            locked,
            woke_early,
            sender: self,
        }
    }

    /// Wakes the receiver for a message of [`EARLY_WAKE_LEN`] bytes or
    /// more on a one-to-one channel; under [`EarlyWake::WhenWakingIsSlow`]
    /// times the system call and counts it. Whether a timed one woke a sleeper.
    fn wake_timing(&mut self) -> bool {
        let event = &self.end.ring().data_ready;
        if self.end.early_wake != EarlyWake::WhenWakingIsSlow {
            event.notify_one();
            return false;
        }
        let took = event.notify_one_timed();
        if let Some(took) = took {
            self.wake_cost.note(took);
        }
        took.is_some()
    }

    fn check_len(&self, len: usize) -> Result<(), SendError> {
        let max = self.max_message();
        if len > max { Err(SendError::MessageTooLarge { len, max }) } else { Ok(()) }
    }

    /// Reserves room for a `len`-byte message if there is room now (and, with
    /// many senders, no other sender is reserving: that is `Full` too).
    pub fn try_reserve(&mut self, len: usize) -> Result<Reservation<'_>, SendError> {
        match self.try_place(len)? {
            Some((padding, offset, locked)) => Ok(self.reservation(len, padding, offset, locked)),
            None => Err(SendError::Full),
        }
    }

    /// [`try_reserve`](Self::try_reserve) short of the reservation: where
    /// the record goes (padding, data offset, whether the senders' lock is
    /// held for it), or `None` when full.
    fn try_place(&mut self, len: usize) -> Result<Option<(usize, usize, bool)>, SendError> {
        self.check_len(len)?;
        let locked = match self.end.take_role_lock(Some(Duration::ZERO))? {
            SideLock::Busy => return Ok(None),
            SideLock::Held { after_death } => {
                self.refresh(after_death);
                true
            }
            SideLock::Unneeded => false,
        };
        let found = self.room(record_size(len));
        if let Ok(Some((padding, offset))) = found {
            return Ok(Some((padding, offset, locked)));
        }
        if locked {
            self.end.give_role_lock();
        }
        found?;
        if self.end.peer_gone()? { Err(self.end.gone().into()) } else { Ok(None) }
    }

    /// Reserves room for a `len`-byte message, waiting for the receiver to
    /// make room (up to `timeout`, if given).
    ///
    /// A receiver that may sleep ([`Wait::Block`] or [`Wait::SpinThenBlock`])
    /// is woken by the [`commit`](Reservation::commit); on a one-to-one
    /// channel, a message of 4 KiB or more may also wake it once the room is
    /// found, so that its wake-up starts while the message is written (see
    /// [`ChannelOptions::early_wake`]).
    ///
    /// [`Wait::Block`]: crate::Wait::Block
    /// [`Wait::SpinThenBlock`]: crate::Wait::SpinThenBlock
    /// [`ChannelOptions::early_wake`]: crate::ChannelOptions::early_wake
    #[inline(always)]
    pub fn reserve_timeout(&mut self, len: usize, timeout: Option<Duration>) -> Result<Reservation<'_>, SendError> {
        // The quick way, for one sender with room by the head last read: no
        // lock, no clock, no shared line read.
        if self.end.kind == Kind::OneToOne && len <= max_message(self.end.capacity) {
            let size = record_size(len);
            if let Ok(Some((padding, offset))) = place(self.head_seen, self.tail, size, self.end.capacity) {
                return Ok(self.reservation(len, padding, offset, false));
            }
        }
        self.reserve_waiting(len, timeout)
    }

    /// [`reserve_timeout`](Self::reserve_timeout) the long way: the lock of
    /// many senders, and waiting for room.
    #[inline(never)]
    fn reserve_waiting(&mut self, len: usize, timeout: Option<Duration>) -> Result<Reservation<'_>, SendError> {
        self.check_len(len)?;
        // The peer's liveness is checked only when there is no room: while
        // there is, sending costs no system call. With many senders, the
        // senders' lock is held from here to the commit.
        // The clock starts before the lock (which the timeout covers too) only
        // where there is one; else at the first wait, so that a send with room
        // reads no clock.
        let since = (self.end.kind == Kind::ManyToMany).then(Instant::now);
        let locked = match self.end.take_role_lock(timeout)? {
            SideLock::Busy => return Err(SendError::Timeout(timeout.unwrap_or_default())),
            SideLock::Held { after_death } => {
                self.refresh(after_death);
                true
            }
            SideLock::Unneeded => false,
        };
        let size = record_size(len);
        let Sender { end, tail, head_seen, .. } = self;
        let ready = || fits(end, end.ring().head(), *tail, size).map_or(true, |r| r.is_some());
        let attempt = || {
            // The receiver's head is read only when the last value read shows
            // too little room: it sits on a line the receiver writes.
            if let Some(found) = fits(end, *head_seen, *tail, size)? {
                return Ok(Some(found));
            }
            *head_seen = end.ring().head();
            fits(end, *head_seen, *tail, size)
        };
        let last_look = || fits(end, end.ring().head(), *tail, size);
        let found = end.wait_for(&end.ring().space_ready, timeout, since, ready, attempt, last_look);
        match found {
            Ok((padding, offset)) => Ok(self.reservation(len, padding, offset, locked)),
            Err(e) => {
                if locked {
                    self.end.give_role_lock();
                }
                Err(e.into())
            }
        }
    }

    /// Reserves room for a `len`-byte message, waiting as long as it takes.
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_>, SendError> {
        self.reserve_timeout(len, None)
    }

    /// Sends a copy of `message`, waiting for room.
    pub fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        self.send_timeout(message, None)
    }

    /// Sends a copy of `message`, waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, message: &[u8], timeout: Option<Duration>) -> Result<(), SendError> {
        let mut slot = self.reserve_timeout(message.len(), timeout)?;
        slot.copy_from_slice(message);
        slot.commit();
        Ok(())
    }

    /// Sends a copy of `message` if there is room now.
    pub fn try_send(&mut self, message: &[u8]) -> Result<(), SendError> {
        let mut slot = self.try_reserve(message.len())?;
        slot.copy_from_slice(message);
        slot.commit();
        Ok(())
    }
}

/// Room for one message, in the ring; [`commit`](Self::commit) publishes it,
/// dropping it does not.
pub struct Reservation<'a> {
    sender: &'a mut Sender,
    bytes: *mut u8,
    len: usize,
    record: *mut u8,
    /// Where a padding record goes before this one, and its length.
    padding: Option<(*mut u8, usize)>,
    new_tail: u64,
    /// Whether this reservation holds the senders' lock (many-to-many).
    locked: bool,
    /// Whether reserving it woke the receiver with a timed wake-up (see
    /// [`EARLY_WAKE_LEN`]); the commit's is then not timed.
    woke_early: bool,
}

impl Reservation<'_> {
    /// Publishes the message to the receiver.
    #[inline]
    pub fn commit(self) {
        let end = &self.sender.end;
        let next = (self.new_tail as usize) & (end.capacity - 1);
        // SAFETY: every word written here is free or reserved space: the header word after this record lies in
        // free space (`fits` keeps one word spare) that the receiver reaches only through this commit, and the
        // record itself is reserved, unpublished space. The message's commit precedes the padding's, so the
        // receiver, arriving at offset 0 through the padding, finds this message, never a stale header from the
        // previous lap.
        unsafe {
            clear_record(end.data.add(next));
            commit_record(self.record, self.len, KIND_MESSAGE);
            if let Some((at, len)) = self.padding {
                commit_record(at, len, KIND_PADDING);
            }
        }
        let ring = end.ring();
        ring.tail.0.store(self.new_tail, Ordering::Release);
        self.sender.tail = self.new_tail;
        if ring.receiver_may_sleep.load(Ordering::Relaxed) != 0 {
            if self.len < EARLY_WAKE_LEN || self.woke_early || end.kind == Kind::ManyToMany {
                ring.data_ready.notify_one();
            } else {
                self.sender.wake_timing();
            }
            bell::ring(self.sender.end.bells_of(Role::Receiver));
        }
        // Dropping `self` gives back the senders' lock, if held.
    }
}

impl Drop for Reservation<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.locked {
            self.sender.end.give_role_lock();
        }
    }
}

impl std::ops::Deref for Reservation<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes of reserved space, which the receiver does not touch until they are published (the
        // channel's contract).
        unsafe { std::slice::from_raw_parts(self.bytes, self.len) }
    }
}

impl std::ops::DerefMut for Reservation<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.bytes, self.len) }
    }
}

impl std::fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("len", &self.len).finish()
    }
}

/// Where a record of `size` bytes fits with the receiver's head at `head`,
/// keeping one header word free for the next record's zeroed header.
fn fits(end: &End, head: u64, tail: u64, size: usize) -> Result<Option<(usize, usize)>, Failure> {
    place(head, tail, size, end.capacity).map_err(|e| end.corrupt(e))
}

/// [`fits`] without the region's name for the error: (padding before the
/// record, data offset of the record) if there is room.
#[inline(always)]
fn place(head: u64, tail: u64, size: usize, capacity: usize) -> Result<Option<(usize, usize)>, String> {
    let used = check_positions(head, tail, capacity)?;
    let free = capacity - used;
    let offset = (tail as usize) & (capacity - 1);
    let to_end = capacity - offset;
    let padding = if size <= to_end { 0 } else { to_end };
    Ok((padding + size + RECORD_HEADER <= free).then_some((padding, (offset + padding) & (capacity - 1))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::options::{ChannelOptions, Wait};

    /// Whether reserving a 4 KiB message notifies a receiver counted as
    /// asleep, for a sender under `policy` that has seen eight wake-ups
    /// taking `seen` each (or none).
    fn reserving_notifies(policy: EarlyWake, seen: Option<Duration>) -> bool {
        let mut options = ChannelOptions::new();
        options.capacity(1 << 16).wait(Wait::Block).early_wake(policy);
        // SAFETY: the channel is this test's alone, made and dropped here.
        let mut tx = unsafe { Sender::create_memfd(&options) }.unwrap();
        for took in std::iter::repeat_n(seen, 8).flatten() {
            tx.wake_cost.note(took);
        }
        let ring = tx.end.ring();
        ring.receiver_may_sleep.store(1, Ordering::SeqCst);
        ring.data_ready.pretend_a_waiter();
        let before = ring.data_ready.seq();
        let reservation = tx.reserve(4096).unwrap();
        reservation.sender.end.ring().data_ready.seq() != before
    }

    #[test]
    fn a_sender_wakes_early_after_slow_wake_ups_or_when_told() {
        let (fast, slow) = (Some(Duration::from_micros(1)), Some(Duration::from_micros(7)));
        assert!(!reserving_notifies(EarlyWake::WhenWakingIsSlow, None));
        assert!(!reserving_notifies(EarlyWake::WhenWakingIsSlow, fast));
        assert!(reserving_notifies(EarlyWake::WhenWakingIsSlow, slow));
        assert!(reserving_notifies(EarlyWake::Always, None));
        assert!(!reserving_notifies(EarlyWake::Never, slow));
    }
}

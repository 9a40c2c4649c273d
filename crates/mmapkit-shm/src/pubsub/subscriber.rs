//! The subscribing end: [`Subscriber`] takes a place on the board, starts
//! from the tail (or the history it asked for), and lends each message out
//! as a [`Sample`] that borrows the slot in place; dropping the sample moves
//! its cursor on.

use std::cell::Cell;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::board::{Board, publishers_gone};
use super::layout::{BUSY, ENTRY_ATTACHED, ENTRY_FREE, OVERFLOW_BACKPRESSURE, OVERFLOW_LOSE_OLDEST};
use super::options::{Overflow, PubSubOptions};
use crate::channel::Wait;
use crate::error::{Op, Party, Result, ShmError, SubscriberError};
use crate::message_type::MessageType;
use crate::readiness::{MapPtr, Readiness, ReadinessCell};
use crate::region::Region;

/// A subscribing end of a board: it receives every message published after
/// it attached (and the history it asked for), in order, unless it is
/// [`Overflow::LoseOldest`] and falls a ring behind.
pub struct Subscriber {
    /// The readiness descriptor, if asked for (dropped first: it reads the
    /// mapping).
    readiness: ReadinessCell,
    board: Board,
    /// The number of the next message this subscriber reads (its cursor, as
    /// only it and, for a lose-oldest one, a publisher moving it on write it).
    next: Cell<u64>,
}

#[cfg(feature = "tokio")]
mod asynchronous;
#[cfg(feature = "tokio")]
pub use asynchronous::AsyncSubscriber;

/// A message found at the cursor: where its bytes are and how many.
struct Found {
    data: *const u8,
    len: usize,
}

impl Subscriber {
    pub(super) fn from_region(region: Region, options: &PubSubOptions, ty: &MessageType) -> Result<Subscriber> {
        let board = Board::attach(region, options, Party::Subscriber, ty)?;
        let capacity = board.geometry.capacity();
        if options.history > capacity {
            return Err(ShmError::HistoryTooLong { region: board.region.describe(), asked: options.history, capacity });
        }
        let header = board.header();
        if board.wait != Wait::Spin {
            header.subscribers_may_sleep.store(1, Ordering::SeqCst);
        }
        let entry = board.entry(board.place);
        let policy = match options.overflow {
            Overflow::Backpressure => OVERFLOW_BACKPRESSURE,
            Overflow::LoseOldest => OVERFLOW_LOSE_OLDEST,
        };
        entry.overflow.store(policy, Ordering::SeqCst);
        entry.pid.store(mmapkit_sys::process::pid(), Ordering::Relaxed);
        // Attach at the tail, where nothing can be in any publisher's way,
        // step back over the history, and only then count the join: a
        // publisher that looked at the cursors before the cursor stepped back
        // and kept what it saw would otherwise overwrite the history under
        // the reader. Publishers that have not seen the join yet go on
        // without looking, up to and including the message at the tail read
        // after the join (it may be in flight): history older than
        // `tail - capacity` then is gone or going, and the cursor moves up to
        // there. Every later message's publisher sees the join and looks at
        // the cursor; one that finds it still lower (more than a ring behind)
        // takes it as in its way until it is raised, and is woken then.
        let tail = header.tail();
        entry.cursor.store(tail, Ordering::SeqCst);
        let state = entry.state.load(Ordering::SeqCst);
        entry.state.store((state & !0xff).wrapping_add(0x100) | ENTRY_ATTACHED, Ordering::SeqCst);
        let start = header.tail().saturating_sub(options.history);
        let _ = entry.cursor.compare_exchange(tail, start, Ordering::SeqCst, Ordering::SeqCst);
        header.joins.fetch_add(1, Ordering::SeqCst);
        let floor = header.tail().saturating_sub(capacity);
        let mut cursor = entry.cursor.load(Ordering::SeqCst);
        while cursor & !BUSY < floor {
            match entry.cursor.compare_exchange(cursor, floor, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    if header.publishers_may_sleep.load(Ordering::SeqCst) != 0 {
                        header.space_ready.notify_all();
                    }
                    break;
                }
                Err(now) => cursor = now,
            }
        }
        let next = entry.cursor.load(Ordering::SeqCst) & !BUSY;
        Ok(Subscriber { readiness: ReadinessCell::default(), board, next: Cell::new(next) })
    }

    /// Creates the board's named region (`0600`, `O_EXCL`) and attaches as a subscriber.
    ///
    /// # Safety
    /// As for [`Publisher::create_named`](crate::Publisher::create_named).
    pub unsafe fn create_named(name: &str, options: &PubSubOptions) -> Result<Subscriber> {
        Subscriber::create_named_as(name, options, &MessageType::Bytes)
    }

    pub(crate) fn create_named_as(name: &str, options: &PubSubOptions, ty: &MessageType) -> Result<Subscriber> {
        let region = Board::create(
            |layout, len, init| Region::create_named(name, layout, len, &options.region, init),
            options,
            ty,
        )?;
        Subscriber::from_region(region, options, ty)
    }

    /// Opens the board's named region and attaches as a subscriber.
    ///
    /// # Safety
    /// As for [`Publisher::create_named`](crate::Publisher::create_named).
    pub unsafe fn open_named(name: &str, options: &PubSubOptions) -> Result<Subscriber> {
        Subscriber::open_named_as(name, options, &MessageType::Bytes)
    }

    /// Opens the named region if it exists, or creates it (reclaiming a stale
    /// name, as [`Region::create_named`] says), and attaches;
    /// `region().created()` tells which.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_or_create_named(name: &str, options: &PubSubOptions) -> Result<Subscriber> {
        crate::region::open_or_create(
            &options.region,
            // SAFETY: this function's contract is theirs.
            || unsafe { Subscriber::create_named(name, options) },
            // SAFETY: as above.
            || unsafe { Subscriber::open_named(name, options) },
        )
    }

    pub(crate) fn open_named_as(name: &str, options: &PubSubOptions, ty: &MessageType) -> Result<Subscriber> {
        let region = Region::open_named(name, super::board::layout(), &options.region)?;
        Subscriber::from_region(region, options, ty)
    }

    /// This subscriber's place on the board (0 to the number of places less one).
    pub fn place(&self) -> u64 {
        self.board.place
    }

    /// The number of the next message it will receive.
    pub fn next_seq(&self) -> u64 {
        self.next.get()
    }

    /// The longest message a slot holds.
    pub fn max_message(&self) -> usize {
        self.board.geometry.slot_size
    }

    /// The region underneath.
    pub fn region(&self) -> &Region {
        &self.board.region
    }

    /// A descriptor that is readable while a message this subscriber has not
    /// seen is waiting, or once every publisher is gone, for a poll loop
    /// (epoll, kqueue, mio): the subscriber's bell, a FIFO that publishing
    /// processes write to themselves (no thread of this process is in
    /// between; the process's peer watch tells of the publishers' going).
    /// When it is readable, call [`clear_readiness`](Self::clear_readiness)
    /// first, then receive until `Empty`.
    pub fn readiness(&mut self) -> Result<BorrowedFd<'_>> {
        let board = &self.board;
        self.readiness.fd(|| start_readiness(board))
    }

    /// Drains the [`readiness`](Self::readiness) descriptor and readies it
    /// for the next message (nothing to do when none was asked for).
    pub fn clear_readiness(&self) -> Result<(), SubscriberError> {
        self.readiness.clear().map_err(|error| SubscriberError::Os {
            op: Op::Readiness,
            region: self.board.region.describe(),
            error,
        })
    }

    fn corrupt(&self, what: String) -> SubscriberError {
        SubscriberError::Corrupt { region: self.board.region.describe(), what }
    }

    /// One look for the message at the cursor; marks the cursor busy when
    /// one is found.
    fn attempt(&self) -> Result<Option<Found>, SubscriberError> {
        let cursor = self.board.cursor();
        loop {
            let next = self.next.get();
            let seen = cursor.load(Ordering::Acquire);
            if seen == next | BUSY {
                // A sample of ours that was forgotten rather than dropped:
                // it was never released, so it comes again.
                let _ = cursor.compare_exchange(seen, next, Ordering::AcqRel, Ordering::Acquire);
                continue;
            }
            if seen != next {
                // A publisher moves a cursor on, never past the tail.
                let missed = seen.wrapping_sub(next);
                let tail = self.board.header().tail();
                if seen & BUSY != 0 || missed > tail.wrapping_sub(next) {
                    return Err(self.corrupt(format!(
                        "the cursor of subscriber {} holds {seen}, not the {next} it left there nor a later one up to \
                         the tail {tail}",
                        self.board.place
                    )));
                }
                self.next.set(seen);
                return Err(SubscriberError::Lagged { missed });
            }
            let tail = self.board.header().tail();
            let ahead = tail.wrapping_sub(next);
            if ahead == 0 {
                return Ok(None);
            }
            if ahead > self.board.geometry.slots {
                // A lose-oldest publisher moves the cursor on before it
                // publishes past it: a cursor moved since the first look is
                // that, not a corrupt tail.
                if cursor.load(Ordering::Acquire) != next {
                    continue;
                }
                return Err(self.corrupt(format!(
                    "the tail {tail} is more than a ring ahead of subscriber {}'s cursor {}",
                    self.board.place, next
                )));
            }
            if cursor.compare_exchange(next, next | BUSY, Ordering::AcqRel, Ordering::Acquire).is_err() {
                // A publisher moved it on: look again.
                continue;
            }
            let (slot, data) = self.board.slot(next);
            let seq = slot.seq.load(Ordering::Acquire);
            let len = slot.len.load(Ordering::Acquire);
            if seq != next.wrapping_add(1) || len > self.board.geometry.slot_size as u64 {
                cursor.store(next, Ordering::Release);
                return Err(self.corrupt(format!(
                    "the slot of message {} holds message {} of {len} bytes (slots hold {})",
                    next,
                    seq.wrapping_sub(1),
                    self.board.geometry.slot_size
                )));
            }
            return Ok(Some(Found { data: data.cast_const(), len: len as usize }));
        }
    }

    fn gone(&self) -> Result<bool, SubscriberError> {
        self.board.publishers_gone().map_err(|error| SubscriberError::Os {
            op: Op::CheckPeer,
            region: self.board.region.describe(),
            error,
        })
    }

    fn publishers_gone_error(&self) -> SubscriberError {
        SubscriberError::PublishersGone { region: self.board.region.describe() }
    }

    /// The next message, if one is waiting.
    pub fn try_recv(&mut self) -> Result<Sample<'_>, SubscriberError> {
        if let Some(found) = self.attempt()? {
            return Ok(self.sample(found));
        }
        if self.gone()? {
            // One last look: a message may have come before the last publisher went.
            return match self.attempt()? {
                Some(found) => Ok(self.sample(found)),
                None => Err(self.publishers_gone_error()),
            };
        }
        Err(SubscriberError::Empty)
    }

    /// The next message, waiting at most `timeout` (`None`: as long as it
    /// takes, or until every publisher is gone).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Sample<'_>, SubscriberError> {
        let found = self.board.wait_for(
            &self.board.header().data_ready,
            timeout,
            || {
                let next = self.next.get();
                self.board.header().tail() != next || self.board.cursor().load(Ordering::Acquire) != next
            },
            |look| {
                if let Some(found) = self.attempt()? {
                    return Ok(Some(found));
                }
                if look && self.gone()? {
                    return match self.attempt()? {
                        Some(found) => Ok(Some(found)),
                        None => Err(self.publishers_gone_error()),
                    };
                }
                Ok(None)
            },
            SubscriberError::Timeout,
        )?;
        Ok(self.sample(found))
    }

    /// The next message, waiting as long as it takes (or until every
    /// publisher is gone).
    pub fn recv(&mut self) -> Result<Sample<'_>, SubscriberError> {
        self.recv_timeout(None)
    }

    fn sample(&mut self, Found { data, len }: Found) -> Sample<'_> {
        Sample { subscriber: self, data, len }
    }
}

/// The subscriber's bell, armed in its entry (publishers ring it), and rung
/// at once if a message it has not seen is already waiting.
fn start_readiness(board: &Board) -> Result<Readiness> {
    let header = board.header();
    // From now on every message rings the armed bells.
    header.subscribers_may_sleep.store(1, Ordering::SeqCst);
    header.subscriber_bells.store(1, Ordering::SeqCst);
    let seen = MapPtr(&header.publishers_seen as *const AtomicU32);
    let fd = board.file().as_raw_fd();
    let here = Box::new(move || {
        // SAFETY: the region's descriptor stays open, and its mapping alive, until the Readiness is dropped.
        let (file, seen) = unsafe { (BorrowedFd::borrow_raw(fd), seen.get()) };
        !publishers_gone(file, seen).unwrap_or(true)
    });
    let slot = std::slice::from_ref(&board.entry(board.place).bell);
    // SAFETY: the bell slot and the word the look reads are in the board's mapping, which the Subscriber that
    // holds `board` keeps until it has dropped the Readiness.
    let readiness = unsafe { Readiness::start(slot, Some(here), board.peer_check) };
    let os = |e| ShmError::os(Op::Readiness, &board.region.describe(), e);
    let readiness = readiness.map_err(os)?;
    if header.tail() != board.cursor().load(Ordering::SeqCst) & !BUSY {
        readiness.ring_here().map_err(os)?;
    }
    Ok(readiness)
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.readiness.close();
        let entry = self.board.entry(self.board.place);
        let state = entry.state.load(Ordering::SeqCst);
        entry.state.store((state & !0xff) | ENTRY_FREE, Ordering::SeqCst);
        let header = self.board.header();
        if header.publishers_may_sleep.load(Ordering::Relaxed) != 0 {
            header.space_ready.notify_all();
        }
        // The liveness byte is released when the region's descriptor closes.
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("region", &self.board.region.describe())
            .field("place", &self.board.place)
            .field("next", &self.next.get())
            .finish()
    }
}

/// A message lent out of its slot; dropping it moves the subscriber on.
pub struct Sample<'a> {
    subscriber: &'a mut Subscriber,
    data: *const u8,
    len: usize,
}

impl Sample<'_> {
    /// The number of the message (counted from 0 since the board was made).
    pub fn seq(&self) -> u64 {
        self.subscriber.next.get()
    }
}

impl std::ops::Deref for Sample<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes (checked against the slot's size) of a published slot that no publisher overwrites
        // while this subscriber's cursor is busy at it (the board's contract).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl Drop for Sample<'_> {
    fn drop(&mut self) {
        let subscriber = &*self.subscriber;
        let next = subscriber.next.get().wrapping_add(1);
        subscriber.next.set(next);
        subscriber.board.cursor().store(next, Ordering::Release);
        let header = subscriber.board.header();
        if header.publishers_may_sleep.load(Ordering::Relaxed) != 0 {
            header.space_ready.notify_all();
        }
    }
}

impl std::fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample").field("seq", &self.seq()).field("len", &self.len).finish()
    }
}

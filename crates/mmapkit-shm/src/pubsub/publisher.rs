//! The publishing end: [`Publisher`] takes the publishers' lock, makes room
//! for the next message (waiting for backpressure subscribers, moving
//! lose-oldest ones on, freeing the places of dead ones) and lends its slot
//! out as a [`Loan`], whose [`commit`](Loan::commit) publishes it to every
//! subscriber at once.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mmapkit_sys::robust_mutex::LockOutcome;

use super::board::Board;
use super::layout::{BUSY, ENTRY_ATTACHED, ENTRY_FREE, OVERFLOW_LOSE_OLDEST, Standing, standing};
use super::options::PubSubOptions;
use crate::bell;
use crate::channel::Wait;
use crate::error::{Op, Party, PublishError, Result};
use crate::message_type::MessageType;
use crate::region::Region;

/// A publishing end of a board. Any number of publishers (up to 64 at once)
/// may publish; each message goes to every attached subscriber.
pub struct Publisher {
    board: Board,
    /// The lowest cursor the last full look found (or the message it was
    /// for, with none attached), and the board's join count then: until a
    /// message would overwrite that cursor's, or someone joins, nobody is in
    /// the way and the entries need no look.
    lowest: Cell<u64>,
    joins_seen: Cell<Option<u32>>,
}

/// What a look at the subscribers found.
enum Room {
    /// Every attached subscriber is past the message to be overwritten.
    Made,
    /// A subscriber (in this place) is in the way.
    Blocked,
}

impl Publisher {
    pub(super) fn from_region(region: Region, options: &PubSubOptions, ty: &MessageType) -> Result<Publisher> {
        let board = Board::attach(region, options, Party::Publisher, ty)?;
        let header = board.header();
        if board.wait != Wait::Spin {
            header.publishers_may_sleep.store(1, Ordering::SeqCst);
        }
        header.publishers_seen.store(1, Ordering::SeqCst);
        Ok(Publisher { board, lowest: Cell::new(0), joins_seen: Cell::new(None) })
    }

    /// Creates the board's named region (`0600`, `O_EXCL`) and attaches as a publisher.
    ///
    /// # Safety
    /// Every process that opens the region must follow this crate's
    /// publish-subscribe protocol (any mmapkit-shm process does): a peer that
    /// writes a message's bytes while they are lent out breaks the `&[u8]`
    /// and `&mut [u8]` handed out. Numbers, cursors and lengths are checked
    /// regardless, so a broken peer cannot make this end read or write out of
    /// bounds.
    pub unsafe fn create_named(name: &str, options: &PubSubOptions) -> Result<Publisher> {
        Publisher::create_named_as(name, options, &MessageType::Bytes)
    }

    pub(crate) fn create_named_as(name: &str, options: &PubSubOptions, ty: &MessageType) -> Result<Publisher> {
        let region = Board::create(
            |layout, len, init| Region::create_named(name, layout, len, &options.region, init),
            options,
            ty,
        )?;
        Publisher::from_region(region, options, ty)
    }

    /// Opens the board's named region and attaches as a publisher.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_named(name: &str, options: &PubSubOptions) -> Result<Publisher> {
        Publisher::open_named_as(name, options, &MessageType::Bytes)
    }

    pub(crate) fn open_named_as(name: &str, options: &PubSubOptions, ty: &MessageType) -> Result<Publisher> {
        let region = Region::open_named(name, super::board::layout(), &options.region)?;
        Publisher::from_region(region, options, ty)
    }

    /// Opens the named region if it exists, or creates it (reclaiming a stale
    /// name, as [`Region::create_named`] says), and attaches;
    /// `region().created()` tells which.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_or_create_named(name: &str, options: &PubSubOptions) -> Result<Publisher> {
        crate::region::open_or_create(
            &options.region,
            // SAFETY: this function's contract is theirs.
            || unsafe { Publisher::create_named(name, options) },
            // SAFETY: as above.
            || unsafe { Publisher::open_named(name, options) },
        )
    }

    /// The longest message a slot holds.
    pub fn max_message(&self) -> usize {
        self.board.geometry.slot_size
    }

    /// How many messages the ring keeps.
    pub fn capacity(&self) -> u64 {
        self.board.geometry.capacity()
    }

    /// How many subscribers are attached (as their entries say; a dead one
    /// counts until a publisher finds it in its way).
    pub fn subscribers(&self) -> usize {
        (0..self.board.geometry.subscribers)
            .filter(|&i| self.board.entry(i).state.load(Ordering::Acquire) & 0xff == ENTRY_ATTACHED)
            .count()
    }

    /// The region underneath.
    pub fn region(&self) -> &Region {
        &self.board.region
    }

    /// Makes room for message `s`: moves lose-oldest cursors in the way on;
    /// with `look`, frees the places of dead subscribers in the way.
    fn make_room(&self, s: u64, look: bool) -> Result<Room, PublishError> {
        let slots = self.board.geometry.slots;
        let joins = self.board.header().joins.load(Ordering::SeqCst);
        if self.joins_seen.get() == Some(joins) && s.wrapping_sub(self.lowest.get()) < slots {
            return Ok(Room::Made);
        }
        let mut lowest = s;
        for i in 0..self.board.geometry.subscribers {
            let entry = self.board.entry(i);
            let state = entry.state.load(Ordering::SeqCst);
            if state & 0xff != ENTRY_ATTACHED {
                continue;
            }
            loop {
                let cursor = entry.cursor.load(Ordering::SeqCst);
                let lossy = entry.overflow.load(Ordering::Relaxed) == OVERFLOW_LOSE_OLDEST;
                match standing(cursor, s, slots) {
                    Standing::Clear => {
                        // Only an honest cursor (at most a ring behind) counts.
                        let position = cursor & !BUSY;
                        if s.wrapping_sub(position) < slots {
                            lowest = lowest.min(position);
                        }
                        break;
                    }
                    Standing::Behind if lossy => {
                        let oldest_kept = s.wrapping_sub(slots).wrapping_add(1);
                        let moved =
                            entry.cursor.compare_exchange(cursor, oldest_kept, Ordering::SeqCst, Ordering::SeqCst);
                        if moved.is_ok() {
                            lowest = lowest.min(oldest_kept);
                            break;
                        }
                    }
                    Standing::Behind | Standing::BusyBehind => {
                        if look && !self.alive(i)? {
                            let free = (state & !0xff) | ENTRY_FREE;
                            let _ = entry.state.compare_exchange(state, free, Ordering::SeqCst, Ordering::SeqCst);
                            break;
                        }
                        self.joins_seen.set(None);
                        return Ok(Room::Blocked);
                    }
                }
            }
        }
        self.lowest.set(lowest);
        self.joins_seen.set(Some(joins));
        Ok(Room::Made)
    }

    /// Whether a look without changing anything finds room for message `s`.
    fn has_room(&self, s: u64) -> bool {
        let slots = self.board.geometry.slots;
        (0..self.board.geometry.subscribers).all(|i| {
            let entry = self.board.entry(i);
            entry.state.load(Ordering::SeqCst) & 0xff != ENTRY_ATTACHED
                || match standing(entry.cursor.load(Ordering::SeqCst), s, slots) {
                    Standing::Clear => true,
                    Standing::Behind => entry.overflow.load(Ordering::Relaxed) == OVERFLOW_LOSE_OLDEST,
                    Standing::BusyBehind => false,
                }
        })
    }

    fn alive(&self, i: u64) -> Result<bool, PublishError> {
        self.board.subscriber_alive(i).map_err(|error| PublishError::Os {
            op: Op::CheckPeer,
            region: self.board.region.describe(),
            error,
        })
    }

    /// Takes the publishers' lock, waiting at most `timeout`; `None` when
    /// another publisher kept it all that time.
    fn lock(&self, timeout: Option<Duration>) -> Result<Option<()>, PublishError> {
        let lock = self.board.lock();
        let region = || self.board.region.describe();
        // SAFETY: the lock was initialised by the board's creator before publishing.
        match unsafe { lock.lock(timeout) }.map_err(|error| PublishError::Os {
            op: Op::Lock,
            region: region(),
            error,
        })? {
            LockOutcome::Acquired => Ok(Some(())),
            LockOutcome::OwnerDied => {
                // A publisher died mid-message: its message was never
                // published (`tail` moves only at the commit), so the slot is
                // simply written again.
                // SAFETY: we hold the lock, taken with OwnerDied.
                unsafe { lock.make_consistent() }.map_err(|error| PublishError::Os {
                    op: Op::Recover,
                    region: region(),
                    error,
                })?;
                Ok(Some(()))
            }
            LockOutcome::NotRecoverable => Err(PublishError::NotRecoverable { region: region() }),
            LockOutcome::Busy => Ok(None),
        }
    }

    fn unlock(&self) {
        // SAFETY: this publisher holds the lock, on this thread (a Loan is not Send).
        let _ = unsafe { self.board.lock().unlock() };
    }

    fn check_len(&self, len: usize) -> Result<(), PublishError> {
        let max = self.max_message();
        if len > max { Err(PublishError::MessageTooLarge { len, max }) } else { Ok(()) }
    }

    /// Loans the slot of the next message, `len` bytes long, if there is
    /// room now (no subscriber in the way, no other publisher publishing).
    pub fn try_loan(&mut self, len: usize) -> Result<Loan<'_>, PublishError> {
        self.check_len(len)?;
        if self.lock(Some(Duration::ZERO))?.is_none() {
            return Err(PublishError::Full);
        }
        let s = self.board.header().tail();
        match self.make_room(s, true) {
            Ok(Room::Made) => Ok(self.loan_slot(s, len)),
            Ok(Room::Blocked) => {
                self.unlock();
                Err(PublishError::Full)
            }
            Err(e) => {
                self.unlock();
                Err(e)
            }
        }
    }

    /// Loans the slot of the next message, `len` bytes long, waiting at
    /// most `timeout` (`None`: as long as it takes) for the subscribers in
    /// the way to move on, or to die.
    pub fn loan_timeout(&mut self, len: usize, timeout: Option<Duration>) -> Result<Loan<'_>, PublishError> {
        self.check_len(len)?;
        let start = Instant::now();
        if self.lock(timeout)?.is_none() {
            return Err(PublishError::Timeout(timeout.unwrap_or_default()));
        }
        let s = self.board.header().tail();
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        let made = self.board.wait_for(
            &self.board.header().space_ready,
            left,
            || self.has_room(s),
            |look| Ok(matches!(self.make_room(s, look)?, Room::Made).then_some(())),
            |_| PublishError::Timeout(timeout.unwrap_or_default()),
        );
        match made {
            Ok(()) => Ok(self.loan_slot(s, len)),
            Err(e) => {
                self.unlock();
                Err(e)
            }
        }
    }

    /// Loans the slot of the next message, waiting as long as it takes.
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>, PublishError> {
        self.loan_timeout(len, None)
    }

    /// Publishes a copy of `message`, waiting at most `timeout` for room.
    pub fn publish_timeout(&mut self, message: &[u8], timeout: Option<Duration>) -> Result<(), PublishError> {
        let mut loan = self.loan_timeout(message.len(), timeout)?;
        loan.copy_from_slice(message);
        loan.commit();
        Ok(())
    }

    /// Publishes a copy of `message`, waiting as long as it takes.
    pub fn publish(&mut self, message: &[u8]) -> Result<(), PublishError> {
        self.publish_timeout(message, None)
    }

    /// Publishes a copy of `message` if there is room now.
    pub fn try_publish(&mut self, message: &[u8]) -> Result<(), PublishError> {
        let mut loan = self.try_loan(message.len())?;
        loan.copy_from_slice(message);
        loan.commit();
        Ok(())
    }

    fn loan_slot(&mut self, s: u64, len: usize) -> Loan<'_> {
        let (_, data) = self.board.slot(s);
        Loan { publisher: self, seq: s, data, len, _not_send: std::marker::PhantomData }
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("region", &self.board.region.describe())
            .field("capacity", &self.capacity())
            .field("max_message", &self.max_message())
            .finish()
    }
}

/// The slot of the next message, lent to one publisher (which holds the
/// publishers' lock meanwhile); [`commit`](Self::commit) publishes it,
/// dropping it does not.
pub struct Loan<'a> {
    publisher: &'a mut Publisher,
    seq: u64,
    data: *mut u8,
    len: usize,
    /// The publishers' lock belongs to this thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Loan<'_> {
    /// The number of the message (counted from 0 since the board was made).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Publishes the message to every subscriber.
    pub fn commit(self) {
        let board = &self.publisher.board;
        let (slot, _) = board.slot(self.seq);
        slot.len.store(self.len as u64, Ordering::Relaxed);
        slot.seq.store(self.seq.wrapping_add(1), Ordering::Release);
        let header = board.header();
        header.tail.0.store(self.seq.wrapping_add(1), Ordering::SeqCst);
        if header.subscribers_may_sleep.load(Ordering::Relaxed) != 0 {
            header.data_ready.notify_all();
            if header.subscriber_bells.load(Ordering::Relaxed) != 0 {
                bell::ring((0..board.geometry.subscribers).map(|i| &board.entry(i).bell));
            }
        }
        // Dropping `self` gives back the publishers' lock.
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        self.publisher.unlock();
    }
}

impl std::ops::Deref for Loan<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes (at most the slot's size, checked at the loan) of a slot no subscriber reads: every
        // cursor is past the message it held, and this one is not published yet (the board's contract).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl std::ops::DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan").field("seq", &self.seq).field("len", &self.len).finish()
    }
}

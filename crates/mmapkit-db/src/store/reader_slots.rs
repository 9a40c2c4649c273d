//! The reader slots of the lock file: which snapshots the read transactions
//! of every process can still see, so that a writer in any process reuses a
//! freed page only once no reader can reach it.
//!
//! Each open handle claims one slot and keeps in it the oldest snapshot its
//! read transactions hold (a handle's own transactions are counted in its
//! memory; the slot changes only when its oldest one does). A slot is four
//! words of its 64 bytes:
//!
//! | word | field                                                              |
//! |------|--------------------------------------------------------------------|
//! | 0    | the owner's process id; 0: free; all ones: being cleared           |
//! | 1    | the oldest snapshot's commit id plus one; 0: no read transaction   |
//! | 2    | when that snapshot was taken, in milliseconds since the Unix epoch |
//! | 3    | how many read transactions the handle has open                     |
//!
//! **Beginning a read** (the handle's first open one): store the snapshot's
//! id in the slot, then read the published commit again; if a newer one was
//! published in between, start over from it. **A writer** publishes each
//! durable commit and only afterwards reads the slots to decide which freed
//! pages are free to reuse. Both steps are sequentially consistent, so either
//! the writer sees the reader's slot, or the reader sees the newer commit and
//! moves to it: no reader ever holds a snapshot whose pages a writer reuses.
//!
//! **A dead owner** is found by a lock the kernel drops when a process dies:
//! the owner holds a byte-range lock on byte `LOCK_BASE + slot` of the lock
//! file for as long as it holds the slot. Where the OS has no such locks
//! (FreeBSD), whether the owner's process exists stands in for it (a process
//! id reused since can make a dead owner's slot look alive). A slot whose
//! owner is dead is cleared, under a protocol that cannot clear a live
//! owner's slot: the clearer marks the slot (word 0 to all ones) and takes
//! the owner's lock itself before it clears anything; a new owner claims only
//! a free slot and checks, once it holds the lock, that the slot is still its
//! own.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mmapkit_sys::range_lock;

use super::lock_file::{LockFile, SLOTS};
use crate::error::{Error, IoOp, Result};

/// Where the bytes whose locks show slot owners alive begin.
const LOCK_BASE: u64 = 1 << 16;
/// Word 0 of a slot being cleared.
const CLEARING: u64 = u64::MAX;
/// How often a writer checks that the owner of the slot holding back page
/// reuse is still alive.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// How a slot's owner shows it is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Liveness {
    /// By a byte-range lock the kernel drops when the owner dies.
    Locks,
    /// By its process existing (no such locks on this OS).
    Pids,
}

/// One reader slot as [`Database::readers`](crate::Database::readers) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The slot's number in the table.
    pub slot: usize,
    /// The process that holds it.
    pub pid: u32,
    /// The commit its oldest read transaction sees, if it has one open.
    pub txn: Option<u64>,
    /// How long that transaction has been open.
    pub age: Option<Duration>,
    /// How many read transactions its handle has open.
    pub readers: u64,
    /// Whether the owner is alive (this handle's own slot always is).
    pub alive: bool,
}

/// The reader slots, through the mapped lock file.
pub struct ReaderTable {
    lock: LockFile,
    liveness: Liveness,
    /// This handle's slot.
    own: usize,
    /// When each slot's owner was last found alive, by this handle's writer.
    checked: Mutex<Vec<Option<(u64, Instant)>>>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl ReaderTable {
    /// Claims a slot of `lock`'s table for this handle: a free one, or,
    /// when none is, one whose owner has died.
    pub fn claim(lock: LockFile) -> Result<ReaderTable> {
        let probe = range_lock::range_locked_by_other(lock.descriptor(), LOCK_BASE, 1);
        let liveness = match probe {
            Err(e) if mmapkit_sys::unsupported::Unsupported::of(&e).is_some() => Liveness::Pids,
            Err(e) => return Err(Error::io(lock.path(), IoOp::LockFile, e)),
            Ok(_) => Liveness::Locks,
        };
        let mut table = ReaderTable { lock, liveness, own: usize::MAX, checked: Mutex::new(vec![None; SLOTS]) };
        for round in 0..2 {
            if round == 1 {
                table.clear_stale()?;
            }
            for slot in 0..SLOTS {
                if table.try_claim(slot)? {
                    table.own = slot;
                    return Ok(table);
                }
            }
        }
        Err(Error::ReaderTableFull { path: table.lock.path().to_path_buf(), slots: SLOTS })
    }

    /// Takes `slot` if it is free.
    fn try_claim(&self, slot: usize) -> Result<bool> {
        let me = u64::from(std::process::id());
        let owner = self.lock.slot_word(slot, 0);
        if owner.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Ok(false);
        }
        if self.liveness == Liveness::Locks {
            let fd = self.lock.descriptor();
            let locked = range_lock::try_lock_byte(fd, LOCK_BASE + slot as u64)
                .map_err(|e| Error::io(self.lock.path(), IoOp::LockFile, e))?;
            if !locked {
                // A clearer holds it for a moment: leave the slot to it.
                let _ = owner.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
                return Ok(false);
            }
            // A clearer that marked the slot before the lock was taken gives
            // it back (it cannot take the lock now); one that finished sets it free.
            loop {
                match owner.load(Ordering::SeqCst) {
                    v if v == me => break,
                    CLEARING => std::hint::spin_loop(),
                    0 if owner.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst).is_ok() => break,
                    0 => {}
                    _ => {
                        let _ = range_lock::unlock_byte(fd, LOCK_BASE + slot as u64);
                        return Ok(false);
                    }
                }
            }
        }
        for k in 1..4 {
            self.lock.slot_word(slot, k).store(0, Ordering::SeqCst);
        }
        Ok(true)
    }

    /// The lock file.
    pub fn lock_file(&self) -> &LockFile {
        &self.lock
    }

    /// Records this handle's oldest open snapshot (`None`: no read
    /// transaction open) and how many it has open.
    pub fn set_oldest(&self, txn: Option<u64>, readers: u64) {
        let slot = self.own;
        if txn.is_some() {
            self.lock.slot_word(slot, 2).store(now_ms(), Ordering::Relaxed);
        }
        self.lock.slot_word(slot, 3).store(readers, Ordering::Relaxed);
        self.lock.slot_word(slot, 1).store(txn.map_or(0, |t| t + 1), Ordering::SeqCst);
    }

    /// The number of read transactions recorded open in this handle's slot.
    pub fn set_count(&self, readers: u64) {
        self.lock.slot_word(self.own, 3).store(readers, Ordering::Relaxed);
    }

    /// The oldest snapshot any handle's read transactions hold, if any. A
    /// slot that holds back pages freed up to `upto` has its owner's life
    /// checked (at most every [`CHECK_EVERY`]) and is cleared if it died.
    pub fn oldest(&self, upto: u64) -> Option<u64> {
        loop {
            let mut oldest: Option<(u64, usize)> = None;
            for slot in 0..SLOTS {
                let t = self.lock.slot_word(slot, 1).load(Ordering::SeqCst);
                if t != 0 && oldest.is_none_or(|(o, _)| t - 1 < o) {
                    oldest = Some((t - 1, slot));
                }
            }
            let (txn, slot) = oldest?;
            if txn >= upto || slot == self.own || !self.due_for_check(slot) {
                return Some(txn);
            }
            if !matches!(self.clear_if_dead(slot), Ok(true)) {
                return Some(txn);
            }
        }
    }

    /// Whether slot `slot`'s owner was last found alive long enough ago (or
    /// under another owner) to look again, noting that it is looked at now.
    fn due_for_check(&self, slot: usize) -> bool {
        let pid = self.lock.slot_word(slot, 0).load(Ordering::SeqCst);
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let due = !matches!(checked[slot], Some((p, at)) if p == pid && at.elapsed() < CHECK_EVERY);
        if due {
            checked[slot] = Some((pid, Instant::now()));
        }
        due
    }

    /// Whether slot `slot` has an owner and that owner is alive.
    fn owner_alive(&self, slot: usize, pid: u64) -> Result<bool> {
        if slot == self.own {
            return Ok(true);
        }
        match self.liveness {
            Liveness::Locks => range_lock::range_locked_by_other(self.lock.descriptor(), LOCK_BASE + slot as u64, 1)
                .map_err(|e| Error::io(self.lock.path(), IoOp::LockFile, e)),
            Liveness::Pids => Ok(u32::try_from(pid).is_ok_and(mmapkit_sys::process::exists)),
        }
    }

    /// Clears slot `slot` if its owner is dead: `Ok(true)` if it did.
    fn clear_if_dead(&self, slot: usize) -> Result<bool> {
        let owner = self.lock.slot_word(slot, 0);
        let pid = owner.load(Ordering::SeqCst);
        if pid == 0 || pid == CLEARING || self.owner_alive(slot, pid)? {
            return Ok(false);
        }
        if owner.compare_exchange(pid, CLEARING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Ok(false);
        }
        let fd = self.lock.descriptor();
        let byte = LOCK_BASE + slot as u64;
        if self.liveness == Liveness::Locks {
            match range_lock::try_lock_byte(fd, byte) {
                Ok(true) => {}
                other => {
                    // Its owner took the lock in between: it is alive.
                    let _ = owner.compare_exchange(CLEARING, pid, Ordering::SeqCst, Ordering::SeqCst);
                    return other.map(|_| false).map_err(|e| Error::io(self.lock.path(), IoOp::LockFile, e));
                }
            }
        }
        for k in 1..4 {
            self.lock.slot_word(slot, k).store(0, Ordering::SeqCst);
        }
        if self.liveness == Liveness::Locks {
            let _ = range_lock::unlock_byte(fd, byte);
        }
        owner.store(0, Ordering::SeqCst);
        Ok(true)
    }

    /// Clears every slot whose owner has died; returns what they held.
    pub fn clear_stale(&self) -> Result<Vec<ReaderInfo>> {
        let mut cleared = Vec::new();
        for info in self.list()? {
            if !info.alive && self.clear_if_dead(info.slot)? {
                cleared.push(info);
            }
        }
        Ok(cleared)
    }

    /// Every slot in use, with whether its owner is alive.
    pub fn list(&self) -> Result<Vec<ReaderInfo>> {
        let now = now_ms();
        let mut out = Vec::new();
        for slot in 0..SLOTS {
            let pid = self.lock.slot_word(slot, 0).load(Ordering::SeqCst);
            if pid == 0 || pid == CLEARING {
                continue;
            }
            let t = self.lock.slot_word(slot, 1).load(Ordering::SeqCst);
            let since = self.lock.slot_word(slot, 2).load(Ordering::Relaxed);
            out.push(ReaderInfo {
                slot,
                pid: u32::try_from(pid).unwrap_or(u32::MAX),
                txn: t.checked_sub(1),
                age: (t != 0).then(|| Duration::from_millis(now.saturating_sub(since))),
                readers: self.lock.slot_word(slot, 3).load(Ordering::Relaxed),
                alive: self.owner_alive(slot, pid)?,
            });
        }
        Ok(out)
    }

    /// Whether a handle other than this one holds a slot (alive or not yet
    /// found dead).
    pub fn others_attached(&self) -> bool {
        (0..SLOTS).any(|slot| slot != self.own && self.lock.slot_word(slot, 0).load(Ordering::SeqCst) != 0)
    }
}

impl Drop for ReaderTable {
    /// Gives the slot back.
    fn drop(&mut self) {
        if self.own >= SLOTS {
            return;
        }
        for k in 1..4 {
            self.lock.slot_word(self.own, k).store(0, Ordering::SeqCst);
        }
        let me = u64::from(std::process::id());
        let _ = self.lock.slot_word(self.own, 0).compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
        if self.liveness == Liveness::Locks {
            let _ = range_lock::unlock_byte(self.lock.descriptor(), LOCK_BASE + self.own as u64);
        }
    }
}

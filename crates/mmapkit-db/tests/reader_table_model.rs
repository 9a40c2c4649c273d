//! Exhaustive models of the reader table's two protocols (see
//! `src/store/reader_slots.rs`): every interleaving of a few actors, each
//! step one of the protocol's atomic accesses, explored state by state.
//!
//! The real table lives in a mapped file and takes byte-range locks, which
//! no model checker can track, so these are faithful miniatures: the same
//! steps in the same order. The steps are sequentially consistent accesses
//! in the code, so interleaving them is the whole of their behaviour; a
//! byte-range lock is one word taken and given atomically; a process that
//! dies is one whose lock is free and whose slot still names it.
//!
//! 1. **Snapshots and page reuse.** Readers begin by storing their
//!    snapshot in their slot and looking at the published commit again; a
//!    writer publishes a commit, then reads the slots, then reuses the pages
//!    of every snapshot older than the oldest it saw. No reader may hold a
//!    snapshot whose pages were reused.
//! 2. **Claiming against clearing.** A new owner claims a slot while
//!    clearers clear it if its owner looks dead. A clearer never clears a
//!    slot a live owner holds, and an owner that has claimed keeps it.
//!
//! Each model is also run with one step of its protocol left out, and must
//! then find the harm: the checks are not vacuous.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

/// A model: a state with actors that step one atomic access at a time.
trait Model: Clone + Eq + Hash + Debug {
    /// How many actors there are.
    fn actors(&self) -> usize;
    /// The state after actor `actor`'s next step, or `None` if it is done.
    fn step(&self, actor: usize) -> Option<Self>;
    /// What must hold in every state.
    fn check(&self) -> Result<(), String>;
    /// What must hold once every actor is done.
    fn check_end(&self) -> Result<(), String>;
}

/// Explores every state reachable from `init`, checking each; and that from
/// every state, all actors can still finish (no deadlock, no livelock).
/// Returns how many states there are.
fn explore<M: Model>(init: M) -> Result<usize, String> {
    let mut index: HashMap<M, usize> = HashMap::new();
    let mut states: Vec<M> = Vec::new();
    let mut edges: Vec<Vec<usize>> = Vec::new();
    let mut queue = VecDeque::new();
    index.insert(init.clone(), 0);
    states.push(init);
    edges.push(Vec::new());
    queue.push_back(0);
    let mut ends = Vec::new();
    while let Some(at) = queue.pop_front() {
        let state = states[at].clone();
        state.check().map_err(|e| format!("{e} in {state:?}"))?;
        let mut any = false;
        for actor in 0..state.actors() {
            let Some(next) = state.step(actor) else { continue };
            any = true;
            let to = match index.get(&next) {
                Some(&to) => to,
                None => {
                    let to = states.len();
                    index.insert(next.clone(), to);
                    states.push(next);
                    edges.push(Vec::new());
                    queue.push_back(to);
                    to
                }
            };
            edges[at].push(to);
        }
        if !any {
            state.check_end().map_err(|e| format!("{e} at the end, in {state:?}"))?;
            ends.push(at);
        }
    }
    // Every state must reach an end: walk the edges backwards from the ends.
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); states.len()];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            back[to].push(from);
        }
    }
    let mut finishes = vec![false; states.len()];
    let mut walk: Vec<usize> = ends;
    for &e in &walk {
        finishes[e] = true;
    }
    while let Some(at) = walk.pop() {
        for &from in &back[at] {
            if !finishes[from] {
                finishes[from] = true;
                walk.push(from);
            }
        }
    }
    if let Some(stuck) = finishes.iter().position(|f| !f) {
        return Err(format!("no way to finish from {:?}", states[stuck]));
    }
    Ok(states.len())
}

// ---------------------------------------------------------------------------
// 1. Snapshots and page reuse.

const READERS: usize = 2;
/// The writer publishes commits 2..=LAST_COMMIT (commit 1 is there at the start).
const LAST_COMMIT: u8 = 3;
/// Read transactions each reader runs, one after the other.
const READS: u8 = 2;
/// A writer's oldest when it saw no reader.
const NO_READER: u8 = u8::MAX;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Writer {
    /// The commit it publishes next (past LAST_COMMIT: done).
    commit: u8,
    /// 0: publish; 1..=READERS: read slot pc-1; READERS+1: reuse.
    pc: u8,
    /// The oldest snapshot seen in the slots so far.
    oldest: u8,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Reader {
    /// Read transactions done (READS: done).
    done: u8,
    /// 0: read the published commit; 1: store it in the slot; 2: look at
    /// the published commit again; 3: holding (reading); 4: end.
    pc: u8,
    /// Its snapshot.
    txn: u8,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Snapshots {
    /// Whether readers look at the published commit again (the protocol).
    recheck: bool,
    published: u8,
    /// Word 1 of each reader's slot: its snapshot plus one, 0 for none.
    slots: [u8; READERS],
    /// Bit s: the pages of snapshot s were reused by a later commit.
    reused: u8,
    writer: Writer,
    readers: [Reader; READERS],
}

impl Snapshots {
    fn new(recheck: bool) -> Snapshots {
        let reader = Reader { done: 0, pc: 0, txn: 0 };
        Snapshots {
            recheck,
            published: 1,
            slots: [0; READERS],
            reused: 0,
            writer: Writer { commit: 2, pc: 0, oldest: NO_READER },
            readers: [reader.clone(), reader],
        }
    }
}

impl Model for Snapshots {
    fn actors(&self) -> usize {
        1 + READERS
    }

    fn step(&self, actor: usize) -> Option<Snapshots> {
        let mut s = self.clone();
        if actor == 0 {
            let w = &mut s.writer;
            if w.commit > LAST_COMMIT {
                return None;
            }
            match w.pc as usize {
                0 => {
                    // The commit is durable and published; the pages it
                    // replaced are free once no reader can see them.
                    s.published = w.commit;
                    w.oldest = NO_READER;
                    w.pc = 1;
                }
                n if n <= READERS => {
                    let t = s.slots[n - 1];
                    if t != 0 {
                        w.oldest = w.oldest.min(t - 1);
                    }
                    w.pc += 1;
                }
                _ => {
                    // Pages freed by commits up to the oldest reader's
                    // snapshot (or this commit) are reused: those of every
                    // snapshot s with s + 1 <= that bound.
                    let bound = w.oldest.min(w.commit);
                    for snapshot in 0..bound {
                        s.reused |= 1 << snapshot;
                    }
                    w.commit += 1;
                    w.pc = 0;
                }
            }
            return Some(s);
        }
        let me = actor - 1;
        let r = &mut s.readers[me];
        if r.done == READS {
            return None;
        }
        match r.pc {
            0 => {
                r.txn = s.published;
                r.pc = 1;
            }
            1 => {
                s.slots[me] = r.txn + 1;
                r.pc = 2;
            }
            2 => {
                let now = s.published;
                if s.recheck && now != r.txn {
                    // A newer commit came: move to it, and store it first.
                    r.txn = now;
                    r.pc = 1;
                } else {
                    r.pc = 3;
                }
            }
            3 => r.pc = 4,
            _ => {
                s.slots[me] = 0;
                r.done += 1;
                r.pc = 0;
            }
        }
        Some(s)
    }

    fn check(&self) -> Result<(), String> {
        for (i, r) in self.readers.iter().enumerate() {
            if r.done < READS && r.pc >= 3 && self.reused & (1 << r.txn) != 0 {
                return Err(format!("reader {i} holds snapshot {} whose pages were reused", r.txn));
            }
        }
        Ok(())
    }

    fn check_end(&self) -> Result<(), String> {
        if self.slots != [0; READERS] {
            return Err("a slot still holds a snapshot".into());
        }
        // The newest snapshot is never reused.
        if self.reused & (1 << LAST_COMMIT) != 0 {
            return Err("the newest snapshot's pages were reused".into());
        }
        Ok(())
    }
}

#[test]
fn no_reader_in_any_interleaving_holds_a_snapshot_whose_pages_a_writer_reused() {
    let states = explore(Snapshots::new(true)).unwrap();
    eprintln!("snapshots and page reuse: {states} states");
    assert!(states > 1000, "the model explored only {states} states");
}

#[test]
fn without_the_second_look_a_reader_can_hold_reused_pages() {
    let found = explore(Snapshots::new(false)).unwrap_err();
    assert!(found.contains("whose pages were reused"), "{found}");
}

// ---------------------------------------------------------------------------
// 2. Claiming against clearing.

const FREE: u8 = 0;
const CLEARING: u8 = u8::MAX;
/// Process ids (and lock holders): the new owner, two clearers, a dead and a live owner.
const NEW: u8 = 1;
const CLEARER: u8 = 2;
const CLEARER_2: u8 = 3;
const DEAD: u8 = 8;
const LIVE: u8 = 9;
/// The snapshot the new owner records once it holds the slot, and the one a prior owner left.
const NEW_TXN: u8 = 5;
const OLD_TXN: u8 = 7;

/// One run of `clear_if_dead` on the slot.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Clear {
    /// 0: load the owner; 1: is its lock held; 2: mark; 3: take its lock;
    /// 4: clear; 5: unlock; 6: free the slot; 7: put the owner back; 8: done.
    pc: u8,
    pid: u8,
}

const CLEAR_DONE: u8 = 8;

impl Clear {
    fn new() -> Clear {
        Clear { pc: 0, pid: 0 }
    }

    /// One step of clearing, by `me`; `take_lock` is the protocol's.
    fn step(&mut self, slot: &mut Slot, me: u8, take_lock: bool) {
        self.pc = match self.pc {
            0 => {
                self.pid = slot.owner;
                if self.pid == FREE || self.pid == CLEARING { CLEAR_DONE } else { 1 }
            }
            // Someone else holds the owner's lock byte: it is alive.
            1 if slot.lock != 0 && slot.lock != me => CLEAR_DONE,
            1 => 2,
            2 if slot.owner == self.pid => {
                slot.owner = CLEARING;
                if take_lock { 3 } else { 4 }
            }
            2 => CLEAR_DONE,
            3 if slot.lock == 0 => {
                slot.lock = me;
                4
            }
            // Its owner took the lock in between: it is alive.
            3 => 7,
            4 => {
                slot.txn = 0;
                if take_lock { 5 } else { 6 }
            }
            5 => {
                slot.lock = 0;
                6
            }
            6 => {
                slot.owner = FREE;
                CLEAR_DONE
            }
            _ => {
                if slot.owner == CLEARING {
                    slot.owner = self.pid;
                }
                CLEAR_DONE
            }
        };
    }
}

/// The new owner: `try_claim`, on failure a `clear_if_dead` and one more
/// `try_claim` (as `ReaderTable::claim` does), then record a snapshot.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Claimer {
    /// Which try (0 or 1).
    attempt: u8,
    /// 0: mark the slot ours; 1: take its lock; 2: wait for a clearer (loop);
    /// 3: zero the words; 4: record the snapshot; 5: clearing between the tries;
    /// 6: holding it; 7: gave up.
    pc: u8,
    clear: Clear,
}

const HOLDING: u8 = 6;
const GAVE_UP: u8 = 7;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Slot {
    /// Word 0: the owner's pid, FREE or CLEARING.
    owner: u8,
    /// Word 1: a snapshot.
    txn: u8,
    /// The owner's lock byte: who holds it (0: nobody).
    lock: u8,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Claiming {
    /// Whether clearers take the owner's lock before clearing (the protocol).
    take_lock: bool,
    slot: Slot,
    claimer: Claimer,
    clearers: Vec<(u8, Clear)>,
    /// The slot's owner at the start, if it is alive (it never lets go).
    live_owner: bool,
}

impl Claiming {
    fn new(slot: Slot, clearers: &[u8], take_lock: bool) -> Claiming {
        Claiming {
            take_lock,
            live_owner: slot.owner == LIVE,
            slot,
            claimer: Claimer { attempt: 0, pc: 0, clear: Clear::new() },
            clearers: clearers.iter().map(|&c| (c, Clear::new())).collect(),
        }
    }
}

impl Claimer {
    fn failed(&mut self, slot: &mut Slot) {
        if slot.lock == NEW {
            slot.lock = 0;
        }
        self.pc = if self.attempt == 0 { 5 } else { GAVE_UP };
    }

    fn step(&mut self, slot: &mut Slot, take_lock: bool) {
        match self.pc {
            0 => {
                if slot.owner == FREE {
                    slot.owner = NEW;
                    self.pc = 1;
                } else {
                    self.failed(slot);
                }
            }
            1 => {
                if slot.lock == 0 {
                    slot.lock = NEW;
                    self.pc = 2;
                } else {
                    // A clearer holds it for a moment: leave the slot to it.
                    if slot.owner == NEW {
                        slot.owner = FREE;
                    }
                    self.failed(slot);
                }
            }
            2 => match slot.owner {
                NEW => self.pc = 3,
                CLEARING => {}
                FREE => {
                    slot.owner = NEW;
                    self.pc = 3;
                }
                _ => self.failed(slot),
            },
            3 => {
                slot.txn = 0;
                self.pc = 4;
            }
            4 => {
                slot.txn = NEW_TXN;
                self.pc = HOLDING;
            }
            _ => {
                self.clear.step(slot, NEW, take_lock);
                if self.clear.pc == CLEAR_DONE {
                    self.attempt = 1;
                    self.pc = 0;
                }
            }
        }
    }
}

impl Model for Claiming {
    fn actors(&self) -> usize {
        1 + self.clearers.len()
    }

    fn step(&self, actor: usize) -> Option<Claiming> {
        let mut s = self.clone();
        if actor == 0 {
            if s.claimer.pc >= HOLDING {
                return None;
            }
            let take_lock = s.take_lock;
            s.claimer.step(&mut s.slot, take_lock);
            return Some(s);
        }
        let take_lock = s.take_lock;
        let (me, clear) = &mut s.clearers[actor - 1];
        if clear.pc == CLEAR_DONE {
            return None;
        }
        clear.step(&mut s.slot, *me, take_lock);
        Some(s)
    }

    fn check(&self) -> Result<(), String> {
        // A clearer that looked before the claim took the lock may mark the
        // slot for a moment; it then fails to take the lock and puts it back.
        if self.claimer.pc == HOLDING && (![NEW, CLEARING].contains(&self.slot.owner) || self.slot.lock != NEW) {
            return Err("the new owner lost the slot it claimed".into());
        }
        if self.claimer.pc == HOLDING && self.slot.txn != NEW_TXN {
            return Err("the new owner's snapshot was cleared".into());
        }
        if self.live_owner && (self.slot.txn != OLD_TXN || ![LIVE, CLEARING].contains(&self.slot.owner)) {
            return Err("a live owner's slot was cleared".into());
        }
        Ok(())
    }

    fn check_end(&self) -> Result<(), String> {
        if self.claimer.pc == HOLDING && self.slot.owner != NEW {
            return Err("the slot the new owner holds does not name it".into());
        }
        if self.claimer.pc == GAVE_UP && self.slot.lock == NEW {
            return Err("the new owner gave up but kept the lock".into());
        }
        if self.live_owner && self.slot.owner != LIVE {
            return Err("a live owner's slot does not name it".into());
        }
        if self.claimer.pc == GAVE_UP && self.slot.owner == NEW {
            return Err("the new owner gave up but the slot names it".into());
        }
        Ok(())
    }
}

fn dead_owners_slot() -> Slot {
    Slot { owner: DEAD, txn: OLD_TXN, lock: 0 }
}

#[test]
fn a_slot_claimed_while_clearers_clear_it_stays_its_owners() {
    // A free slot: clearers that look while the claim is halfway see an owner without its lock.
    let free = Slot { owner: FREE, txn: 0, lock: 0 };
    let mut total = 0;
    for (slot, clearers) in [
        (free.clone(), &[CLEARER][..]),
        (free, &[CLEARER, CLEARER_2][..]),
        (dead_owners_slot(), &[CLEARER][..]),
        (dead_owners_slot(), &[CLEARER, CLEARER_2][..]),
    ] {
        total += explore(Claiming::new(slot, clearers, true)).unwrap();
    }
    eprintln!("claiming against clearing: {total} states");
    assert!(total > 1000, "the models explored only {total} states");
}

#[test]
fn a_dead_owners_slot_is_always_claimable_when_no_one_else_clears_it() {
    // With the new owner alone, it clears the dead owner's slot and claims it.
    let model = Claiming::new(dead_owners_slot(), &[], true);
    explore(model.clone()).unwrap();
    let mut s = model;
    while let Some(next) = s.step(0) {
        s = next;
    }
    assert_eq!(s.claimer.pc, HOLDING, "{s:?}");
}

#[test]
fn a_live_owners_slot_is_never_cleared() {
    let live = Slot { owner: LIVE, txn: OLD_TXN, lock: LIVE };
    explore(Claiming::new(live, &[CLEARER, CLEARER_2], true)).unwrap();
}

#[test]
fn clearers_that_do_not_take_the_owners_lock_can_clear_a_claimed_slot() {
    let free = Slot { owner: FREE, txn: 0, lock: 0 };
    let found = explore(Claiming::new(free, &[CLEARER], false)).unwrap_err();
    assert!(found.contains("the new owner"), "{found}");
}

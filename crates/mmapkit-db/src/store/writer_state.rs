//! What the page store keeps for the writer from one write transaction to the
//! next: the free pages, which meta slot holds the last durable commit, the
//! id the next commit takes, whether a failed write left the disk in an
//! unknown state, whether this handle holds the writer's turn and has
//! commits not yet durable, and page buffers to reuse.

use super::free_pages::FreePages;

/// The writer's state between transactions (behind the writer's lock).
pub struct WriterState {
    /// Free pages, and the pages the persisted free list is written on.
    free: FreePages,
    /// The meta slot holding the last durable commit.
    durable_slot: usize,
    /// The last durable commit's id.
    last_durable: u64,
    /// The id the next commit takes (above any passed-over record's).
    next_txn: u64,
    /// Set when a write or sync failed: what is on disk is unknown.
    poisoned: Option<String>,
    /// Page buffers for the next transaction's copies (see
    /// [`TxnPages`](super::txn_pages::TxnPages)): up to 8 MiB kept for as
    /// long as the database is open.
    spare: Vec<Box<[u8]>>,
    /// Whether this handle holds the writer's turn among processes.
    turn: bool,
    /// Whether a commit since the last durable one was made without a sync
    /// (the turn is kept until one is durable).
    unsynced: bool,
    /// Whether the state must be read from the file before it is used: not
    /// yet read, or the file may have changed under another process's turn.
    stale: bool,
}

impl WriterState {
    /// The state an open starts with: the free list read back, and the
    /// durable commit `last_durable` in `durable_slot`.
    pub fn new(free: FreePages, durable_slot: usize, last_durable: u64, next_txn: u64) -> WriterState {
        WriterState {
            free,
            durable_slot,
            last_durable,
            next_txn,
            poisoned: None,
            spare: Vec::new(),
            turn: false,
            unsynced: false,
            stale: false,
        }
    }

    /// A state to be read from the file when the handle first takes the turn.
    pub fn unread() -> WriterState {
        WriterState { stale: true, ..WriterState::new(FreePages::default(), 0, 0, 1) }
    }

    /// Whether the state must be read from the file before it is used.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Takes the state `read` from the file (its free pages, durable commit
    /// and next id), keeping this handle's turn, spare buffers and poison.
    pub(super) fn reload(&mut self, read: WriterState) {
        (self.free, self.durable_slot, self.last_durable, self.next_txn) =
            (read.free, read.durable_slot, read.last_durable, read.next_txn);
        self.stale = false;
        self.unsynced = false;
    }

    /// Makes ready the segments freed up to commit `upto` (see [`FreePages::release`]).
    pub(super) fn release(&mut self, upto: u64) {
        self.free.release(upto);
    }

    /// Makes the next commit's id at least `txn`.
    pub(super) fn next_at_least(&mut self, txn: u64) {
        self.next_txn = self.next_txn.max(txn);
    }

    /// Whether this handle holds the writer's turn.
    pub fn holds_turn(&self) -> bool {
        self.turn
    }

    /// Records that the turn was taken or given back.
    pub(super) fn set_turn(&mut self, turn: bool) {
        self.turn = turn;
    }

    /// Whether a commit made since the last durable one is not durable yet.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// The free pages.
    pub fn free_pages(&self) -> &FreePages {
        &self.free
    }

    /// The meta slot holding the last durable commit.
    pub fn durable_slot(&self) -> usize {
        self.durable_slot
    }

    /// The last durable commit's id.
    pub fn last_durable(&self) -> u64 {
        self.last_durable
    }

    /// The id the next commit takes.
    pub fn next_txn(&self) -> u64 {
        self.next_txn
    }

    /// Why writes are refused, if a write or sync failed.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Hands a new write transaction the free pages (the segments freed up to
    /// commit `upto` made ready first) and the spare page buffers.
    pub(super) fn check_out(&mut self, upto: u64) -> (FreePages, Vec<Box<[u8]>>) {
        self.free.release(upto);
        (std::mem::take(&mut self.free), std::mem::take(&mut self.spare))
    }

    /// Takes the free pages back from a transaction that ended: as its commit
    /// left them, or as they were before an abort.
    pub(super) fn check_in(&mut self, free: FreePages) {
        self.free = free;
    }

    /// Keeps `spare` page buffers for the next transaction.
    pub(super) fn keep_spare(&mut self, spare: Vec<Box<[u8]>>) {
        self.spare = spare;
    }

    /// Records that commit `txn` is durable, its meta page in `slot`.
    pub(super) fn made_durable(&mut self, txn: u64, slot: usize) {
        self.durable_slot = slot;
        self.last_durable = txn;
        self.unsynced = false;
    }

    /// Records that commit `txn` is done: the next one takes the next id.
    pub(super) fn committed(&mut self, txn: u64) {
        self.next_txn = txn + 1;
        self.unsynced |= self.last_durable != txn;
    }

    /// Refuses further writes: a write or sync failed with `cause`.
    pub(super) fn poison(&mut self, cause: String) {
        self.poisoned = Some(cause);
    }
}

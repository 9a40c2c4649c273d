//! The peer watch: one thread per process that looks, for every end asleep,
//! whether the other end is still alive, and wakes the end when it is not.
//!
//! It is what lets a blocked end sleep on its futex with no timeout, where a
//! timed futex wait would arm and cancel a timer on every sleep (what that
//! costs is in docs/performance.md, "The peer watch"). With the watch, an
//! end waiting without a deadline sleeps until a message, room, or the
//! watch wakes it. The timers are the watch's own: ends with the same
//! [`peer_check`](super::ChannelOptions::peer_check) share its ticks, and
//! an end is looked at only while it sleeps.
//!
//! The watch looks the way an end does (the state word, then the kernel's
//! byte-range locks), so a peer cannot fake being alive after it died. What it
//! finds is only a reason to wake: the woken end looks again itself before it
//! reports `PeerGone`.
//!
//! An end registers when it attaches and leaves in its `Drop`, before its
//! region is unmapped; the watch holds the registry's lock while it touches
//! an end's memory. The thread inherits the CPU affinity and scheduling of
//! the thread that attaches the process's first such end. In a child made by
//! `fork` (no watch thread there; a `pthread_atfork` handler tells), and if
//! the thread cannot be started, ends fall back to timed sleeps. Two forks
//! escape that: one made by a raw `clone` or `_Fork`, which skip the
//! handlers (an end carried into such a child sleeps untimed with nobody
//! watching its peer), and one made by another thread while the first end
//! is starting the watch (the child then waits for good at its first
//! attach, for a start that has no thread in it).

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::clock::later;
use super::kind::Kind;
use super::peer::{PeerSeen, look_at_peer};
use crate::event::Event;
use crate::role::Role;

/// What the watch needs to look at one end's peer and wake the end.
pub(super) struct Watched {
    /// The region's descriptor, open while registered.
    fd: RawFd,
    /// The peer's state word, in the mapping.
    peer_state: *const AtomicU32,
    /// The event the end sleeps on, in the mapping.
    event: *const Event,
    /// The role of the peer.
    peer: Role,
    kind: Kind,
    every: Duration,
    /// Set by the watch when its look found the peer gone (or its state
    /// word unreadable); taken by the end.
    woke: AtomicBool,
    /// Set by the end while it sleeps: the watch looks only at sleepers.
    sleeping: AtomicBool,
}

// SAFETY: the pointers reach atomics in a shared mapping (and the descriptor
// is only passed to fcntl), which any thread may touch; the end that made
// the Watched keeps the mapping and the descriptor alive until it has
// removed the Watched from the registry, and the watch touches them only
// under the registry's lock.
unsafe impl Send for Watched {}
// SAFETY: as above; every field is read-only after construction except the atomics.
unsafe impl Sync for Watched {}

impl Watched {
    /// Whether the watch woke this end since the last call; clears it.
    pub(super) fn take_wake(&self) -> bool {
        self.woke.swap(false, Ordering::AcqRel)
    }

    /// Whether the watch woke this end (a condition to sleep on).
    pub(super) fn woken(&self) -> bool {
        self.woke.load(Ordering::Acquire)
    }

    /// Marks the end asleep (or awake again): the watch looks at its peer
    /// only while it sleeps, so idle ends cost nothing.
    pub(super) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }

    /// Looks at the peer; on anything but "here", wakes the end.
    ///
    /// # Safety
    ///
    /// The end that registered `self` has not yet removed it (so its mapping
    /// and descriptor are alive).
    unsafe fn look(&self) {
        // SAFETY: the caller promises the descriptor is open.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        // SAFETY: the caller promises the mapping is alive.
        let state = unsafe { &*self.peer_state };
        if !matches!(look_at_peer(fd, state, self.peer, self.kind), Ok(PeerSeen::Here)) {
            self.woke.store(true, Ordering::Release);
            // SAFETY: as above.
            unsafe { &*self.event }.notify_all();
        }
    }
}

/// An end's place in the watch; leaving it (on drop) happens under the
/// registry's lock, so the watch never touches the end's memory afterwards.
pub(super) struct Registration(Arc<Watched>);

impl std::ops::Deref for Registration {
    type Target = Watched;

    fn deref(&self) -> &Watched {
        &self.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // In a forked child the list is a copy no thread reads, and its lock
        // may have been held at the fork: leave it alone.
        if watching_here() {
            WATCH.lock().retain(|(w, _)| !Arc::ptr_eq(w, &self.0));
        }
    }
}

/// The registered ends (each with when to look next) and the thread that looks.
struct Watch {
    ends: Mutex<Vec<(Arc<Watched>, Instant)>>,
    /// Signalled when an end registers, so the thread sleeps until the
    /// earliest look.
    registered: Condvar,
}

/// The watch looks at an end at most this often, whatever its peer check says.
const MIN_PERIOD: Duration = Duration::from_millis(1);

static WATCH: Watch = Watch { ends: Mutex::new(Vec::new()), registered: Condvar::new() };

/// When the watch thread started (`None`: it could not start): ends with
/// the same period are looked at on the same ticks, so the thread wakes once
/// per period, however many ends there are.
static STARTED: OnceLock<Option<Instant>> = OnceLock::new();

/// Set in the child of a `fork` (which has no watch thread), by a handler
/// registered when the thread starts.
static FORKED: AtomicBool = AtomicBool::new(false);

extern "C" fn forked() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Whether this process has a watch thread (it is not a forked child of the
/// one that started it), starting it on first use. Ends made before a
/// `fork` ask it before every sleep, so that in the child they fall back to
/// timed sleeps; it is two loads and no system call, since the way into
/// sleep is part of every blocking round trip.
pub(super) fn watching_here() -> bool {
    !FORKED.load(Ordering::Relaxed) && STARTED.get_or_init(start).is_some()
}

/// The first tick after `now` of a clock that ticks every `every` from the
/// thread's start (or `every` after `now`, if that cannot be named).
fn next_tick(now: Instant, every: Duration) -> Instant {
    let Some(Some(epoch)) = STARTED.get() else {
        return later(now, every);
    };
    let every_ns = every.as_nanos().max(1);
    let ticks = now.saturating_duration_since(*epoch).as_nanos() / every_ns + 1;
    let since_epoch = ticks.checked_mul(every_ns).and_then(|ns| u64::try_from(ns).ok()).map(Duration::from_nanos);
    since_epoch.and_then(|d| epoch.checked_add(d)).unwrap_or_else(|| later(now, every))
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Vec<(Arc<Watched>, Instant)>> {
        // Nothing panics while holding it; a poisoned list is still a list.
        self.ends.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The thread: sleeps while no end is registered, else until the
    /// earliest look is due; looks at every end that is due.
    fn run(&self) {
        let mut ends = self.lock();
        loop {
            if ends.is_empty() {
                ends = self.registered.wait(ends).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            let now = Instant::now();
            let mut next = None::<Instant>;
            for (watched, due) in ends.iter_mut() {
                if now >= *due {
                    if watched.sleeping.load(Ordering::SeqCst) {
                        // SAFETY: registered, and we hold the registry's lock.
                        unsafe { watched.look() };
                    }
                    *due = next_tick(now, watched.every);
                }
                next = Some(next.map_or(*due, |n| n.min(*due)));
            }
            let sleep = next.map_or(Duration::ZERO, |n| n.saturating_duration_since(Instant::now()));
            ends = self.registered.wait_timeout(ends, sleep).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }
}

/// Registers an end (whose region's descriptor is `fd`, whose peer's state
/// word is `peer_state` and who sleeps on `event`) with the process's watch,
/// starting its thread on first use. `None` where there is no watch (a
/// forked child, or a thread that could not start).
///
/// # Safety
///
/// `fd`, `peer_state` and `event` stay valid until the returned
/// registration is dropped.
pub(super) unsafe fn register(
    fd: BorrowedFd<'_>,
    peer_state: &AtomicU32,
    event: &Event,
    peer: Role,
    kind: Kind,
    every: Duration,
) -> Option<Registration> {
    if !watching_here() {
        return None;
    }
    let every = every.max(MIN_PERIOD);
    let watched = Arc::new(Watched {
        fd: fd.as_raw_fd(),
        peer_state,
        event,
        peer,
        kind,
        every,
        woke: AtomicBool::new(false),
        sleeping: AtomicBool::new(false),
    });
    let now = Instant::now();
    WATCH.lock().push((watched.clone(), next_tick(now, every)));
    WATCH.registered.notify_one();
    Some(Registration(watched))
}

/// The watch thread's stack: it keeps a list, reads the clock and makes two
/// kinds of system call.
const STACK: usize = 64 << 10;

/// Starts the watch thread; when, or `None` if it cannot be started (the
/// ends then time their sleeps themselves).
fn start() -> Option<Instant> {
    let started = Instant::now();
    mmapkit_sys::process::on_fork_in_child(forked).ok()?;
    std::thread::Builder::new().name("mmapkit-shm-watch".into()).stack_size(STACK).spawn(|| WATCH.run()).ok()?;
    Some(started)
}

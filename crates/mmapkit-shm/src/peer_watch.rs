//! The peer watch: one thread per process that looks, for every end
//! waiting, whether the other side is still alive, and wakes the end when it
//! is not.
//!
//! It is what lets a blocked end sleep on its futex with no timeout, where a
//! timed futex wait would arm and cancel a timer on every sleep (what that
//! costs is in docs/performance.md, "The peer watch"), and what makes an
//! end's readiness descriptor readable when its peer dies (see
//! `crate::readiness`): an end waiting without a deadline sleeps until a
//! message, room, or the watch wakes it. The timers are the watch's own:
//! ends with the same peer check share its ticks, and an end is looked at
//! only while it waits.
//!
//! Each end gives the watch its own look (a channel end's reads the state
//! word, then the kernel's byte-range locks, so a peer cannot fake being
//! alive after it died). What the watch finds is only a reason to wake: the
//! woken end looks again itself before it reports its peer gone.
//!
//! An end registers when it attaches (or asks for readiness) and leaves in
//! its `Drop`, before its region is unmapped; the watch holds the registry's
//! lock while it runs an end's look. The thread inherits the CPU affinity and
//! scheduling of the thread that registers the process's first end. In a
//! child made by `fork` (no watch thread there; a `pthread_atfork` handler
//! tells), and if the thread cannot be started, blocked ends fall back to
//! timed sleeps, and readiness descriptors are not told of a peer's death.
//! Two forks escape that: one made by a raw `clone` or `_Fork`, which skip
//! the handlers (an end carried into such a child sleeps untimed with nobody
//! watching its peer), and one made by another thread while the first end
//! is starting the watch (the child then waits for good at its first
//! attach, for a start that has no thread in it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::bell::Doorbell;
use crate::clock::later;
use crate::event::Event;

/// An end's look at its peer: whether the peer is still there.
pub(crate) type Look = Box<dyn FnMut() -> bool + Send>;

/// How the watch wakes an end whose peer it found gone.
pub(crate) enum Wake {
    /// Notify the event the end sleeps on (a pointer into its mapping).
    Event(*const Event),
    /// Ring the end's readiness bell.
    Bell(Arc<Doorbell>),
}

/// What the watch needs to look at one end's peer and wake the end.
pub(crate) struct Watched {
    look: Mutex<Look>,
    wake: Wake,
    every: Duration,
    /// Set by the watch when its look found the peer gone; taken by the end.
    woke: AtomicBool,
    /// Set by the end while it waits: the watch looks only at waiters.
    sleeping: AtomicBool,
    /// Set by an end whose bell found no free slot: the watch then rings it
    /// at every look, whatever the peer.
    polled: AtomicBool,
}

// SAFETY: the event pointer reaches an Event in a shared mapping, which any
// thread may touch, and the look reaches only what its end keeps alive; the
// end that made the Watched keeps those alive until it has removed the
// Watched from the registry, and the watch touches them only under the
// registry's lock.
unsafe impl Send for Watched {}
// SAFETY: as above; the look is behind a mutex, everything else is read-only after construction or atomic.
unsafe impl Sync for Watched {}

impl Watched {
    /// Whether the watch woke this end since the last call; clears it.
    pub(crate) fn take_wake(&self) -> bool {
        self.woke.swap(false, Ordering::AcqRel)
    }

    /// Whether the watch woke this end (a condition to sleep on).
    pub(crate) fn woken(&self) -> bool {
        self.woke.load(Ordering::Acquire)
    }

    /// Marks the end waiting (or not): the watch looks at its peer only
    /// while it waits, so idle ends cost nothing.
    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }

    /// Asks the watch to ring the end's bell at every look (or no more).
    pub(crate) fn set_polled(&self, polled: bool) {
        self.polled.store(polled, Ordering::SeqCst);
    }

    /// Looks at the peer; on anything but "here", wakes the end. A bell is
    /// rung once per wait.
    ///
    /// # Safety
    ///
    /// The end that registered `self` has not yet removed it (so what its
    /// look and wake reach is alive).
    unsafe fn look(&self) {
        let polled = matches!(self.wake, Wake::Bell(_)) && self.polled.load(Ordering::SeqCst);
        // A look that panicked left nothing half done: its lock is still good.
        if !polled && (self.look.lock().unwrap_or_else(|p| p.into_inner()))() {
            return;
        }
        self.woke.store(true, Ordering::Release);
        match &self.wake {
            // SAFETY: the caller promises the mapping is alive.
            Wake::Event(event) => unsafe { &**event }.notify_all(),
            Wake::Bell(bell) => {
                self.sleeping.store(false, Ordering::SeqCst);
                let _ = bell.ring_here();
            }
        }
    }
}

/// An end's place in the watch; leaving it (on drop) happens under the
/// registry's lock, so the watch never touches the end's memory afterwards.
pub(crate) struct Registration(Arc<Watched>);

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
pub(crate) fn watching_here() -> bool {
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

/// Registers an end with the process's watch, starting its thread on
/// first use: every `every` while the end waits, the watch runs `look`, and
/// wakes the end as `wake` says when it returns false. `None` where there is
/// no watch (a forked child, or a thread that could not start).
///
/// # Safety
///
/// What `look` and `wake` reach stays valid until the returned registration
/// is dropped.
pub(crate) unsafe fn register(look: Look, wake: Wake, every: Duration) -> Option<Registration> {
    if !watching_here() {
        return None;
    }
    let every = every.max(MIN_PERIOD);
    let watched = Arc::new(Watched {
        look: Mutex::new(look),
        wake,
        every,
        woke: AtomicBool::new(false),
        sleeping: AtomicBool::new(false),
        polled: AtomicBool::new(false),
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

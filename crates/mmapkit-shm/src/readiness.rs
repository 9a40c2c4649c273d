//! A descriptor that becomes readable when a message arrives, for a
//! subscriber or receiver to fit an epoll, kqueue or mio loop: an eventfd
//! on Linux, a pipe elsewhere.
//!
//! The other side is another process, which cannot write a descriptor of
//! this one; so a thread of this process (one per end that asks, named
//! `mmapkit-shm-ready`) sleeps on the end's futex event and signals the
//! descriptor when a new message is waiting, and when the other side is
//! gone (looked at every peer check). Contract for the loop: when the
//! descriptor is readable, clear it first, then receive until the end says
//! it is empty; a message that arrives after the clearing signals it again.
//!
//! A gated bridge (a sender's, waiting for room) watches only while it is
//! armed: [`Bridge::arm`] gives it the token last seen (the receiver's
//! head), and its thread sleeps on the event until the token changes, then
//! signals once and disarms. Unarmed, the thread is parked and off the
//! event's waiter count, so the other side's notifies cost it nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mmapkit_sys::notify_fd::NotifyFd;

use crate::event::Event;

/// A pointer into a shared mapping, for the readiness thread.
pub(crate) struct MapPtr<T>(pub *const T);

// SAFETY: a MapPtr points at atomics or an Event in a shared mapping, which
// any thread may touch; the end that starts a Bridge keeps the mapping alive
// until the Bridge (and its thread) is gone.
unsafe impl<T> Send for MapPtr<T> {}

impl<T> MapPtr<T> {
    /// The value pointed at.
    ///
    /// # Safety
    /// The mapping is still alive (the Bridge that holds this is not dropped).
    pub(crate) unsafe fn get(&self) -> &T {
        // SAFETY: per the caller.
        unsafe { &*self.0 }
    }
}

/// What the readiness thread looks at.
pub(crate) struct Probe {
    /// A token of what is waiting (one that changes with each new message,
    /// such as the tail), or `None` when nothing is.
    pub pending: Box<dyn FnMut() -> Option<u64> + Send>,
    /// Whether the other side is gone (may make a system call).
    pub gone: Box<dyn FnMut() -> bool + Send>,
    /// How often to look at `gone`.
    pub every: Duration,
}

/// What arms a gated bridge: whether it watches, and the token it watches
/// for a change of.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    token: AtomicU64,
    /// Signal also when an armed wait passes `every` with no change, so that
    /// the end looks again (for room held by another sender of a
    /// many-to-many ring, which frees no event when it commits).
    retry: bool,
}

/// The descriptor and the thread that signals it.
pub(crate) struct Bridge {
    notify: Arc<NotifyFd>,
    stop: Arc<AtomicBool>,
    event: MapPtr<Event>,
    // Gated bridges are a sender's, awaited only with the `tokio` feature.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    gate: Option<Arc<Gate>>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the thread, which sleeps on `event` (the one the other side
    /// notifies when it sends).
    ///
    /// # Safety
    /// `event`, and everything `probe` reaches, stays mapped until the
    /// returned Bridge is dropped.
    pub(crate) unsafe fn start(event: &Event, probe: Probe) -> io::Result<Bridge> {
        // SAFETY: per the caller.
        unsafe { Bridge::spawn(event, probe, None) }
    }

    /// Starts a gated bridge: its thread watches `event` only while armed
    /// (see [`arm`](Self::arm)), for `probe.pending` to differ from the
    /// token it was armed with, or the other side to be gone; with `retry`,
    /// also when an armed wait lasts `probe.every`.
    ///
    /// # Safety
    /// As for [`start`](Self::start).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) unsafe fn start_gated(event: &Event, probe: Probe, retry: bool) -> io::Result<Bridge> {
        let gate = Arc::new(Gate { retry, ..Gate::default() });
        // SAFETY: per the caller.
        unsafe { Bridge::spawn(event, probe, Some(gate)) }
    }

    /// # Safety
    /// As for [`start`](Self::start).
    unsafe fn spawn(event: &Event, mut probe: Probe, gate: Option<Arc<Gate>>) -> io::Result<Bridge> {
        let notify = Arc::new(NotifyFd::new()?);
        let stop = Arc::new(AtomicBool::new(false));
        let event_ptr = MapPtr(event as *const Event);
        let (thread_notify, thread_stop, thread_event) = (notify.clone(), stop.clone(), MapPtr(event_ptr.0));
        let thread_gate = gate.clone();
        let thread =
            std::thread::Builder::new().name("mmapkit-shm-ready".into()).stack_size(64 << 10).spawn(move || {
                // SAFETY: the Bridge joins this thread before it is dropped, and the mapping outlives the Bridge.
                let event = unsafe { thread_event.get() };
                match thread_gate {
                    Some(gate) => watch_when_armed(event, &mut probe, &gate, &thread_stop, &thread_notify),
                    None => watch(event, &mut probe, &thread_stop, &thread_notify),
                }
            })?;
        Ok(Bridge { notify, stop, event: event_ptr, gate, thread: Some(thread) })
    }

    /// Arms a gated bridge with `token`, the value of its probe's `pending`
    /// that the end last saw: the descriptor is signalled once it changes
    /// (at once if it already has). Nothing for an ungated one.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn arm(&self, token: u64) {
        let (Some(gate), Some(thread)) = (&self.gate, &self.thread) else { return };
        gate.token.store(token, Ordering::SeqCst);
        gate.armed.store(true, Ordering::SeqCst);
        thread.thread().unpark();
    }

    /// Drains the descriptor.
    pub(crate) fn clear(&self) -> io::Result<()> {
        self.notify.clear()
    }
}

impl AsFd for Bridge {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.notify.as_fd()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // SAFETY: the end that owns the Bridge drops it while the mapping is alive.
        unsafe { self.event.get() }.notify_all();
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// An ungated bridge's thread: signals each new token of `pending`, and the
/// other side's going.
fn watch(event: &Event, probe: &mut Probe, stop: &AtomicBool, notify: &NotifyFd) {
    let mut last = None;
    let mut told_gone = false;
    while !stop.load(Ordering::SeqCst) {
        let now = (probe.pending)();
        if now.is_some() && now != last {
            let _ = notify.signal();
            last = now;
        }
        let woke = event.wait_until(
            || {
                stop.load(Ordering::SeqCst) || {
                    let now = (probe.pending)();
                    now.is_some() && now != last
                }
            },
            Some(probe.every),
        );
        if !woke && !told_gone && (probe.gone)() {
            let _ = notify.signal();
            told_gone = true;
        }
    }
}

/// A gated bridge's thread: parked until armed, then asleep on `event`
/// until the token changes (or the other side is gone, or with `retry` the
/// wait lasts `every`), when it signals once and disarms.
fn watch_when_armed(event: &Event, probe: &mut Probe, gate: &Gate, stop: &AtomicBool, notify: &NotifyFd) {
    while !stop.load(Ordering::SeqCst) {
        if !gate.armed.load(Ordering::SeqCst) {
            // Woken by `arm` and by the Bridge's drop; a spurious wake-up loops.
            std::thread::park();
            continue;
        }
        let token = gate.token.load(Ordering::SeqCst);
        let every = probe.every;
        let changed = |probe: &mut Probe| (probe.pending)() != Some(token);
        let woke = event.wait_until(
            || stop.load(Ordering::SeqCst) || !gate.armed.load(Ordering::SeqCst) || changed(probe),
            Some(every),
        );
        let tell = if woke { changed(probe) } else { gate.retry || changed(probe) || (probe.gone)() };
        if tell && gate.armed.swap(false, Ordering::SeqCst) {
            let _ = notify.signal();
        }
    }
}

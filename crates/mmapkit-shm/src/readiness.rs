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

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// The descriptor and the thread that signals it.
pub(crate) struct Bridge {
    notify: Arc<NotifyFd>,
    stop: Arc<AtomicBool>,
    event: MapPtr<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the thread, which sleeps on `event` (the one the other side
    /// notifies when it sends).
    ///
    /// # Safety
    /// `event`, and everything `probe` reaches, stays mapped until the
    /// returned Bridge is dropped.
    pub(crate) unsafe fn start(event: &Event, mut probe: Probe) -> io::Result<Bridge> {
        let notify = Arc::new(NotifyFd::new()?);
        let stop = Arc::new(AtomicBool::new(false));
        let event_ptr = MapPtr(event as *const Event);
        let (thread_notify, thread_stop, thread_event) = (notify.clone(), stop.clone(), MapPtr(event_ptr.0));
        let thread =
            std::thread::Builder::new().name("mmapkit-shm-ready".into()).stack_size(64 << 10).spawn(move || {
                // SAFETY: the Bridge joins this thread before it is dropped, and the mapping outlives the Bridge.
                let event = unsafe { thread_event.get() };
                let mut last = None;
                let mut told_gone = false;
                while !thread_stop.load(Ordering::SeqCst) {
                    let now = (probe.pending)();
                    if now.is_some() && now != last {
                        let _ = thread_notify.signal();
                        last = now;
                    }
                    let woke = event.wait_until(
                        || {
                            thread_stop.load(Ordering::SeqCst) || {
                                let now = (probe.pending)();
                                now.is_some() && now != last
                            }
                        },
                        Some(probe.every),
                    );
                    if !woke && !told_gone && (probe.gone)() {
                        let _ = thread_notify.signal();
                        told_gone = true;
                    }
                }
            })?;
        Ok(Bridge { notify, stop, event: event_ptr, thread: Some(thread) })
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
            let _ = thread.join();
        }
    }
}

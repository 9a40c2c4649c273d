//! A descriptor that becomes readable when a message (or room, or a
//! response) is waiting, for an end to fit an epoll, kqueue or mio loop or
//! an async runtime, with no thread per end.
//!
//! The descriptor is the end's bell (a named FIFO, see `crate::bell`). While
//! the end waits, its bell's number sits in a slot of the shared memory, and
//! the peer process that sends (frees room, responds) rings it there, one
//! byte per wait: no thread of the waiting process is in between. An end
//! arms its bell when it asks for the descriptor and each time it clears it,
//! and rings it itself if what it waits for is already there, so the
//! descriptor is readable while something is waiting. That the peer is gone
//! is found by the process's peer watch (one thread for every end of the
//! process, looking each peer check at the ends that wait), which rings the
//! bell. Contract for the loop: when the descriptor is readable, clear it
//! first, then receive until the end says it is empty; anything that comes
//! after the clearing rings it again.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::bell::{BellSlot, Doorbell};
use crate::peer_watch::{self, Look, Registration, Wake};

/// A pointer into a shared mapping, for a look that the peer watch runs.
pub(crate) struct MapPtr<T: ?Sized>(pub *const T);

// SAFETY: a MapPtr points at atomics in a shared mapping, which any thread
// may touch; whoever makes one keeps the mapping alive while it is used
// (the end drops its Readiness, and leaves the watch, before its mapping).
unsafe impl<T: ?Sized> Send for MapPtr<T> {}

impl<T: ?Sized> MapPtr<T> {
    /// The value pointed at.
    ///
    /// # Safety
    /// The mapping is still alive.
    pub(crate) unsafe fn get(&self) -> &T {
        // SAFETY: per the caller.
        unsafe { &*self.0 }
    }
}

/// An end's readiness descriptor: its bell, the slots it arms, and its place
/// in the peer watch.
pub(crate) struct Readiness {
    /// Out of the watch first: its look reads the mapping.
    watch: Option<Registration>,
    bell: Arc<Doorbell>,
    slots: MapPtr<[BellSlot]>,
}

impl Readiness {
    /// Makes the end's bell and arms it in one of `slots` (those of the
    /// end's side, which the peer rings). `here`, run by the peer watch every
    /// `every` while the end waits, says whether its peer is alive (`None`:
    /// no peer to wait on). The caller then looks at what the end waits for
    /// and rings the bell itself ([`ring_here`](Self::ring_here)) if it is
    /// there already; after that the loop's contract covers it (what is
    /// there when the descriptor is cleared, the loop receives).
    ///
    /// # Safety
    /// `slots`, and everything `here` reaches, stay mapped until
    /// the returned Readiness is dropped.
    pub(crate) unsafe fn start(slots: &[BellSlot], here: Option<Look>, every: Duration) -> io::Result<Readiness> {
        let bell = Arc::new(Doorbell::new()?);
        let watch = here.and_then(|here| {
            // SAFETY: per the caller, what the look reaches outlives the Readiness, which drops the registration
            // first; the bell is the Readiness's own.
            unsafe { peer_watch::register(here, Wake::Bell(bell.clone()), every) }
        });
        let readiness = Readiness { watch, bell, slots: MapPtr(slots as *const [BellSlot]) };
        readiness.arm()?;
        Ok(readiness)
    }

    fn slots(&self) -> &[BellSlot] {
        // SAFETY: the slots stay mapped while this Readiness lives (the contract of `start`).
        unsafe { self.slots.get() }
    }

    /// Arms the bell for the next ring. An end whose side's slots are all
    /// taken is rung by the peer watch at each of its looks instead.
    pub(crate) fn arm(&self) -> io::Result<()> {
        let slotted = self.bell.arm(self.slots());
        if let Some(watch) = &self.watch {
            watch.set_polled(!slotted);
            watch.set_sleeping(true);
        } else if !slotted {
            // Nobody would ring it: the end looks again.
            return self.bell.ring_here();
        }
        Ok(())
    }

    /// The bell's number.
    pub(crate) fn id(&self) -> u64 {
        self.bell.id()
    }

    /// Makes the descriptor readable (for what was there before the first
    /// arming).
    pub(crate) fn ring_here(&self) -> io::Result<()> {
        self.bell.ring_here()
    }

    /// Drains the descriptor and arms the bell again.
    pub(crate) fn clear(&self) -> io::Result<()> {
        self.bell.clear()?;
        self.arm()
    }

    /// Drains the descriptor only (an end that arms when it finds nothing).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn drain(&self) -> io::Result<()> {
        self.bell.clear()
    }
}

impl AsFd for Readiness {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.bell.as_fd()
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.watch = None;
        self.bell.disarm(self.slots());
    }
}

/// An end's readiness descriptor, made on the end's first ask.
#[derive(Default)]
pub(crate) struct ReadinessCell(Option<Readiness>);

impl ReadinessCell {
    /// The descriptor, made by `start` if there is none yet.
    pub(crate) fn fd<E>(&mut self, start: impl FnOnce() -> Result<Readiness, E>) -> Result<BorrowedFd<'_>, E> {
        let readiness = match self.0.take() {
            Some(readiness) => readiness,
            None => start()?,
        };
        let readiness: &Readiness = self.0.insert(readiness);
        Ok(readiness.as_fd())
    }

    /// [`Readiness::clear`], if there is a descriptor.
    pub(crate) fn clear(&self) -> io::Result<()> {
        self.0.as_ref().map_or(Ok(()), Readiness::clear)
    }

    /// [`Readiness::drain`], if there is a descriptor.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn drain(&self) -> io::Result<()> {
        self.0.as_ref().map_or(Ok(()), Readiness::drain)
    }

    /// [`Readiness::arm`], if there is a descriptor.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn arm(&self) -> io::Result<()> {
        self.0.as_ref().map_or(Ok(()), Readiness::arm)
    }

    /// Drops the descriptor (before the end's mapping goes).
    pub(crate) fn close(&mut self) {
        self.0 = None;
    }
}

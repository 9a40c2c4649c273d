//! `ShmMutex<T>`: a value behind a cross-process mutex that survives its
//! owner's death (glibc's robust, process-shared pthread mutex). The next
//! locker is told the owner died and decides whether the value is consistent.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use mmapkit_sys::robust_mutex::{LockOutcome, RawRobustMutex};
use zerocopy::{FromBytes, KnownLayout};

use crate::error::{Content, LockError, Op, Result, ShmError};
use crate::layout::Layout;
use crate::region::{Region, RegionOptions};

#[repr(C)]
struct Slot<T> {
    mutex: RawRobustMutex,
    value: UnsafeCell<T>,
}

/// A `T` in its own shared region, behind a robust cross-process mutex.
///
/// `T: FromBytes` means any bytes a peer (or a dying owner, mid-update) left
/// behind are still a valid `T`; whether they are a *consistent* one is what
/// [`ShmGuard::previous_owner_died`] asks you to decide.
pub struct ShmMutex<T> {
    region: Region,
    _type: PhantomData<T>,
}

// SAFETY: the mutex serialises access to the value across threads and
// processes, as std's Mutex<T> does for T: Send.
unsafe impl<T: Send> Sync for ShmMutex<T> {}
// SAFETY: the handle owns its mapping; the value may move to another thread's use.
unsafe impl<T: Send> Send for ShmMutex<T> {}

impl<T> std::fmt::Debug for ShmMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmMutex").field("region", &self.region).finish()
    }
}

impl<T: FromBytes + KnownLayout + Send> ShmMutex<T> {
    fn layout(type_name: &str) -> Layout {
        Layout::of::<Slot<T>>(&format!("ShmMutex<{type_name}>"))
    }

    fn init(initial: T) -> impl FnOnce(*mut u8) {
        move |payload| {
            let slot = payload.cast::<Slot<T>>();
            // SAFETY: the payload is zeroed, large and aligned enough for a Slot<T> (checked by the layout), and
            // unpublished, so no other thread or process uses the mutex yet.
            unsafe {
                (*slot).value.get().write(initial);
                let _ = (*slot).mutex.init();
            }
        }
    }

    fn from_region(region: Region) -> Result<Self> {
        const { assert!(align_of::<Slot<T>>() <= 128) };
        if region.payload_len() < size_of::<Slot<T>>() {
            return Err(ShmError::TooSmall {
                region: region.describe(),
                len: region.payload_len() as u64,
                what: Content::Mutex,
                need: size_of::<Slot<T>>() as u64,
            });
        }
        Ok(ShmMutex { region, _type: PhantomData })
    }

    /// Creates the named region with `initial` behind a new mutex.
    ///
    /// # Safety
    /// Every process that opens the region must reach the value only through
    /// this type's lock (mmapkit-shm processes do).
    pub unsafe fn create_named(name: &str, type_name: &str, options: &RegionOptions, initial: T) -> Result<Self> {
        let layout = Self::layout(type_name);
        Self::from_region(Region::create_named(name, layout, size_of::<Slot<T>>(), options, Self::init(initial))?)
    }

    /// Opens the named region and checks it holds this mutex type.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_named(name: &str, type_name: &str, options: &RegionOptions) -> Result<Self> {
        Self::from_region(Region::open_named(name, Self::layout(type_name), options)?)
    }

    /// Creates the region in a new file at `path`.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn create_file(path: &Path, type_name: &str, options: &RegionOptions, initial: T) -> Result<Self> {
        let layout = Self::layout(type_name);
        Self::from_region(Region::create_file(path, layout, size_of::<Slot<T>>(), options, Self::init(initial))?)
    }

    /// Opens the region in the file at `path`.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_file(path: &Path, type_name: &str, options: &RegionOptions) -> Result<Self> {
        Self::from_region(Region::open_file(path, Self::layout(type_name), options)?)
    }

    fn slot(&self) -> &Slot<T> {
        // SAFETY: the payload holds a Slot<T> (size checked, aligned to 128) that stays mapped while `self` lives;
        // the mutex is initialised before the region is published.
        unsafe { &*self.region.payload_ptr().cast::<Slot<T>>() }
    }

    fn take(&self, timeout: Option<Duration>) -> Result<Option<ShmGuard<'_, T>>, LockError> {
        let slot = self.slot();
        // SAFETY: the mutex was initialised by the creator before publishing.
        let outcome = unsafe { slot.mutex.lock(timeout) };
        let outcome = outcome.map_err(|error| LockError::Os { op: Op::Lock, region: self.region.describe(), error })?;
        let owner_died = match outcome {
            LockOutcome::Acquired => false,
            LockOutcome::OwnerDied => true,
            LockOutcome::Busy => return Ok(None),
            LockOutcome::NotRecoverable => return Err(LockError::NotRecoverable { region: self.region.describe() }),
        };
        Ok(Some(ShmGuard { mutex: self, owner_died, _not_send: PhantomData }))
    }

    /// Locks, waiting as long as it takes.
    pub fn lock(&self) -> Result<ShmGuard<'_, T>, LockError> {
        self.take(None)?.ok_or(LockError::Timeout(Duration::MAX))
    }

    /// Locks if no one holds the lock now.
    pub fn try_lock(&self) -> Result<Option<ShmGuard<'_, T>>, LockError> {
        self.take(Some(Duration::ZERO))
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ShmGuard<'_, T>, LockError> {
        self.take(Some(timeout))?.ok_or(LockError::Timeout(timeout))
    }

    /// The region underneath.
    pub fn region(&self) -> &Region {
        &self.region
    }
}

/// The lock, held; unlocks on drop.
///
/// If [`previous_owner_died`](Self::previous_owner_died), the value may be
/// half-updated: repair or reset it, then call
/// [`make_consistent`](Self::make_consistent). Unlocking without doing so
/// marks the mutex unusable for everyone ([`LockError::NotRecoverable`]), as
/// POSIX prescribes.
pub struct ShmGuard<'a, T: FromBytes + KnownLayout + Send> {
    mutex: &'a ShmMutex<T>,
    owner_died: bool,
    /// A pthread mutex must be unlocked by the thread that locked it.
    _not_send: PhantomData<*const ()>,
}

impl<T: FromBytes + KnownLayout + Send> ShmGuard<'_, T> {
    /// Whether the previous owner died holding the lock.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declares the value consistent again after an owner's death.
    pub fn make_consistent(&mut self) -> Result<(), LockError> {
        if self.owner_died {
            // SAFETY: this thread holds the mutex, taken with OwnerDied.
            unsafe { self.mutex.slot().mutex.make_consistent() }.map_err(|error| LockError::Os {
                op: Op::Recover,
                region: self.mutex.region.describe(),
                error,
            })?;
            self.owner_died = false;
        }
        Ok(())
    }
}

impl<T: FromBytes + KnownLayout + Send> std::fmt::Debug for ShmGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmGuard").field("previous_owner_died", &self.owner_died).finish_non_exhaustive()
    }
}

impl<T: FromBytes + KnownLayout + Send> Deref for ShmGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: holding the lock gives exclusive access across processes.
        unsafe { &*self.mutex.slot().value.get() }
    }
}

impl<T: FromBytes + KnownLayout + Send> DerefMut for ShmGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut *self.mutex.slot().value.get() }
    }
}

impl<T: FromBytes + KnownLayout + Send> Drop for ShmGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this thread holds the mutex (the guard is not Send).
        let _ = unsafe { self.mutex.slot().mutex.unlock() };
    }
}

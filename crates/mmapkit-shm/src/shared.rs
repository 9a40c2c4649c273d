//! `Shared<T>`: a value of a `#[repr(C)]` type placed in a region and reached
//! from every process that opens it.

use std::marker::PhantomData;
use std::ops::Deref;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::Path;

use zerocopy::{FromBytes, KnownLayout};

use crate::error::{Content, Result, ShmError};
use crate::layout::Layout;
use crate::region::{Region, RegionOptions};

/// A `T` in shared memory.
///
/// `T: FromBytes` (derive it with zerocopy) proves that every bit pattern is a
/// valid `T`, so whatever a peer writes, this process never sees an invalid
/// value; `Sync` that `&T` may be shared. Build `T` from atomics, [`Event`]s
/// and plain data that is written before the region is published.
///
/// [`Event`]: crate::Event
pub struct Shared<T> {
    region: Region,
    _type: PhantomData<T>,
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("region", &self.region).finish()
    }
}

fn check_fits<T>(region: Region) -> Result<Region> {
    const { assert!(align_of::<T>() <= 128, "shared types may be aligned to at most 128 bytes") };
    if region.payload_len() < size_of::<T>() {
        return Err(ShmError::TooSmall {
            region: region.describe(),
            len: region.payload_len() as u64,
            what: Content::Value,
            need: size_of::<T>() as u64,
        });
    }
    Ok(region)
}

impl<T: FromBytes + KnownLayout + Sync> Shared<T> {
    fn from_region(region: Region) -> Result<Self> {
        Ok(Shared { region: check_fits::<T>(region)?, _type: PhantomData })
    }

    fn init_with(init: impl FnOnce(&T)) -> impl FnOnce(*mut u8) {
        move |payload| {
            // SAFETY: the payload is zeroed, at least size_of::<T>() bytes, aligned to 128 (>= align_of::<T>()),
            // and not yet published; a zeroed T is valid because T: FromBytes.
            init(unsafe { &*payload.cast::<T>() })
        }
    }

    /// Creates the named region holding a zeroed `T`, runs `init` on it, then
    /// publishes it. `type_name` goes into the layout fingerprint.
    ///
    /// # Safety
    /// Every process that opens the region must change `T` only through its
    /// interior mutability (atomics, [`Event`](crate::Event)): `&T` is handed
    /// out freely, so a plain write by a peer would be a data race.
    pub unsafe fn create_named(
        name: &str,
        type_name: &str,
        options: &RegionOptions,
        init: impl FnOnce(&T),
    ) -> Result<Self> {
        let region =
            Region::create_named(name, Layout::of::<T>(type_name), size_of::<T>(), options, Self::init_with(init))?;
        Self::from_region(region)
    }

    /// Opens the named region, waiting for it to be ready, and checks it holds `T`.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_named(name: &str, type_name: &str, options: &RegionOptions) -> Result<Self> {
        Self::from_region(Region::open_named(name, Layout::of::<T>(type_name), options)?)
    }

    /// Opens the named region if it exists, or creates it holding a zeroed
    /// `T` that `init` sets up (reclaiming a stale name, as
    /// [`Region::create_named`] says); `region().created()` tells which.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_or_create_named(
        name: &str,
        type_name: &str,
        options: &RegionOptions,
        init: impl FnOnce(&T),
    ) -> Result<Self> {
        let region = Region::open_or_create_named(
            name,
            Layout::of::<T>(type_name),
            size_of::<T>(),
            options,
            Self::init_with(init),
        )?;
        Self::from_region(region)
    }

    /// Creates the region in a new file at `path`.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn create_file(
        path: &Path,
        type_name: &str,
        options: &RegionOptions,
        init: impl FnOnce(&T),
    ) -> Result<Self> {
        let region =
            Region::create_file(path, Layout::of::<T>(type_name), size_of::<T>(), options, Self::init_with(init))?;
        Self::from_region(region)
    }

    /// Opens the region in the file at `path`.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_file(path: &Path, type_name: &str, options: &RegionOptions) -> Result<Self> {
        Self::from_region(Region::open_file(path, Layout::of::<T>(type_name), options)?)
    }

    /// Creates an anonymous, sealed region, to be passed with [`Region::send`].
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn create_memfd(type_name: &str, init: impl FnOnce(&T)) -> Result<Self> {
        Self::from_region(Region::create_memfd(Layout::of::<T>(type_name), size_of::<T>(), Self::init_with(init))?)
    }

    /// Receives a region sent with [`Region::send`].
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    #[cfg(unix)]
    pub unsafe fn receive(socket: &UnixStream, type_name: &str, options: &RegionOptions) -> Result<Self> {
        Self::from_region(Region::receive(socket, Layout::of::<T>(type_name), options)?)
    }

    /// The region underneath.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The region underneath, to keep its name or send it.
    pub fn region_mut(&mut self) -> &mut Region {
        &mut self.region
    }
}

impl<T: FromBytes + KnownLayout + Sync> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the payload holds at least size_of::<T>() bytes (checked), is aligned for T, stays mapped while
        // `self` lives, and holds a valid T whatever its bits (T: FromBytes); peers mutate it only through
        // interior mutability (the constructors' contract).
        unsafe { &*self.region.payload_ptr().cast::<T>() }
    }
}

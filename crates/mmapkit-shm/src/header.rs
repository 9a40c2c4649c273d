//! The header at the start of every region: magic, format version, the layout
//! of what the region holds, the creator's pid, and an init state that an
//! opener waits on.
//!
//! A peer can write these bytes at any time, so they are read once each (with
//! volatile reads, into locals), validated, and only then used.

use std::ptr::{self, addr_of, addr_of_mut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Content, Result, ShmError};
use crate::layout::Layout;

/// The first eight bytes of every region.
pub(crate) const MAGIC: [u8; 8] = *b"MMAPKSHM";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Bytes reserved for the header; the payload starts here.
pub(crate) const HEADER_SIZE: usize = 128;

const UNINITIALISED: u32 = 0;
const INITIALISING: u32 = 1;
const READY: u32 = 2;
/// Set by a process reclaiming a stale region, before it removes the name:
/// an opener that finds it opens the name again.
const RECLAIMED: u32 = 3;

#[repr(C)]
pub(crate) struct Header {
    magic: [u8; 8],
    version: u32,
    state: AtomicU32,
    layout_size: u64,
    layout_align: u64,
    layout_hash: u64,
    payload_len: u64,
    creator_pid: u32,
}

const _: () = assert!(size_of::<Header>() <= HEADER_SIZE);

/// The header fields as read once from a region.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    pub magic: [u8; 8],
    pub version: u32,
    pub layout: Layout,
    pub payload_len: u64,
    pub creator_pid: u32,
}

/// The init state word.
///
/// # Safety
/// `header` must point into a live mapping at least `HEADER_SIZE` bytes long
/// that outlives every use of the returned reference.
unsafe fn state<'a>(header: *mut Header) -> &'a AtomicU32 {
    // SAFETY: per the caller; AtomicU32 tolerates concurrent writers.
    unsafe { &*addr_of!((*header).state) }
}

/// Writes a new header and marks it initialising.
///
/// # Safety
/// `header` must point to a writable mapping of at least `HEADER_SIZE` bytes.
pub(crate) unsafe fn begin(header: *mut Header, layout: Layout, payload_len: u64, creator_pid: u32) {
    // SAFETY: per the caller.
    unsafe { state(header) }.store(INITIALISING, Ordering::Release);
    // SAFETY: per the caller, every field lies in writable mapped memory; volatile writes because other processes
    // may be reading.
    unsafe {
        ptr::write_volatile(addr_of_mut!((*header).magic), MAGIC);
        ptr::write_volatile(addr_of_mut!((*header).version), VERSION);
        ptr::write_volatile(addr_of_mut!((*header).layout_size), layout.size);
        ptr::write_volatile(addr_of_mut!((*header).layout_align), layout.align);
        ptr::write_volatile(addr_of_mut!((*header).layout_hash), layout.name_hash);
        ptr::write_volatile(addr_of_mut!((*header).payload_len), payload_len);
        ptr::write_volatile(addr_of_mut!((*header).creator_pid), creator_pid);
    }
}

/// Marks the header ready and wakes every process waiting for it.
///
/// # Safety
/// `header` must point to a writable mapping of at least `HEADER_SIZE` bytes.
pub(crate) unsafe fn publish(header: *mut Header) {
    // SAFETY: per the caller.
    let state = unsafe { state(header) };
    state.store(READY, Ordering::Release);
    let _ = mmapkit_sys::wait::wake(state, u32::MAX);
}

/// Marks the header reclaimed and wakes every process waiting on it.
///
/// # Safety
/// `header` must point to a writable mapping of at least `HEADER_SIZE` bytes.
pub(crate) unsafe fn retire(header: *mut Header) {
    // SAFETY: per the caller.
    let state = unsafe { state(header) };
    state.store(RECLAIMED, Ordering::Release);
    let _ = mmapkit_sys::wait::wake(state, u32::MAX);
}

/// Reads every field once.
///
/// # Safety
/// `header` must point to a readable mapping of at least `HEADER_SIZE` bytes.
pub(crate) unsafe fn read(header: *const Header) -> Snapshot {
    // SAFETY: per the caller; volatile so each field is read exactly once.
    unsafe {
        Snapshot {
            magic: ptr::read_volatile(addr_of!((*header).magic)),
            version: ptr::read_volatile(addr_of!((*header).version)),
            layout: Layout {
                size: ptr::read_volatile(addr_of!((*header).layout_size)),
                align: ptr::read_volatile(addr_of!((*header).layout_align)),
                name_hash: ptr::read_volatile(addr_of!((*header).layout_hash)),
            },
            payload_len: ptr::read_volatile(addr_of!((*header).payload_len)),
            creator_pid: ptr::read_volatile(addr_of!((*header).creator_pid)),
        }
    }
}

/// Waits until the creator has published the header, then validates it
/// against `layout` and the region's real length.
///
/// # Safety
/// `header` must point to a mapping of at least `HEADER_SIZE` bytes that
/// stays mapped during the call.
pub(crate) unsafe fn wait_ready(
    header: *mut Header,
    region: &str,
    layout: Layout,
    region_len: u64,
    timeout: Duration,
) -> Result<Snapshot> {
    let start = Instant::now();
    // SAFETY: per the caller.
    let state = unsafe { state(header) };
    loop {
        let now = state.load(Ordering::Acquire);
        if now == READY {
            break;
        }
        if now == RECLAIMED {
            return Err(ShmError::Reclaimed { region: region.to_owned() });
        }
        let waited = start.elapsed();
        if waited >= timeout {
            // SAFETY: per the caller.
            let creator = unsafe { read(header) }.creator_pid;
            return Err(ShmError::NotReady { region: region.to_owned(), waited, creator });
        }
        // Wake at least every 10 ms: a creator in another pid namespace, or one
        // that crashed, must not leave us asleep past the timeout.
        let nap = (timeout - waited).min(Duration::from_millis(10));
        if now == UNINITIALISED || now == INITIALISING {
            let _ = mmapkit_sys::wait::wait(state, now, Some(nap));
        } else {
            std::thread::sleep(nap);
        }
    }
    // SAFETY: per the caller.
    let snapshot = unsafe { read(header) };
    validate(&snapshot, region, layout, region_len)?;
    Ok(snapshot)
}

/// Checks a header snapshot: magic, version, layout, and a payload that fits.
pub(crate) fn validate(snapshot: &Snapshot, region: &str, layout: Layout, region_len: u64) -> Result<()> {
    let region = region.to_owned();
    if snapshot.magic != MAGIC {
        return Err(ShmError::BadMagic { region, found: snapshot.magic });
    }
    if snapshot.version != VERSION {
        return Err(ShmError::BadVersion { region, found: snapshot.version, expected: VERSION });
    }
    if snapshot.layout != layout {
        return Err(ShmError::WrongLayout { region, expected: layout, found: snapshot.layout });
    }
    let need = (HEADER_SIZE as u64).saturating_add(snapshot.payload_len);
    if need > region_len {
        return Err(ShmError::TooSmall { region, len: region_len, what: Content::DeclaredPayload, need });
    }
    Ok(())
}

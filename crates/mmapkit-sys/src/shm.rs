//! POSIX shared-memory objects, and anonymous ones that only a descriptor
//! names: a sealed memfd on Linux and FreeBSD, an unlinked shared-memory
//! object on macOS (which has no memfd).

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::Mode;

use crate::os;

/// The name `shm_open` is given for the object a caller calls `name`. On
/// macOS, whose names are at most 31 bytes, a longer name becomes a short
/// one made of a hash of the whole name (`/mmk.` and 16 hex digits); every
/// process that asks for `name` reaches the same object. Elsewhere it is
/// `name` itself.
pub fn object_name(name: &str) -> Cow<'_, str> {
    match os::SHM_NAME_MAX {
        Some(max) if name.len() > max => Cow::Owned(format!("/mmk.{:016x}", fnv1a(name.as_bytes()))),
        _ => Cow::Borrowed(name),
    }
}

/// The 64-bit FNV-1a hash: short, stable across processes and builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Creates the shared-memory object `name` (see [`object_name`]) with
/// `O_CREAT | O_EXCL` and permission bits `mode`: an error if it exists.
pub fn create(name: &str, mode: u32) -> io::Result<OwnedFd> {
    open_object(name, true, mode)
}

/// Opens the existing shared-memory object `name` for reading and writing.
pub fn open(name: &str) -> io::Result<OwnedFd> {
    open_object(name, false, 0)
}

fn open_object(name: &str, create: bool, mode: u32) -> io::Result<OwnedFd> {
    let mut flags = rustix::shm::OFlags::RDWR;
    if create {
        flags |= rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL;
    }
    Ok(rustix::shm::open(object_name(name).as_ref(), flags, Mode::from_raw_mode(mode as _))?)
}

/// The directory where the OS shows its shared-memory objects as files
/// (`/dev/shm` on Linux); `None` where it shows them nowhere.
pub const SHM_DIR: Option<&str> = if cfg!(target_os = "linux") { Some("/dev/shm") } else { None };

/// The names (`/name`) of every shared-memory object the OS shows, sorted;
/// `Unsupported` where it shows them nowhere (macOS, FreeBSD).
pub fn names() -> io::Result<Vec<String>> {
    let dir = SHM_DIR.ok_or_else(|| crate::unsupported::Unsupported::error("a listing of shared-memory objects"))?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(format!("/{name}"));
        }
    }
    names.sort();
    Ok(names)
}

/// Removes the name of a shared-memory object; mappings of it stay valid.
pub fn unlink(name: &str) -> io::Result<()> {
    Ok(rustix::shm::unlink(object_name(name).as_ref())?)
}

/// A new anonymous shared-memory file of `len` bytes that cannot shrink, so
/// that a mapping of it never faults by truncation: a memfd sealed against
/// shrinking on Linux and FreeBSD; on macOS a shared-memory object (whose
/// size can be set only once) unlinked as soon as it is made. Only its
/// descriptor names it; `label` shows in tools where the OS keeps one.
pub fn anonymous(label: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = os::anonymous_shared(label)?;
    crate::file::set_len(fd.as_fd(), len)?;
    os::seal_shrink(fd.as_fd())?;
    Ok(fd)
}

/// Whether this OS can seal an anonymous shared-memory file against
/// shrinking (Linux, FreeBSD): where it cannot (macOS), a received one is
/// mapped under the fault guard instead.
pub const CAN_SEAL: bool = os::CAN_SEAL;

/// Whether the file can never shrink: a memfd sealed against shrinking
/// (`F_GET_SEALS`), or, on macOS, any shared-memory object once sized.
pub fn cannot_shrink(fd: BorrowedFd<'_>) -> io::Result<bool> {
    os::cannot_shrink(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_map_to_one_short_name_where_the_os_limits_them() {
        let long = format!("/{}", "x".repeat(200));
        let mapped = object_name(&long);
        match os::SHM_NAME_MAX {
            Some(max) => {
                assert!(mapped.len() <= max && mapped.starts_with("/mmk."), "{mapped}");
                assert_eq!(object_name(&long), mapped, "stable");
                assert_ne!(object_name(&format!("{long}y")), mapped);
            }
            None => assert_eq!(mapped, long.as_str()),
        }
        assert_eq!(object_name("/short"), "/short");
    }
}

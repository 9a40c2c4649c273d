//! The platform layer: the only code in mmapkit that calls the operating system.
//!
//! Everything above this module is written against the small interface below
//! (plain functions over file descriptors and raw address ranges), so another
//! operating system is one more file beside `linux.rs`. Each `unsafe fn` here
//! states the contract its caller must keep; each `unsafe` block inside says
//! why that contract, or the kernel's own guarantees, make the call sound.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("mmapkit supports Linux only for now; another OS would be one more file in sys/");

/// What a mapping's pages may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protection {
    /// No access at all: address space held in reserve.
    None,
    /// Reads only.
    Read,
    /// Reads and writes.
    ReadWrite,
}

/// Whether writes reach the backing object (and other processes) or stay private.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// `MAP_SHARED`: writes go to the file or shared memory object.
    Shared,
    /// `MAP_PRIVATE`: copy-on-write, writes stay in this process.
    Private,
}

/// Extra behaviour asked of `mmap`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Behavior {
    /// `MAP_POPULATE`: fault every page in before `mmap` returns.
    pub populate: bool,
    /// `MAP_NORESERVE`: do not reserve swap space for the mapping.
    pub no_reserve: bool,
    /// `MAP_HUGETLB` with this page size (log2 of bytes); anonymous maps only.
    pub huge_log2: Option<u8>,
}

/// The kind of object a file descriptor refers to, as far as mapping cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    BlockDevice,
    Directory,
    CharacterDevice,
    Fifo,
    Socket,
    Other,
}

impl FileKind {
    /// A noun phrase for error messages ("a directory").
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::BlockDevice => "a block device",
            FileKind::Directory => "a directory",
            FileKind::CharacterDevice => "a character device",
            FileKind::Fifo => "a pipe (FIFO)",
            FileKind::Socket => "a socket",
            FileKind::Other => "not a regular file",
        }
    }
}

/// The access mode a file descriptor was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

impl Access {
    pub(crate) fn can_read(self) -> bool {
        self != Access::WriteOnly
    }
    pub(crate) fn can_write(self) -> bool {
        self != Access::ReadOnly
    }
}

/// What mapping needs to know about an open file (one `fstat`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileInfo {
    pub kind: FileKind,
    /// Length in bytes (for a block device, the device size).
    pub len: u64,
}

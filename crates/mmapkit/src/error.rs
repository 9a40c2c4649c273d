//! The one error type: what was being done, to which file, and what went wrong.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The result type of mmapkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What mmapkit was doing when an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a file by path.
    Open,
    /// Creating a mapping.
    Map,
    /// Writing a mapping back to its file (`msync`).
    Flush,
    /// Changing a mapping's protection (`mprotect`).
    Protect,
    /// Giving advice (`madvise`).
    Advise,
    /// Locking or unlocking pages in memory (`mlock`).
    Lock,
    /// Asking which pages are resident (`mincore`).
    Residency,
    /// Growing a growable map and its file.
    Grow,
    /// Dropping a file from the page cache.
    Evict,
    /// Starting the write-back of a file's dirty pages.
    Writeback,
    /// Reading through a guarded mapping.
    Read,
    /// Writing through a guarded mapping.
    Write,
    /// Resizing a mapping.
    Resize,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Open => "cannot open",
            Operation::Map => "cannot map",
            Operation::Flush => "cannot flush",
            Operation::Protect => "cannot change protection of",
            Operation::Advise => "cannot advise",
            Operation::Lock => "cannot lock or unlock",
            Operation::Residency => "cannot read residency of",
            Operation::Grow => "cannot grow",
            Operation::Evict => "cannot evict",
            Operation::Writeback => "cannot start write-back of",
            Operation::Read => "cannot read",
            Operation::Write => "cannot write",
            Operation::Resize => "cannot resize",
        })
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system refused. Its message is part of this error's own
    /// (so it is not also given as the error's `source`, which would print
    /// it twice in a chain).
    #[error("{0}")]
    Os(io::Error),
    /// The requested range reaches past the end of the file (`len` 0: the
    /// offset itself is past it).
    #[error("{}", past_end(*offset, *len, *file_len))]
    PastEndOfFile {
        /// First byte asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// The file's length when it was mapped.
        file_len: u64,
    },
    /// The requested range lies outside the mapping.
    #[error(
        "bytes {offset}..{end} are outside the mapping ({map_len} bytes long)",
        end = *offset as u128 + *len as u128
    )]
    OutsideMapping {
        /// First byte asked for, relative to the mapping's start.
        offset: usize,
        /// Bytes asked for.
        len: usize,
        /// The mapping's length.
        map_len: usize,
    },
    /// An offset plus a length does not fit in this machine's address space.
    #[error("offset {offset} plus length {len} does not fit in the address space")]
    TooLarge {
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: u64,
    },
    /// The file is of a kind that cannot be mapped.
    #[error("it is {0}; only regular files and devices can be mapped")]
    NotMappable(&'static str),
    /// A map of a device needs a length, which the device cannot give.
    #[error("it is {0}, which has no length to map to: give one with MapOptions::len")]
    LengthRequired(&'static str),
    /// Anonymous memory of that size could not be had.
    #[error("{len} bytes of anonymous memory: {error}")]
    AnonymousMemory {
        /// The length asked for.
        len: usize,
        /// The operating system's refusal.
        error: io::Error,
    },
    /// A safe map was asked of a file whose bytes the OS does not keep from
    /// changing ([`MapOptions::map_if_safe`](crate::MapOptions::map_if_safe)).
    #[error(
        "its bytes may change while mapped: it is neither a memfd sealed against writes and shrinking nor an \
         fs-verity file (on {os}); map it with the unsafe MapOptions::map under its contract instead"
    )]
    MayChange {
        /// The operating system, for the message.
        os: &'static str,
    },
    /// The file descriptor does not allow the access the mapping needs.
    #[error("the file was opened {opened}, but {needed}")]
    AccessMode {
        /// How the file was opened ("write-only", "read-only").
        opened: &'static str,
        /// What the mapping needs.
        needed: &'static str,
    },
    /// A growable map was asked to grow beyond its reserved address space.
    #[error("{requested} bytes exceed the {reserved}-byte address range reserved for this map")]
    ReservationExceeded {
        /// The length asked for.
        requested: u64,
        /// The reservation's size.
        reserved: usize,
    },
    /// A growable map was asked for a length below its current one.
    #[error("{requested} bytes is less than the current {current}; growable maps only grow")]
    WouldShrink {
        /// The length asked for.
        requested: u64,
        /// The current length.
        current: usize,
    },
    /// A parameter is out of its allowed range.
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// The file's data was not there for a page the access needed: the file
    /// shrank, or its storage failed, while it was mapped.
    #[error("{0}")]
    Fault(crate::Fault),
    /// A map cannot grow where it is, and was not allowed to move.
    #[error("there is no room to grow it to {len} bytes where it is; allow it to move with RemapOptions::may_move")]
    NoRoomToGrow {
        /// The length asked for.
        len: usize,
    },
    /// This operating system does not offer what was asked for (the feature
    /// and the OS are named).
    #[error("{0}")]
    Unsupported(mmapkit_sys::Unsupported),
    /// A guarded map could not be made, because the fault guard could not
    /// keep its promise for it: a fault would kill the process.
    #[error("{0}")]
    GuardUnavailable(GuardProblem),
    /// A typed view of the map's bytes does not fit where it was asked for.
    #[error("{}", bad_view(type_name, *offset, *size, *align, problem))]
    BadView {
        /// The type asked for (`u32`, `[my::Header]`).
        type_name: &'static str,
        /// Where the view was to start, relative to the map's start.
        offset: usize,
        /// The view's size in bytes.
        size: u128,
        /// The alignment the type needs.
        align: usize,
        /// What is wrong.
        problem: ViewProblem,
    },
}

/// Why a typed view of a map's bytes cannot be had ([`ErrorKind::BadView`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViewProblem {
    /// The view would reach past the end of the map.
    PastEnd {
        /// The map's length.
        map_len: usize,
    },
    /// The view's first byte is not at an address the type's alignment allows.
    Misaligned {
        /// The address of the view's first byte.
        address: usize,
    },
}

/// The message of [`ErrorKind::BadView`].
fn bad_view(type_name: &str, offset: usize, size: u128, align: usize, problem: &ViewProblem) -> String {
    let view = format!("a {type_name} ({size} bytes, alignment {align}) at offset {offset}");
    match *problem {
        ViewProblem::PastEnd { map_len } => {
            let end = offset as u128 + size;
            format!("{view} would end at byte {end}, past the end of the map ({map_len} bytes long)")
        }
        ViewProblem::Misaligned { address } => {
            format!("{view} is misaligned: its address {address:#x} is not a multiple of {align}")
        }
    }
}

/// Why the fault guard cannot protect a new map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum GuardProblem {
    /// Another SIGBUS handler has been installed since the guard's. A fault
    /// reaches that handler first, which may not pass it on.
    #[error(
        "the fault guard's SIGBUS handler has been replaced by another one, so a file that shrank under the map \
         could kill the process; install other SIGBUS handlers before the first guarded map (the guard passes \
         them every signal that is not its own), or map with MapOptions::unguarded"
    )]
    HandlerReplaced,
    /// The calling thread blocks SIGBUS. A fault on a thread that blocks it
    /// never reaches a handler: the kernel ends the process.
    #[error(
        "this thread blocks SIGBUS, and a fault on a thread that blocks it kills the process whatever handler is \
         installed; unblock SIGBUS in threads that use guarded maps, or map with MapOptions::unguarded"
    )]
    SignalBlocked,
}

/// The message of [`ErrorKind::PastEndOfFile`].
fn past_end(offset: u64, len: u64, file_len: u64) -> String {
    if len == 0 {
        return format!("offset {offset} is past the end of the file ({file_len} bytes long)");
    }
    let end = u128::from(offset) + u128::from(len);
    format!("bytes {offset}..{end} are past the end of the file ({file_len} bytes long)")
}

impl ErrorKind {
    /// What an OS call's error means here: [`ErrorKind::Unsupported`] when
    /// the platform layer says the OS lacks the feature, else [`ErrorKind::Os`].
    pub(crate) fn os(err: io::Error) -> ErrorKind {
        match mmapkit_sys::Unsupported::of(&err) {
            Some(unsupported) => ErrorKind::Unsupported(unsupported),
            None => ErrorKind::Os(err),
        }
    }
}

/// An error from mmapkit: the operation, the file's path where known, and the cause.
///
/// Its message reads as one line a user can act on, for example
/// `cannot map /data/x.bin: bytes 0..8192 are past the end of the file (100 bytes long)`.
#[derive(Debug)]
pub struct Error {
    /// Boxed so that `Result<T, Error>` stays small on the success path.
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    op: Operation,
    path: Option<PathBuf>,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(op: Operation, kind: ErrorKind) -> Self {
        Error { inner: Box::new(Inner { op, path: None, kind }) }
    }

    pub(crate) fn os(op: Operation, err: io::Error) -> Self {
        Error::new(op, ErrorKind::os(err))
    }

    pub(crate) fn with_path(mut self, path: Option<PathBuf>) -> Self {
        self.inner.path = path;
        self
    }

    /// What mmapkit was doing.
    pub fn operation(&self) -> Operation {
        self.inner.op
    }

    /// The file involved, where known.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The operating system's error number, if the OS refused.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self.kind() {
            ErrorKind::Os(e) | ErrorKind::AnonymousMemory { error: e, .. } => e.raw_os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner { op, path, kind } = &*self.inner;
        match path {
            Some(path) => write!(f, "{op} {}: {kind}", path.display()),
            None => write!(f, "{op}: {kind}"),
        }
    }
}

/// The message is complete in one line: the operating system's words are
/// part of it, not a separate `source`.
impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind() {
            ErrorKind::Os(e) | ErrorKind::AnonymousMemory { error: e, .. } => e.kind(),
            ErrorKind::PastEndOfFile { .. } => io::ErrorKind::UnexpectedEof,
            ErrorKind::Fault(_) | ErrorKind::GuardUnavailable(_) => io::ErrorKind::Other,
            ErrorKind::NotMappable(_)
            | ErrorKind::AccessMode { .. }
            | ErrorKind::Unsupported(_)
            | ErrorKind::MayChange { .. } => io::ErrorKind::Unsupported,
            ErrorKind::ReservationExceeded { .. } => io::ErrorKind::OutOfMemory,
            ErrorKind::OutsideMapping { .. }
            | ErrorKind::TooLarge { .. }
            | ErrorKind::WouldShrink { .. }
            | ErrorKind::InvalidArgument(_)
            | ErrorKind::BadView { .. }
            | ErrorKind::LengthRequired(_) => io::ErrorKind::InvalidInput,
            ErrorKind::NoRoomToGrow { .. } => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, err)
    }
}

/// A conversion that failed and gave its map back unchanged, so nothing is lost.
///
/// Returned by [`MapMut::make_read_only`](crate::MapMut::make_read_only) and
/// [`Map::make_mut`](crate::Map::make_mut). It converts into [`Error`] for `?`.
#[derive(Debug)]
pub struct Unchanged<M> {
    /// The map, as it was before the attempt.
    pub map: M,
    /// Why the conversion failed.
    pub error: Error,
}

impl<M> fmt::Display for Unchanged<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<M: fmt::Debug> std::error::Error for Unchanged<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<M> From<Unchanged<M>> for Error {
    fn from(unchanged: Unchanged<M>) -> Error {
        unchanged.error
    }
}

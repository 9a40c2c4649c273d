//! One error type for every operation, with the context to act on it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the store. Each variant names what it was
/// about: the file, the page, the table, the size.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call on the database file failed.
    #[error("{path}: {op} failed: {error}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: IoOp,
        /// The operating system's error (its message is part of this error's
        /// own, so it is not also given as `source()`).
        error: io::Error,
    },
    /// Another handle (in this process or another) holds the writer's turn:
    /// it has a write transaction open, commits not yet durable, or a check
    /// running; or, for a handle that cannot use the lock file, the file is
    /// open elsewhere in a way that excludes it.
    #[error("{path}: the database is locked by another writer ({})", match pid {
        Some(pid) => format!("process {pid}"),
        None => "holder's pid unknown".to_string(),
    })]
    Locked {
        /// The database file.
        path: PathBuf,
        /// The process holding the lock, where it is known (Linux's
        /// `/proc/locks`, or the lock file's record of the writer).
        pid: Option<u32>,
    },
    /// The lock file beside the database (`<file>-lock`) cannot be used.
    #[error("{path}: {reason}")]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Every reader slot of the lock file is held by a live handle.
    #[error("{path}: all {slots} reader slots are held by open handles")]
    ReaderTableFull {
        /// The lock file.
        path: PathBuf,
        /// How many slots it has.
        slots: usize,
    },
    /// The file is not an mmapkit-db database, or no meta page can be trusted.
    #[error("{path}: not a usable database: {reason}")]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// Why: too short, wrong magic, both meta pages damaged...
        reason: String,
    },
    /// A page read back is not what the writer wrote: damage or truncation.
    #[error("{path}: page {page} is corrupt: {what}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The damaged page's number (a [`PageNo`](crate::PageNo)).
        page: u64,
        /// What was wrong with it.
        what: String,
    },
    /// The file lost data under the running process (truncated, or its storage
    /// failed): the access that hit the hole is refused instead of crashing.
    #[error("{path}: the file lost pages while open: {fault}")]
    Fault {
        /// The database file.
        path: PathBuf,
        /// Where the fault guard caught it.
        fault: mmapkit::Fault,
    },
    /// Mapping or growing the file failed.
    #[error(transparent)]
    Map(#[from] mmapkit::Error),
    /// No table by that name in this transaction's snapshot.
    #[error("no table named {0:?}")]
    TableNotFound(String),
    /// A table by that name exists already (the target of a rename).
    #[error("a table named {0:?} exists already")]
    TableExists(String),
    /// An entry given to a bulk load that cannot go in.
    #[error("bulk load into table {table:?}: entry {index} cannot go in: {why}")]
    BulkLoad {
        /// The table being loaded.
        table: String,
        /// The entry's position in the input, from 0.
        index: u64,
        /// What is wrong with it.
        why: String,
    },
    /// A typed table opened with other key or value types than it was
    /// created with.
    #[error("table {table:?} holds {stored} (key, value) but was opened as {requested}")]
    TableTypeMismatch {
        /// The table.
        table: String,
        /// The types it was created with (`bytes` for a table created raw).
        stored: String,
        /// The types it was opened as.
        requested: String,
    },
    /// A key or value that its type cannot encode.
    #[error("table {table:?}: cannot store {what}")]
    Encode {
        /// The table.
        table: String,
        /// What could not be encoded, and why.
        what: String,
    },
    /// Stored bytes that do not decode as the table's type (written through
    /// the raw API, or damaged).
    #[error("table {table:?}: stored bytes do not decode: {what}")]
    Decode {
        /// The table.
        table: String,
        /// What did not decode, and why.
        what: String,
    },
    /// A savepoint that cannot be restored.
    #[error("cannot restore the savepoint: {why}")]
    Savepoint {
        /// Why not.
        why: &'static str,
    },
    /// A table's sequence number is at `u64::MAX`: there is no next one.
    #[error("table {table:?}: its sequence number is {}, there is no next one", u64::MAX)]
    SequenceOverflow {
        /// The table.
        table: String,
    },
    /// A table name that is empty or longer than the limit.
    #[error("invalid table name {name:?}: {why}")]
    InvalidTableName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A key over the size limit.
    #[error("key of {len} bytes is over the limit of {max} bytes")]
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value over the size limit.
    #[error("value of {len} bytes is over the limit of {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A write, or a create, through a handle opened read-only.
    #[error("{path}: opened read-only")]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// An earlier commit failed while writing or syncing; what reached the disk
    /// is unknown, so this handle refuses further writes. Reopen the database:
    /// it recovers to the last durable commit.
    #[error("{path}: an earlier commit failed ({cause}); reopen the database to recover")]
    Poisoned {
        /// The database file.
        path: PathBuf,
        /// The failure that poisoned the handle.
        cause: String,
    },
}

impl Error {
    /// The error for I/O operation `op` on the file at `path` failing with `error`.
    pub(crate) fn io(path: &Path, op: IoOp, error: io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), op, error }
    }
}

/// The I/O operations on a database file that can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Opening the file.
    Open,
    /// Reading the file's metadata (its length).
    Stat,
    /// Taking the lock that keeps other openers out.
    Lock,
    /// Writing the two meta pages of a new file.
    Initialise,
    /// Reading a meta page at open.
    ReadMetaPage,
    /// Writing a commit's pages.
    WritePages,
    /// Syncing a commit's pages before its meta page is written.
    SyncPages,
    /// Writing a commit's meta page.
    WriteMetaPage,
    /// Syncing the file.
    Sync,
    /// Creating the file a compacted copy goes to.
    CreateCompactedCopy,
    /// Opening or creating the lock file beside the database.
    OpenLockFile,
    /// Mapping the lock file.
    MapLockFile,
    /// Taking or testing a lock on the lock file.
    LockFile,
}

impl IoOp {
    /// What the operation does, as error messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            IoOp::Open => "open",
            IoOp::Stat => "stat",
            IoOp::Lock => "lock",
            IoOp::Initialise => "initialise",
            IoOp::ReadMetaPage => "read meta page",
            IoOp::WritePages => "write pages",
            IoOp::SyncPages => "sync pages",
            IoOp::WriteMetaPage => "write meta page",
            IoOp::Sync => "sync",
            IoOp::CreateCompactedCopy => "create the compacted copy",
            IoOp::OpenLockFile => "open the lock file",
            IoOp::MapLockFile => "map the lock file",
            IoOp::LockFile => "lock a reader slot",
        }
    }
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_prints_the_os_message_once() {
        let os = io::Error::from_raw_os_error(28); // ENOSPC
        let message = os.to_string();
        let err = Error::io(Path::new("/data/my.db"), IoOp::WritePages, os);
        let chain = anyhow_like(&err);
        assert_eq!(chain.matches(&message).count(), 1, "{chain}");
        assert!(chain.contains("/data/my.db") && chain.contains("write pages"), "{chain}");
    }

    /// The error and its sources, joined as an error chain printer joins them.
    fn anyhow_like(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

//! A compacted copy of the newest commit: no free pages, full leaves.

use std::path::Path;

use crate::error::{Error, IoOp, Result};
use crate::store::Config;
use crate::txn::{Engine, ReadTransaction, WriteTransaction};

/// Writes a compacted copy of `engine`'s newest commit to `dest`, which must
/// not exist: every table rebuilt bottom-up from its keys in order, durable
/// when this returns (see `Database::compact_to`).
pub fn compact_to(engine: &Engine, dest: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| Error::io(dest, IoOp::CreateCompactedCopy, e))?;
    // SAFETY: `dest` was created just now by this call and nothing else knows of it.
    let copy = unsafe { Engine::open(dest, &Config::default(), true) }?;
    let read = ReadTransaction::begin(engine)?;
    let mut write = WriteTransaction::begin(&copy)?;
    // Every page it writes is new in a new file: it goes out a MiB at a time.
    write.write_ahead_in_runs();
    for name in read.all_tables()? {
        let source = read.open_any(&name)?;
        write.bulk_load_from(&name, source.range(..))?;
    }
    write.commit()
}

//! `Database::compact_to`: a copy of the newest commit with no free pages and
//! full leaves.

use std::path::Path;

use crate::db::{Builder, Database};
use crate::error::{Error, Result};

impl Database {
    /// Writes a compacted copy of the newest commit to `dest`, which must not
    /// exist. The tree is rebuilt bottom-up from the keys in order, so pages
    /// are full and none is free; the copy is durable when this returns.
    pub fn compact_to(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        std::fs::OpenOptions::new().write(true).create_new(true).open(dest).map_err(|source| Error::Io {
            path: dest.to_path_buf(),
            op: "create the compacted copy",
            source,
        })?;
        // SAFETY: `dest` was created just now by this call and nothing else knows of it.
        let copy = unsafe { Builder::new().create(dest) }?;
        let read = self.begin_read()?;
        let mut write = copy.begin_write()?;
        for name in read.list_tables()? {
            let source = read.open_table(&name)?;
            write.bulk_load(&name, source.range(..))?;
        }
        write.commit()
    }
}

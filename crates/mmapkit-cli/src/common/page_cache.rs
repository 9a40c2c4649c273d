//! Reading a whole file into the page cache: what `touch` does, and how a
//! bench makes its file warm.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use mmapkit::{Advice, Map};

/// How much is read in between two calls of the progress callback.
const CHUNK: usize = 16 << 20;

/// Reads every page of `file` (at `path`) into the page cache, calling
/// `progress` with each chunk's size. Pages are faulted in with
/// `MADV_POPULATE_READ`, which reports a page past the end of a file that
/// shrank as an error (naming the bytes) instead of raising SIGBUS.
pub fn read_into_cache(path: &Path, file: &File, mut progress: impl FnMut(u64)) -> anyhow::Result<()> {
    // SAFETY: the map's bytes are never read here; the kernel faults the pages in on our behalf and reports a
    // failure as an error.
    let map = unsafe { Map::new(file) }.with_context(|| format!("cannot map {}", path.display()))?;
    for offset in (0..map.len()).step_by(CHUNK) {
        let len = CHUNK.min(map.len() - offset);
        if let Err(err) = map.advise_range(Advice::PopulateRead, offset, len) {
            // MADV_POPULATE_READ returns EFAULT for a page past the end of the file.
            if err.raw_os_error() == Some(libc::EFAULT) {
                bail!(
                    "{} was truncated or became unreadable while being read: bytes {offset}..{} could not be read",
                    path.display(),
                    offset + len
                );
            }
            return Err(anyhow::Error::new(err).context(format!("cannot read {} into the page cache", path.display())));
        }
        progress(len as u64);
    }
    Ok(())
}

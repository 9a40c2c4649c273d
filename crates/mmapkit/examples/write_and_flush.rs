//! A writable map: mutate a shared mapping of a file, flush it
//! (msync), and read the file back through ordinary I/O.
//!
//! Run: `cargo run -p mmapkit --example write_and_flush`

use std::error::Error;
use std::fs::OpenOptions;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello from the file system\n")?;

    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    // SAFETY: the file lives in our own temp dir; nothing else changes it.
    let mut map = unsafe { mmapkit::MapMut::new(&file)? };
    map[..5].copy_from_slice(b"HELLO");
    map.flush()?; // msync(MS_SYNC): the change is on disk when this returns

    print!("file now reads: {}", std::fs::read_to_string(&path)?);
    Ok(())
}

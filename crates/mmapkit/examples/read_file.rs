//! Map a file read-only and print its first 4 bytes
//! and the byte at 1 MiB. Only the pages touched are read from disk.
//!
//! Run: `cargo run -p mmapkit --example read_file`

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.dat");
    let data: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data)?;

    // SAFETY: the file lives in our own temp dir; nothing else changes it.
    let map = unsafe { mmapkit::Map::open(&path)? };
    println!("first 4 bytes: {:?}", &map[..4]);
    println!("byte at 1<<20: {}", map[1 << 20]); // pages in just that block
    let residency = map.residency()?;
    println!("pages resident: {} of {}", residency.resident_pages(), residency.total_pages());
    Ok(())
}

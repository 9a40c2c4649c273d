//! Memory-mapped I/O for Linux, with the sharp edges taken off.
//!
//! A mapping shows a file (or anonymous memory) as a byte slice: no copy per
//! read, and only the pages you touch are loaded. mmapkit wraps `mmap` in types
//! that own their mappings ([`Map`], [`MapMut`], [`GrowableMap`]), check every
//! offset and length before the kernel sees it, and report failures as an
//! [`Error`] naming the file, the range and the cause.
//!
//! ```
//! use std::io::Write;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("hello.bin");
//! std::fs::write(&path, b"hello, mapped world")?;
//!
//! // Read: the file's bytes as a slice.
//! // SAFETY: no one else modifies or truncates this file while it is mapped.
//! let map = unsafe { mmapkit::Map::open(&path)? };
//! assert_eq!(&map[..5], b"hello");
//!
//! // Write: change the bytes in place, then flush them to disk.
//! // SAFETY: as above.
//! let mut map = unsafe { mmapkit::MapMut::open(&path)? };
//! map[..5].copy_from_slice(b"HELLO");
//! map.flush()?;
//! assert_eq!(&std::fs::read(&path)?[..5], b"HELLO");
//!
//! // Anonymous memory needs no promise: it is safe.
//! let mut scratch = mmapkit::MapMut::anon(4096)?;
//! scratch[0] = 1;
//! # Ok(())
//! # }
//! ```
//!
//! # The types
//!
//! - [`MapOptions`]: the builder (offset, length, populate, huge pages,
//!   `MAP_NORESERVE`, mlock) for every kind of mapping.
//! - [`Map`]: read-only. [`MapMut`]: writable: shared with the file,
//!   copy-on-write ([`MapOptions::map_copy`]), or anonymous
//!   ([`MapOptions::map_anon`]). `make_mut` / `make_read_only` switch between them.
//! - [`GrowableMap`]: a file map inside a fixed reservation of address space,
//!   grown in place with [`GrowableMap::grow_to`]; its address never changes.
//! - [`Advice`] and [`DestructiveAdvice`]: `madvise`, split by whether the
//!   advice can change what the bytes read as.
//! - [`Residency`]: which pages are in memory (`mincore`); [`page_cache`] asks
//!   the same of a whole file and drops files from the cache.
//!
//! # Soundness: which constructors are `unsafe`, and why
//!
//! A `&[u8]` promises that its bytes do not change while it is held. For a file
//! mapping, mmapkit cannot keep that promise alone: any process (or this one,
//! through another handle) can write the file and the change shows up in the
//! mapping at once. So every constructor that maps a file or shared memory is
//! `unsafe`, and its contract is the same: **while the map is alive, nothing
//! else modifies or truncates the mapped part of the file.** This is the
//! position memmap2 takes, for the same reason.
//!
//! Truncation is the worst case: touching a page past the new end of the file
//! raises `SIGBUS` and kills the process. Until the fault guard lands, that is
//! part of the contract above too.
//!
//! Anonymous private maps ([`MapOptions::map_anon`], [`MapMut::anon`]) are safe:
//! no one else can reach their memory. Shared anonymous maps
//! ([`MapOptions::map_anon_shared`]) are `unsafe`, because a child made by
//! `fork` can write them.
//!
//! Advice that can change contents ([`DestructiveAdvice`]: `MADV_DONTNEED`,
//! `MADV_FREE`, `MADV_REMOVE`) takes `&mut MapMut`, or is `unsafe` on a shared
//! `&Map`, so no live slice ever sees its bytes change under it.
//!
//! # Edges handled
//!
//! - Any byte offset: the mapping starts at the page that holds it and the
//!   slice starts exactly at the byte asked for.
//! - Empty files and zero lengths give an empty map without calling `mmap`.
//! - A range past the end of the file is an error at map time that names the
//!   path, the range and the file's length; never a crash later.
//! - Directories, character devices, pipes, and files opened without the access
//!   a mapping needs are refused with a message that says which.
//! - `flush_range` and `advise_range` check their range against the map.
//! - Huge-page anonymous maps round their length to whole huge pages, so they
//!   unmap cleanly (memmap2 issue #156).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod advice;
mod error;
mod growable;
mod map;
mod map_mut;
mod options;
pub mod page_cache;
mod raw;
mod residency;
mod span;
mod sys;

pub use advice::{Advice, DestructiveAdvice};
pub use error::{Error, ErrorKind, Operation, Result, Unchanged};
pub use growable::GrowableMap;
pub use map::Map;
pub use map_mut::MapMut;
pub use options::{HugePageSize, MapOptions};
pub use residency::Residency;

/// The size of a memory page on this machine, in bytes.
pub fn page_size() -> usize {
    sys::page_size()
}

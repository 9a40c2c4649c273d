//! Memory-mapped I/O for Linux, macOS and FreeBSD, with the sharp edges taken off.
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
//!   [`GrowableReadMap`] is the same, read-only, for files written with `pwrite`.
//! - [`Advice`] and [`DestructiveAdvice`]: `madvise`, split by whether the
//!   advice can change what the bytes read as.
//! - [`Residency`]: which pages are in memory (`mincore`); [`page_cache`] asks
//!   the same of a whole file and drops files from the cache.
//! - [`PageFaults`]: this process's minor and major page-fault counts.
//! - [`prefetch`]: a hint to bring a cache line close before reading it.
//! - [`Fault`]: what the fault guard recorded when a mapped file's data
//!   disappeared; reported by `checked`, `read_at`, `write_at` and `flush`.
//!
//! # Optional features
//!
//! - `stable_deref_trait`: [`Map`] and [`MapMut`] implement `StableDeref`:
//!   their bytes stay at the same address when the map value moves, so
//!   self-referential wrappers (`owning_ref`, `yoke`) can hold them.
//! - `bytes`: `Map::into_bytes` (and `From<Map> for Bytes`) turns a map
//!   into a `bytes::Bytes` without copying; the map lives as long as any clone.
//! - `zerocopy`: typed views of a map's bytes, `&T` and `&[T]` at an offset
//!   (`view`, `view_slice`, and on [`MapMut`] `view_mut`, `view_slice_mut`),
//!   checked for bounds and alignment.
//!
//! # Soundness: which constructors are `unsafe`, and why
//!
//! A `&[u8]` promises that its bytes do not change while it is held. For a file
//! mapping, mmapkit cannot keep that promise alone: any process (or this one,
//! through another handle) can write the file and the change shows up in the
//! mapping at once. So every constructor that maps a file or shared memory is
//! `unsafe`, and its contract is the same: **while the map is alive, nothing
//! else modifies the mapped part of the file.** This is the position memmap2
//! takes, for the same reason.
//!
//! Truncation is no longer part of what can go wrong in practice: a guarded
//! map (the default) cannot crash the process when its file shrinks, and never
//! reads outside its own pages (see [When the file shrinks under
//! you](#when-the-file-shrinks-under-you)). Strictly, the zeros that replace
//! the lost pages are a change under a live slice like any other write; code
//! that wants Rust's aliasing rules kept to the letter still must not truncate.
//! What the guard guarantees is no crash, no out-of-bounds access, and an error
//! for every access that the truncation spoiled.
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
//! # When the file shrinks under you
//!
//! Touching a page of a mapping whose file data is gone (the file was
//! truncated, a disk read failed, or a write into a sparse file found the disk
//! full) makes the kernel raise `SIGBUS`, which kills a process by default. C
//! programs die; Go offers `debug.SetPanicOnFault` to turn it into a panic per
//! goroutine; the JVM resumes the thread and throws `InternalError` from the
//! `Unsafe` access; memmap2, LMDB and bbolt crash. mmapkit handles it for
//! every file map made without [`MapOptions::unguarded`]:
//!
//! - A process-wide `SIGBUS` handler is installed on the first guarded map
//!   (`SA_SIGINFO | SA_ONSTACK | SA_NODEFER`), chained to whatever was there
//!   before, including Rust's own stack-overflow handler. Every supported
//!   OS raises `SIGBUS` for a lost page; `SIGSEGV` (no mapping, or a
//!   protection fault) is left alone. A page that keeps faulting right after
//!   its patch is passed on after 32 tries, so it ends the process as it
//!   would without mmapkit instead of looping.
//! - Every guarded map is registered in a table the handler searches with
//!   atomic loads only (no lock, no allocation), in time that does not grow
//!   with the number of maps.
//! - On a fault inside a guarded map, the handler records the fault, then
//!   maps zero pages over the faulting page through the end of the map, and
//!   returns: the access completes, reading zeros. A fault anywhere else goes
//!   to the previous handler, so real bugs still crash.
//! - [`Map::checked`] runs a closure and returns its result only if no fault
//!   has hit the map; [`Map::read_at`] and [`MapMut::write_at`] fail only when
//!   their range reaches a lost page; [`MapMut::flush`] fails after a fault,
//!   since writes to lost pages could not reach the file; [`Map::fault`] says
//!   what happened; [`Map::refresh`] maps the requested range again, as much of
//!   it as the file holds now. The check is one atomic load.
//!
//! **The guarantee.** Bytes that `checked`, `read_at` or `write_at` return
//! (or accept) as `Ok` are the file's bytes, from any thread, at any moment of
//! a truncation: a fault is recorded before any zero page exists, and the
//! check after an access loads the fault count behind an acquire fence, so a
//! thread that reads zeros another thread's fault mapped sees that fault
//! (on weakly ordered CPUs such as aarch64 too). What a fault was is in
//! [`Fault`]: where, why, and, for maps that own their file, the file's length
//! after it, which tells a truncation from a failed read or a full disk.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("shrinks.bin");
//! std::fs::write(&path, vec![1u8; 1 << 20])?;
//! // SAFETY: no one writes the file; the truncation below is what the guard is for.
//! let map = unsafe { mmapkit::Map::open(&path)? };
//! std::fs::OpenOptions::new().write(true).open(&path)?.set_len(8192)?;
//!
//! let sum = map.checked(|bytes| bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
//! let fault = sum.unwrap_err(); // not a crash
//! assert_eq!(fault.offset(), 8192);
//! let mut head = [0u8; 16];
//! map.read_at(0, &mut head)?; // bytes before the cut are still good
//! assert_eq!(head, [1u8; 16]);
//! # Ok(())
//! # }
//! ```
//!
//! **Signals.** A `SIGBUS` that a process sent (`kill`, `raise`, `sigqueue`)
//! is never a guarded map's fault. It does what it would do without mmapkit:
//! it goes to the handler the program installed before the first guarded
//! map, is ignored if `SIGBUS` was ignored, and otherwise ends the process
//! with `SIGBUS`, its default action. (Rust's own stack-overflow handler
//! answers a `SIGBUS` that is not an overflow by resetting it to the default
//! action and returning, expecting the faulting access to run again and kill
//! the process; for a sent signal mmapkit carries that out.) Whatever the
//! program's handler does, the guard stays installed.
//!
//! **Limits.** Bytes in lost pages are gone (they read as zeros, and plain
//! slice reads return those zeros without an error: use `checked`, `read_at`
//! or `fault` where it matters). A raw pointer handed to C code keeps reading
//! zeros without being told. A map made with `unguarded` still dies. A file
//! cut inside a page leaves the rest of that page reading zeros with no fault
//! at all: the kernel faults only for whole pages past the end, so the guard
//! cannot see it (it can see every whole page). Nor can it see zeros the
//! kernel reads out of a page still mapped from the file with no signal at
//! all: on Linux 6.18 with ext4 this was seen a few times in tens of millions
//! of reads of pages cut and being written back at that moment (the race
//! test counts these apart). And two things in the program
//! can switch the guard off; both are refused when a guarded map is made,
//! with [`ErrorKind::GuardUnavailable`] (maps made before are not protected
//! any more):
//! - a thread that blocks `SIGBUS`: the kernel never delivers a fault's
//!   `SIGBUS` to a thread that blocks it, and ends the process instead. A
//!   guarded map made on such a thread is an error
//!   ([`GuardProblem::SignalBlocked`]); a thread that blocks `SIGBUS` and
//!   reads a guarded map made elsewhere dies on a fault;
//! - a `SIGBUS` handler installed after mmapkit's that does not pass on what
//!   is not its own. mmapkit cannot tell whether a later handler passes
//!   signals on, so once another one has replaced its handler, every new
//!   guarded map is an error ([`GuardProblem::HandlerReplaced`]). Install
//!   your own handlers before the first guarded map: mmapkit then passes them
//!   every signal that is not its own.
//!
//! Growable maps reserve their file's blocks with `fallocate` before mapping
//! them, so a write there cannot meet a full disk in the first place.
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

mod error;
mod growable;
mod growable_read;
mod guard;
#[cfg(feature = "bytes")]
mod into_bytes;
mod map;
mod map_common;
mod map_mut;
mod map_raw;
mod mapping;
mod options;
pub mod page_cache;
mod page_faults;
mod prefetch;
mod remap_options;
mod residency;
mod source;
mod span;
#[cfg(feature = "stable_deref_trait")]
mod stable_deref;
mod sys;
#[cfg(feature = "zerocopy")]
mod typed_view;

pub use error::{Error, ErrorKind, GuardProblem, Operation, Result, Unchanged, ViewProblem};
pub use growable::GrowableMap;
pub use growable_read::GrowableReadMap;
#[doc(hidden)]
pub use guard::bench_support;
pub use guard::{Fault, FaultCause};
pub use map::Map;
pub use map_mut::MapMut;
pub use map_raw::MapRaw;
pub use mmapkit_sys::Unsupported;
pub use mmapkit_sys::advice::{Advice, DestructiveAdvice};
pub use options::{HugePageSize, MapOptions};
pub use page_faults::PageFaults;
pub use prefetch::prefetch;
pub use remap_options::RemapOptions;
pub use residency::Residency;
pub use source::MapSource;

/// The size of a memory page on this machine, in bytes.
pub fn page_size() -> usize {
    sys::page_size()
}

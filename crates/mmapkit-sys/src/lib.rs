//! The platform layer of mmapkit: the one crate in the workspace that calls
//! the operating system.
//!
//! Everything above it (`mmapkit`, `mmapkit-shm`, `mmapkit-db`, the CLI) is
//! written against the small interface below: plain functions over file
//! descriptors and raw address ranges, and a few types. What all Unixes share
//! (POSIX: `mmap`, `msync`, `mprotect`, `madvise`'s common advice, `mlock`,
//! `mincore`, `sigaction`, byte-range locks, descriptor passing) is written
//! once, in the modules here, and runs under the Linux tests; what differs
//! between Linux, macOS and FreeBSD is in one small file per OS (`os/`), each
//! with the same set of functions.
//!
//! A feature an OS lacks is never a silent no-op: it is an
//! [`io::Error`](std::io::Error) of kind `Unsupported` carrying an
//! [`Unsupported`] that names the feature and the OS.
//!
//! This crate's API serves mmapkit's own crates and follows their needs; it
//! is public so that they need no system calls of their own, not as a
//! general-purpose binding. Each `unsafe fn` states the contract its caller
//! keeps; each `unsafe` block says why that contract, or the kernel's own
//! guarantees, make the call sound.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod advice;
pub mod bell_fifo;
pub mod fault_signal;
pub mod fd_passing;
pub mod file;
pub mod memory;
pub mod notify_fd;
pub mod process;
pub mod range_lock;
pub mod robust_mutex;
pub mod shm;
pub mod unsupported;
pub mod wait;

mod os;
mod pid_mutex;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
mod pthread_mutex;

pub use unsupported::Unsupported;

/// The operating system this build is for, as its users name it: `"Linux"`,
/// `"macOS"` or `"FreeBSD"`.
pub const OS: &str = os::NAME;

#[doc(hidden)]
pub use pid_mutex::PidMutex;

//! Linux: every call goes through `rustix`, except what rustix lacks, which
//! comes from `libc`: `mincore`, `getrusage`, the signal calls (`sigaction`,
//! `raise`), byte-range OFD locks, and glibc's robust pthread mutexes.

mod file;
mod ipc;
mod memory;
mod signal;

pub(crate) use file::*;
pub(crate) use ipc::*;
pub(crate) use memory::*;
pub(crate) use signal::*;

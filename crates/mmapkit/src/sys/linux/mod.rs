//! Linux: every call goes through `rustix`, except `mincore` and the signal
//! calls (`sigaction`, `raise`), which rustix lacks and which come from `libc`.

mod file;
mod memory;
mod signal;

pub(crate) use file::*;
pub(crate) use memory::*;
pub(crate) use signal::*;

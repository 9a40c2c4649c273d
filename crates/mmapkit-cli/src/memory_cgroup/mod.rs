//! Running a process with a memory limit: a memory cgroup of its own (cgroup
//! v2's `memory.max`, or v1's `memory.limit_in_bytes`), made as a child of the
//! cgroup this process is in, joined by the child process itself, and removed
//! once it has exited. Linux only, and it needs the right to create cgroups
//! there (root, or a cgroup delegated to the user).
//!
//! - [`Hierarchy`]: where this process's memory controller is, from
//!   `/proc/self/cgroup` and `/proc/self/mountinfo`.
//! - [`MemoryCgroup`]: one limited cgroup, removed on drop; [`remove_live`]
//!   removes those still there, for an interrupt handler.
//! - [`join`]: what the child calls first, to move itself in.
//! - [`run_in_cgroup`]: the parent's side in one call: make, spawn, stream
//!   the child's output, wait, remove.

mod cgroup;
mod hierarchy;
mod join;
mod run;

pub use cgroup::{MemoryCgroup, remove_live};
pub use hierarchy::{Hierarchy, Version};
pub use join::join;
pub use run::{ChildOutcome, run_in_cgroup};

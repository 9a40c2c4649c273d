//! The parts of the `mmapkit` command that other tools of the workspace
//! reuse: running a benchmark's child process inside a memory cgroup of its
//! own, and the child's side of a timed run that reports every second.

pub mod memory_cgroup;
pub mod timed;

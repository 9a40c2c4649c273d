//! What differs between the operating systems, one file each, all with the
//! same items: names and limits, the extra `mmap` flags and advice values,
//! `msync`, sizes and paths of files, allocation, durable syncs and the page
//! cache, shared-memory names and anonymous objects, the address wait, the
//! robust mutex, byte-range lock commands, descriptor passing flags, CPU
//! affinity, and how a fault's signal and `si_code` read.

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::*;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "macos")]
pub(crate) use macos::*;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
compile_error!("mmapkit-sys supports Linux, macOS and FreeBSD; another OS is one more file in os/");

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod bsd;

//! The core's view of the platform layer (`mmapkit-sys`): the calls and
//! types it maps, syncs, advises and guards with, under one name.

pub(crate) use mmapkit_sys::fault_signal;
pub(crate) use mmapkit_sys::file::{
    Descriptor, FileKind, access_mode, allocate, evict, fd_path, file_info, page_faults, start_writeback,
};
pub(crate) use mmapkit_sys::memory::{
    Behavior, Protection, Sharing, advise, advise_destructive, default_huge_page_size, lock, map_anon, map_file,
    map_file_fixed, map_zeros_fixed, page_size, protect, reserve, residency, sync, unlock, unmap,
};

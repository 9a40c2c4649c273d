//! The core's view of the platform layer (`mmapkit-sys`): the calls and
//! types it maps, syncs, advises and guards with, under one name.

pub(crate) use mmapkit_sys::OS;
pub(crate) use mmapkit_sys::fault_signal;
pub(crate) use mmapkit_sys::file::{
    Descriptor, FileKind, access_mode, allocate, evict, fd_path, file_info, mapped_path, page_faults, start_writeback,
    why_immutable,
};
pub(crate) use mmapkit_sys::memory::{
    Behavior, HAS_MREMAP, Protection, Sharing, advise, advise_destructive, default_huge_page_size, lock, map_anon,
    map_anon_at, map_file, map_file_fixed, map_zeros_fixed, mremap, page_size, protect, reserve, residency, sync,
    unlock, unmap,
};

//! `MapSource`: what a file map is made from.

/// An open file a map can be made from: a [`File`](std::fs::File), or
/// anything else that holds an open file's descriptor. On Unix it is every
/// type with a descriptor ([`AsFd`](std::os::fd::AsFd)): `File`, `OwnedFd`,
/// `BorrowedFd`, and references to them. The trait keeps descriptor types,
/// which differ by operating system, out of mmapkit's own signatures.
pub trait MapSource {
    /// The open file's descriptor, for the platform layer.
    #[doc(hidden)]
    fn descriptor(&self) -> mmapkit_sys::file::Descriptor<'_>;
}

#[cfg(unix)]
impl<T: std::os::fd::AsFd + ?Sized> MapSource for T {
    fn descriptor(&self) -> mmapkit_sys::file::Descriptor<'_> {
        self.as_fd()
    }
}

//! The constructors both ends have, written once for [`Sender`](super::Sender)
//! and [`Receiver`](super::Receiver): making or opening the channel's region
//! and attaching to it as the end's role.

/// Defines the constructors of an end, and its `Debug`: `$end` is the end's
/// type, with a `from_end(End) -> $end`, and `$role` its role.
macro_rules! constructors {
    ($end:ident, $role:expr) => {
        impl $end {
            /// Creates the channel's named region (`0600`, `O_EXCL`) and attaches as this end.
            ///
            /// # Safety
            /// Every process that opens the region must follow this crate's
            /// channel protocol (any mmapkit-shm process does): a peer that
            /// writes the message bytes while they are lent out breaks the
            /// `&[u8]`/`&mut [u8]` handed out. Lengths and positions are
            /// checked regardless, so a broken peer cannot make this end read or
            /// write out of bounds.
            pub unsafe fn create_named(name: &str, options: &$crate::ChannelOptions) -> $crate::Result<$end> {
                let end = $crate::channel::end::End::create(
                    |layout, len, init| $crate::Region::create_named(name, layout, len, &options.region, init),
                    options,
                    $role,
                )?;
                Ok($end::from_end(end))
            }

            /// Opens the channel's named region and attaches as this end.
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            pub unsafe fn open_named(name: &str, options: &$crate::ChannelOptions) -> $crate::Result<$end> {
                let region = $crate::Region::open_named(name, options.kind.layout(), &options.region)?;
                Ok($end::from_end($crate::channel::end::End::attach(region, options, $role)?))
            }

            /// Opens the channel's named region if it exists, or creates it (reclaiming
            /// a stale name, as [`Region::create_named`]($crate::Region::create_named)
            /// says), and attaches as this end; `region().created()` tells which.
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            pub unsafe fn open_or_create_named(name: &str, options: &$crate::ChannelOptions) -> $crate::Result<$end> {
                $crate::region::open_or_create(
                    &options.region,
                    // SAFETY: this function's contract is theirs.
                    || unsafe { $end::create_named(name, options) },
                    // SAFETY: as above.
                    || unsafe { $end::open_named(name, options) },
                )
            }

            /// Creates the channel in an anonymous sealed memfd; pass it to the
            /// other process with [`send_region`](Self::send_region).
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            pub unsafe fn create_memfd(options: &$crate::ChannelOptions) -> $crate::Result<$end> {
                let end = $crate::channel::end::End::create(
                    |layout, len, init| $crate::Region::create_memfd(layout, len, init),
                    options,
                    $role,
                )?;
                Ok($end::from_end(end))
            }

            /// Receives a channel region sent with [`send_region`](Self::send_region)
            /// and attaches as this end.
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            #[cfg(unix)]
            pub unsafe fn receive_region(
                socket: &std::os::unix::net::UnixStream,
                options: &$crate::ChannelOptions,
            ) -> $crate::Result<$end> {
                let region = $crate::Region::receive(socket, options.kind.layout(), &options.region)?;
                Ok($end::from_end($crate::channel::end::End::attach(region, options, $role)?))
            }

            /// Sends the channel's region over a Unix socket, for the other end.
            #[cfg(unix)]
            pub fn send_region(&self, socket: &std::os::unix::net::UnixStream) -> $crate::Result<()> {
                self.end.region.send(socket)
            }

            /// The longest message the channel carries (half its capacity, less 8).
            pub fn max_message(&self) -> usize {
                $crate::channel::ring::max_message(self.end.capacity)
            }

            /// The region underneath.
            pub fn region(&self) -> &$crate::Region {
                &self.end.region
            }
        }

        impl std::fmt::Debug for $end {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("region", &self.end.region.describe())
                    .field("capacity", &self.end.capacity)
                    .finish()
            }
        }
    };
}

pub(super) use constructors;

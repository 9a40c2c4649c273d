//! What `Map` and `MapMut` share: the read side of a mapping (fault checks,
//! advice, locking, residency) and the slice traits, written once.

/// Implements the shared methods and traits for a type with a `raw: Mapping` field.
macro_rules! impl_map_common {
    ($map:ident) => {
        impl $map {
            /// The address of the first byte.
            pub fn as_ptr(&self) -> *const u8 {
                self.raw.ptr()
            }

            /// The fault that has hit this map, if any: a page whose file data
            /// was gone (the file shrank, or its storage failed) was accessed.
            /// Those bytes now read as zeros. `None` for unguarded and
            /// anonymous maps.
            pub fn fault(&self) -> Option<$crate::Fault> {
                self.raw.fault()
            }

            /// Runs `f` on the map's bytes and returns its result, or the
            /// [`Fault`](crate::Fault) if any fault has hit the map (during `f`
            /// or before it, since pages patched earlier read as zeros). The
            /// check costs one atomic load.
            #[inline]
            pub fn checked<T>(&self, f: impl FnOnce(&[u8]) -> T) -> ::std::result::Result<T, $crate::Fault> {
                self.raw.checked(|| f(self.raw.bytes()))
            }

            /// Copies `buf.len()` bytes from `offset` into `buf`. An error if
            /// the range is outside the map or reaches a page whose file data is
            /// gone; bytes before the first such page stay readable.
            pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> $crate::Result<()> {
                self.raw.read_at(offset, buf)
            }

            /// Bytes `range` of the map, as a slice, once every page of them has
            /// been touched: an error if the range is outside the map or
            /// reaches a page whose file data is gone (the checked, zero-copy
            /// counterpart of [`read_at`](Self::read_at)). The bytes are the
            /// file's when it returns; a truncation afterwards turns them into
            /// zeros like any other slice's, and [`fault`](Self::fault) tells.
            pub fn get_checked(&self, range: ::std::ops::Range<usize>) -> $crate::Result<&[u8]> {
                self.raw.get_checked(range.start, $crate::span::range_len(&range, $crate::Operation::Read)?)
            }

            /// Maps `file` (the one this map was made from) again, after a
            /// fault or once the file has changed length: the range the map was
            /// asked for (its offset, and its length or "to the end of the
            /// file"), as much of it as the file holds now, with the same
            /// options. A file that now ends before the offset gives an empty
            /// map, which a later `refresh` maps again once the file has grown
            /// back. The old mapping is dropped; on an error it is kept.
            ///
            /// # Safety
            /// The constructor's contract applies to the new mapping.
            pub unsafe fn refresh<F: $crate::MapSource + ?Sized>(&mut self, file: &F) -> $crate::Result<()> {
                self.raw = $crate::options::MapOptions::refresh(&self.raw, $crate::MapSource::descriptor(file))?;
                Ok(())
            }

            /// Grows or shrinks the map to `new_len` bytes: in place where it
            /// can, at a new address only if `options` allow it
            /// ([`RemapOptions::may_move`](crate::RemapOptions::may_move)).
            /// Linux does it in one call (`mremap`); elsewhere a map shrinks in
            /// place, an anonymous one grows in place where the address space
            /// after it is free or moves by copying its bytes, and a file map
            /// cannot grow (refresh it with a longer range instead). A file map
            /// may grow past its file's end: those pages fault when touched, and
            /// the guard reports it. The fault guard's registration and record
            /// follow the map; its later [`refresh`](Self::refresh)es keep the
            /// new length. Pages locked with `mlock` before stay locked; added
            /// ones are not.
            ///
            /// After a [fault](Self::fault), a guarded map can shrink but not
            /// grow (an error says to refresh it first): its patched pages are
            /// no longer the file's. A shrink that cuts off every patched page
            /// leaves no fault; one that keeps some reports the fault at the
            /// first of them. A length above `isize::MAX` is
            /// [`TooLarge`](crate::ErrorKind::TooLarge). On an error the map
            /// keeps its length, bytes and guard, except if the guard fails to
            /// register the resized range: then the map has its new length,
            /// unguarded, and the error says why.
            ///
            /// # Safety
            /// For a file map, the constructor's contract applies to the bytes
            /// added; no raw pointer into the map may be used after it moved or
            /// shrank.
            pub unsafe fn remap(&mut self, new_len: usize, options: $crate::RemapOptions) -> $crate::Result<()> {
                // SAFETY: `&mut self` rules out live references; raw pointers are the caller's (contract above).
                unsafe { self.raw.resize(new_len, options.moves()) }
            }

            /// Gives the kernel advice about the whole map.
            pub fn advise(&self, advice: $crate::Advice) -> $crate::Result<()> {
                self.raw.advise(advice, None)
            }

            /// Gives the kernel advice about bytes `offset..offset+len` (rounded
            /// out to whole pages). A range outside the map is an error.
            pub fn advise_range(&self, advice: $crate::Advice, offset: usize, len: usize) -> $crate::Result<()> {
                self.raw.advise(advice, Some((offset, len)))
            }

            /// Locks the map's pages in memory (`mlock`).
            pub fn lock(&self) -> $crate::Result<()> {
                self.raw.set_locked(true)
            }

            /// Unlocks the map's pages (`munlock`).
            pub fn unlock(&self) -> $crate::Result<()> {
                self.raw.set_locked(false)
            }

            /// Which of the map's pages are resident in memory now (`mincore`).
            pub fn residency(&self) -> $crate::Result<$crate::Residency> {
                self.raw.residency()
            }

            /// The file's path, for an error message (looked up only when asked).
            #[cfg(feature = "zerocopy")]
            pub(crate) fn error_path(&self) -> Option<::std::path::PathBuf> {
                self.raw.path()
            }
        }

        impl ::std::ops::Deref for $map {
            type Target = [u8];

            fn deref(&self) -> &[u8] {
                self.raw.bytes()
            }
        }

        impl AsRef<[u8]> for $map {
            fn as_ref(&self) -> &[u8] {
                self
            }
        }

        impl ::std::fmt::Debug for $map {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($map)).field("ptr", &self.as_ptr()).field("len", &self.len()).finish()
            }
        }
    };
}

pub(crate) use impl_map_common;

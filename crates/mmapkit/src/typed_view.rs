//! Typed views of a map's bytes (feature `zerocopy`): a `&T` or `&[T]` at an
//! offset, for types every bit pattern of which is a valid value, checked for
//! bounds and alignment before any reference exists.

use std::any::type_name;
use std::convert::Infallible;
use std::ops::Range;
use std::path::PathBuf;

use zerocopy::{ConvertError, FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{Error, ErrorKind, Operation, Result, ViewProblem};
use crate::map::Map;
use crate::map_mut::MapMut;

/// A view asked for: `count` values of a type (one, for a `&T`) at `offset`.
struct Request {
    type_name: &'static str,
    offset: usize,
    size: u128,
    align: usize,
}

impl Request {
    fn one<T>(offset: usize) -> Request {
        Request { type_name: type_name::<T>(), offset, size: size_of::<T>() as u128, align: align_of::<T>() }
    }

    fn many<T>(offset: usize, count: usize) -> Request {
        let size = size_of::<T>() as u128 * count as u128;
        Request { type_name: type_name::<[T]>(), offset, size, align: align_of::<T>() }
    }

    /// The view's byte range in `bytes`, or why it does not fit there.
    fn locate(&self, bytes: &[u8]) -> Result<Range<usize>, ViewProblem> {
        let end = self.offset as u128 + self.size;
        if end > bytes.len() as u128 {
            return Err(ViewProblem::PastEnd { map_len: bytes.len() });
        }
        let address = bytes.as_ptr().addr().wrapping_add(self.offset);
        if !address.is_multiple_of(self.align) {
            return Err(ViewProblem::Misaligned { address });
        }
        // `end` is at most `bytes.len()`, so it fits in a usize.
        Ok(self.offset..end as usize)
    }

    /// What zerocopy's refusal of a range `locate` accepted means (it cannot
    /// refuse one, as `locate` checks what it checks; if it ever did, it is
    /// reported in the same terms rather than as a panic).
    fn refused<A, S>(&self, base: usize, map_len: usize, error: ConvertError<A, S, Infallible>) -> ViewProblem {
        match error {
            ConvertError::Alignment(_) => ViewProblem::Misaligned { address: base.wrapping_add(self.offset) },
            ConvertError::Size(_) => ViewProblem::PastEnd { map_len },
            ConvertError::Validity(never) => match never {},
        }
    }

    fn error(&self, op: Operation, problem: ViewProblem, path: Option<PathBuf>) -> Error {
        let Request { type_name, offset, size, align } = *self;
        Error::new(op, ErrorKind::BadView { type_name, offset, size, align, problem }).with_path(path)
    }
}

macro_rules! impl_views {
    ($map:ident) => {
        impl $map {
            /// The `T` whose bytes start at byte `offset` of the map, as a
            /// reference: no copy. An error naming the offset, the type, its
            /// size and its alignment (and the file) if the value would reach
            /// past the map's end or its address is not aligned for `T`. Like
            /// any slice of the map, the value reads zeros where a fault has
            /// patched a page; [`checked`](Self::checked) tells.
            pub fn view<T: FromBytes + KnownLayout + Immutable>(&self, offset: usize) -> Result<&T> {
                let request = Request::one::<T>(offset);
                let bytes: &[u8] = self;
                let fail = |problem| request.error(Operation::Read, problem, self.error_path());
                let range = request.locate(bytes).map_err(fail)?;
                T::ref_from_bytes(&bytes[range])
                    .map_err(|e| fail(request.refused(bytes.as_ptr().addr(), bytes.len(), e)))
            }

            /// The `count` values of `T` whose bytes start at byte `offset` of
            /// the map, as a slice: no copy. Errors as for [`view`](Self::view).
            pub fn view_slice<T: FromBytes + Immutable>(&self, offset: usize, count: usize) -> Result<&[T]> {
                let request = Request::many::<T>(offset, count);
                let bytes: &[u8] = self;
                let fail = |problem| request.error(Operation::Read, problem, self.error_path());
                let range = request.locate(bytes).map_err(fail)?;
                <[T]>::ref_from_bytes_with_elems(&bytes[range], count)
                    .map_err(|e| fail(request.refused(bytes.as_ptr().addr(), bytes.len(), e)))
            }
        }
    };
}

impl_views!(Map);
impl_views!(MapMut);

impl MapMut {
    /// The `T` at byte `offset` of the map, writable: writes change the
    /// map's bytes. Errors as for [`view`](Self::view).
    pub fn view_mut<T: FromBytes + IntoBytes + KnownLayout>(&mut self, offset: usize) -> Result<&mut T> {
        let request = Request::one::<T>(offset);
        let range =
            request.locate(self).map_err(|problem| request.error(Operation::Write, problem, self.error_path()))?;
        let (base, map_len) = (self.as_ptr().addr(), self.len());
        // The refusal borrows the bytes, so it cannot also ask the map its path (it is never reached; see `refused`).
        T::mut_from_bytes(&mut self[range])
            .map_err(|e| request.error(Operation::Write, request.refused(base, map_len, e), None))
    }

    /// The `count` values of `T` at byte `offset` of the map, writable.
    /// Errors as for [`view`](Self::view).
    pub fn view_slice_mut<T: FromBytes + IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        count: usize,
    ) -> Result<&mut [T]> {
        let request = Request::many::<T>(offset, count);
        let range =
            request.locate(self).map_err(|problem| request.error(Operation::Write, problem, self.error_path()))?;
        let (base, map_len) = (self.as_ptr().addr(), self.len());
        // As in `view_mut`.
        <[T]>::mut_from_bytes_with_elems(&mut self[range], count)
            .map_err(|e| request.error(Operation::Write, request.refused(base, map_len, e), None))
    }
}

//! Encoding keys, values and bounds for a named table, and decoding what it
//! holds, with errors that name the table.

use std::ops::{Bound, RangeBounds};

use super::traits::Value;
use crate::error::{Error, Result};
use crate::txn::KeyBounds;

/// `value`'s bytes, or an [`Error::Encode`] naming `table`.
pub fn encode<T: Value + ?Sized>(table: &str, value: &T::SelfType<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    T::encode(value, &mut out).map_err(|why| Error::Encode { table: table.to_string(), what: why })?;
    Ok(out)
}

/// Bytes of key encoding kept on the stack: wide enough for every integer,
/// and tuples of a few.
const INLINE: usize = 64;

/// An encoded key or value: the value's own bytes where its encoding is them
/// ([`Value::as_bytes`]), on the stack where its type writes its encoding in
/// place ([`Value::encode_inline`]) and it fits, else on the heap.
pub enum Encoded<'v> {
    /// The value's own bytes.
    Borrowed(&'v [u8]),
    /// The first `len` bytes of the buffer.
    Inline([u8; INLINE], usize),
    /// An encoding written by [`Value::encode`].
    Heap(Vec<u8>),
}

impl std::ops::Deref for Encoded<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Encoded::Borrowed(bytes) => bytes,
            Encoded::Inline(buf, len) => &buf[..*len],
            Encoded::Heap(bytes) => bytes,
        }
    }
}

/// `key`'s bytes, without a copy or a heap allocation where its type allows;
/// an [`Error::Encode`] naming `table` if it cannot be encoded.
pub fn encode_key<'v, T: Value + ?Sized>(table: &str, key: &'v T::SelfType<'_>) -> Result<Encoded<'v>> {
    if let Some(bytes) = T::as_bytes(key) {
        return Ok(Encoded::Borrowed(bytes));
    }
    let mut buf = [0u8; INLINE];
    match T::encode_inline(key, &mut buf) {
        Some(len) => Ok(Encoded::Inline(buf, len)),
        None => encode::<T>(table, key).map(Encoded::Heap),
    }
}

/// `value`'s bytes for storing: its own where its encoding is them, else
/// encoded on the heap; an [`Error::Encode`] naming `table` if it cannot be.
pub fn encode_value<'v, T: Value + ?Sized>(table: &str, value: &'v T::SelfType<'_>) -> Result<Encoded<'v>> {
    match T::as_bytes(value) {
        Some(bytes) => Ok(Encoded::Borrowed(bytes)),
        None => encode::<T>(table, value).map(Encoded::Heap),
    }
}

/// The encoded bounds of `range`, without copies or heap allocations where
/// the key type allows.
pub fn key_bounds<'r, 'k: 'r, K: Value + 'k>(
    table: &str,
    range: &'r impl RangeBounds<K::SelfType<'k>>,
) -> Result<(Bound<Encoded<'r>>, Bound<Encoded<'r>>)> {
    let one = |b: Bound<&'r K::SelfType<'k>>| -> Result<Bound<Encoded<'r>>> {
        Ok(match b {
            Bound::Included(k) => Bound::Included(encode_key::<K>(table, k)?),
            Bound::Excluded(k) => Bound::Excluded(encode_key::<K>(table, k)?),
            Bound::Unbounded => Bound::Unbounded,
        })
    };
    Ok((one(range.start_bound())?, one(range.end_bound())?))
}

/// A bound's bytes.
pub fn as_slice<'b>(bound: &'b Bound<Encoded<'_>>) -> Bound<&'b [u8]> {
    bound.as_ref().map(|k| &**k)
}

/// The value `bytes` hold, or an [`Error::Decode`] naming `table`.
pub fn decode<'a, T: Value + 'a>(table: &str, bytes: &'a [u8]) -> Result<T::SelfType<'a>> {
    T::decode(bytes)
        .map_err(|why| Error::Decode { table: table.to_string(), what: format!("a {}: {why}", T::type_name()) })
}

/// An owned copy of the value `bytes` hold.
pub fn decode_owned<T: Value>(table: &str, bytes: &[u8]) -> Result<T::Owned> {
    decode::<T>(table, bytes).map(|v| T::to_owned(&v))
}

/// The encoded bounds of `range`.
pub fn bounds<'k, K: Value + 'k>(table: &str, range: &impl RangeBounds<K::SelfType<'k>>) -> Result<KeyBounds> {
    let one = |b: Bound<&K::SelfType<'k>>| -> Result<Bound<Vec<u8>>> {
        Ok(match b {
            Bound::Included(k) => Bound::Included(encode::<K>(table, k)?),
            Bound::Excluded(k) => Bound::Excluded(encode::<K>(table, k)?),
            Bound::Unbounded => Bound::Unbounded,
        })
    };
    Ok((one(range.start_bound())?, one(range.end_bound())?))
}

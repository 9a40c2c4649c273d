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

/// An encoded key: on the stack when its type writes its encoding in place
/// ([`Value::encode_inline`]) and it fits, else on the heap.
pub enum EncodedKey {
    /// The first `len` bytes of the buffer.
    Inline([u8; INLINE], usize),
    /// An encoding written by [`Value::encode`].
    Heap(Vec<u8>),
}

impl std::ops::Deref for EncodedKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            EncodedKey::Inline(buf, len) => &buf[..*len],
            EncodedKey::Heap(bytes) => bytes,
        }
    }
}

/// `key`'s bytes, without a heap allocation where its type allows; an
/// [`Error::Encode`] naming `table` if it cannot be encoded.
pub fn encode_key<T: Value + ?Sized>(table: &str, key: &T::SelfType<'_>) -> Result<EncodedKey> {
    let mut buf = [0u8; INLINE];
    match T::encode_inline(key, &mut buf) {
        Some(len) => Ok(EncodedKey::Inline(buf, len)),
        None => encode::<T>(table, key).map(EncodedKey::Heap),
    }
}

/// The encoded bounds of `range`, without heap allocations where the key type allows.
pub fn key_bounds<'k, K: Value + 'k>(
    table: &str,
    range: &impl RangeBounds<K::SelfType<'k>>,
) -> Result<(Bound<EncodedKey>, Bound<EncodedKey>)> {
    let one = |b: Bound<&K::SelfType<'k>>| -> Result<Bound<EncodedKey>> {
        Ok(match b {
            Bound::Included(k) => Bound::Included(encode_key::<K>(table, k)?),
            Bound::Excluded(k) => Bound::Excluded(encode_key::<K>(table, k)?),
            Bound::Unbounded => Bound::Unbounded,
        })
    };
    Ok((one(range.start_bound())?, one(range.end_bound())?))
}

/// A bound's bytes.
pub fn as_slice(bound: &Bound<EncodedKey>) -> Bound<&[u8]> {
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

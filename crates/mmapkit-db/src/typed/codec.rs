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

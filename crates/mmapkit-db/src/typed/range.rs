//! `TypedRange`: a range of a typed table, each entry decoded.

use std::marker::PhantomData;

use super::codec::decode;
use super::traits::{Key, Value};
use crate::error::Result;
use crate::tree::Range;

/// The entries of a typed table in a range, in key order (reverse with
/// `.rev()`), decoded: `&str` and `&[u8]` keys and values borrow the mapping.
pub struct TypedRange<'a, K: Key + 'static, V: Value + 'static> {
    raw: Range<'a>,
    table: &'a str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K: Key + 'static, V: Value + 'static> TypedRange<'a, K, V> {
    pub(crate) fn new(raw: Range<'a>, table: &'a str) -> TypedRange<'a, K, V> {
        TypedRange { raw, table, _types: PhantomData }
    }

    fn decoded(&self, item: Result<(&'a [u8], &'a [u8])>) -> Result<(K::SelfType<'a>, V::SelfType<'a>)> {
        let (k, v) = item?;
        Ok((decode::<K>(self.table, k)?, decode::<V>(self.table, v)?))
    }
}

impl<'a, K: Key + 'static, V: Value + 'static> Iterator for TypedRange<'a, K, V> {
    type Item = Result<(K::SelfType<'a>, V::SelfType<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.raw.next()?;
        Some(self.decoded(item))
    }
}

impl<K: Key + 'static, V: Value + 'static> DoubleEndedIterator for TypedRange<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.raw.next_back()?;
        Some(self.decoded(item))
    }
}

//! `TypedReadTable`: a typed table as a read transaction sees it.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::RangeBounds;

use super::codec::{self, decode};
use super::definition::TableDefinition;
use super::range::TypedRange;
use super::traits::{Key, Value};
use crate::error::Result;
use crate::txn::{ReadTable, ReadTransaction};

/// A typed table in a read transaction: keys `K`, values `V`, decoded from
/// the mapping (a `&str` or `&[u8]` is a slice of it, valid for the
/// transaction's life).
pub struct TypedReadTable<'txn, K: Key + 'static, V: Value + 'static> {
    raw: ReadTable<'txn>,
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'db> ReadTransaction<'db> {
    /// Opens typed table `table` for reading: [`Error::TableNotFound`] if it
    /// does not exist, [`Error::TableTypeMismatch`] if it was created with
    /// other types (a table created raw holds `bytes` keys and values).
    ///
    /// [`Error::TableNotFound`]: crate::Error::TableNotFound
    /// [`Error::TableTypeMismatch`]: crate::Error::TableTypeMismatch
    pub fn open_typed<K: Key + 'static, V: Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<TypedReadTable<'_, K, V>> {
        let raw = self.open_table(table.name())?;
        self.check_types(table.name(), raw.len(), &table.types())?;
        Ok(TypedReadTable { raw, name: table.name(), _types: PhantomData })
    }
}

impl<'txn, K: Key + 'static, V: Value + 'static> TypedReadTable<'txn, K, V> {
    /// The value stored under `key`; `&str` and `&[u8]` values borrow the mapping.
    pub fn get<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<Option<V::SelfType<'txn>>> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        self.raw.get(&key)?.map(|v| decode::<V>(self.name, v)).transpose()
    }

    /// Whether the table holds `key`.
    pub fn contains_key<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<bool> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        Ok(self.raw.get(&key)?.is_some())
    }

    /// The entries with keys in `range`, in key order (reverse with `.rev()`);
    /// an error if a bound cannot be encoded.
    pub fn range<'k>(&self, range: impl RangeBounds<K::SelfType<'k>>) -> Result<TypedRange<'txn, K, V>> {
        let (start, end) = codec::key_bounds::<K>(self.name, &range)?;
        let raw = self.raw.range((codec::as_slice(&start), codec::as_slice(&end)));
        Ok(TypedRange::new(raw, self.name))
    }

    /// The entries whose keys' encodings start with `prefix`, in key order:
    /// for `&str` or byte-string keys, the keys starting with `prefix`; for
    /// a tuple key, `prefix` can be its first elements' encoding
    /// ([`TupleElement::encode_element`](super::TupleElement::encode_element)).
    pub fn range_prefix_bytes(&self, prefix: &[u8]) -> TypedRange<'txn, K, V> {
        TypedRange::new(self.raw.range_prefix(prefix), self.name)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> TypedRange<'txn, K, V> {
        TypedRange::new(self.raw.range(..), self.name)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(K::SelfType<'txn>, V::SelfType<'txn>)>> {
        self.raw.first()?.map(|(k, v)| Ok((decode::<K>(self.name, k)?, decode::<V>(self.name, v)?))).transpose()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<(K::SelfType<'txn>, V::SelfType<'txn>)>> {
        self.raw.last()?.map(|(k, v)| Ok((decode::<K>(self.name, k)?, decode::<V>(self.name, v)?))).transpose()
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The table's sequence number in this snapshot (see [`Table::next_sequence`]).
    ///
    /// [`Table::next_sequence`]: crate::Table::next_sequence
    pub fn sequence(&self) -> Result<u64> {
        self.raw.sequence()
    }
}

//! `TypedTable`: a typed table opened in the write transaction.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::RangeBounds;

use super::codec::{self, decode, decode_owned};
use super::definition::TableDefinition;
use super::range::TypedRange;
use super::traits::{Key, Value};
use crate::error::Result;
use crate::txn::{Table, WriteTransaction};

/// A typed table in the write transaction: keys `K`, values `V`. Reads see
/// the transaction's own changes; what a change takes out (a replaced or
/// removed value) comes back owned ([`Value::Owned`]).
pub struct TypedTable<'txn, 'db, K: Key + 'static, V: Value + 'static> {
    raw: Table<'txn, 'db>,
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

/// An owned entry: what a pop or an extraction takes out.
pub type OwnedEntry<K, V> = (<K as Value>::Owned, <V as Value>::Owned);

impl<'db> WriteTransaction<'db> {
    /// Opens typed table `table`, creating it (and recording its types) if
    /// it does not exist; [`Error::TableTypeMismatch`] if it was created
    /// with other types (a table created raw holds `bytes` keys and values;
    /// an empty one takes any).
    ///
    /// [`Error::TableTypeMismatch`]: crate::Error::TableTypeMismatch
    pub fn open_typed<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<K, V>,
    ) -> Result<TypedTable<'_, 'db, K, V>> {
        crate::tree::catalog::check_name(table.name())?;
        self.claim_types(table.name(), &table.types())?;
        let raw = self.open_table(table.name())?;
        Ok(TypedTable { raw, name: table.name(), _types: PhantomData })
    }
}

impl<'db, K: Key + 'static, V: Value + 'static> TypedTable<'_, 'db, K, V> {
    fn decode_entry(&self, (k, v): (Vec<u8>, Vec<u8>)) -> Result<OwnedEntry<K, V>> {
        Ok((decode_owned::<K>(self.name, &k)?, decode_owned::<V>(self.name, &v)?))
    }

    /// Stores `value` under `key`; returns the value it replaced, if any.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<V::Owned>> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        let value = codec::encode_value::<V>(self.name, value.borrow())?;
        self.raw.replace(&key, &value)?.map(|old| decode_owned::<V>(self.name, &old)).transpose()
    }

    /// Stores a value of `len` bytes under `key` and hands out its bytes,
    /// zeroed, to fill in place (see [`Table::insert_reserve`]). What they
    /// hold when the borrow ends must be an encoding of a `V` (for `&[u8]`
    /// values, any bytes are): reads of anything else are [`Error::Decode`].
    ///
    /// [`Error::Decode`]: crate::Error::Decode
    pub fn insert_reserve<'k>(&mut self, key: impl Borrow<K::SelfType<'k>>, len: usize) -> Result<&mut [u8]> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        self.raw.insert_reserve(&key, len)
    }

    /// Removes `key`; returns its value, or `None` if it was not there.
    pub fn remove<'k>(&mut self, key: impl Borrow<K::SelfType<'k>>) -> Result<Option<V::Owned>> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        self.raw.take(&key)?.map(|old| decode_owned::<V>(self.name, &old)).transpose()
    }

    /// The value under `key`, as this transaction has it.
    pub fn get<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<Option<V::SelfType<'_>>> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        self.raw.get(&key)?.map(|v| decode::<V>(self.name, v)).transpose()
    }

    /// Whether the table holds `key`.
    pub fn contains_key<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<bool> {
        let key = codec::encode_key::<K>(self.name, key.borrow())?;
        Ok(self.raw.get(&key)?.is_some())
    }

    /// The entries with keys in `range`, in key order (reverse with `.rev()`).
    pub fn range<'k>(&self, range: impl RangeBounds<K::SelfType<'k>>) -> Result<TypedRange<'_, K, V>> {
        let (start, end) = codec::key_bounds::<K>(self.name, &range)?;
        let raw = self.raw.range((codec::as_slice(&start), codec::as_slice(&end)));
        Ok(TypedRange::new(raw, self.name))
    }

    /// The entries whose keys' encodings start with `prefix`, in key order:
    /// for `&str` or byte-string keys, the keys starting with `prefix`; for
    /// a tuple key, `prefix` can be its first elements' encoding
    /// ([`TupleElement::encode_element`](super::TupleElement::encode_element)).
    pub fn range_prefix_bytes(&self, prefix: &[u8]) -> TypedRange<'_, K, V> {
        TypedRange::new(self.raw.range_prefix(prefix), self.name)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> TypedRange<'_, K, V> {
        TypedRange::new(self.raw.range(..), self.name)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(K::SelfType<'_>, V::SelfType<'_>)>> {
        self.raw.first()?.map(|(k, v)| Ok((decode::<K>(self.name, k)?, decode::<V>(self.name, v)?))).transpose()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<(K::SelfType<'_>, V::SelfType<'_>)>> {
        self.raw.last()?.map(|(k, v)| Ok((decode::<K>(self.name, k)?, decode::<V>(self.name, v)?))).transpose()
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Result<Option<OwnedEntry<K, V>>> {
        self.raw.pop_first()?.map(|entry| self.decode_entry(entry)).transpose()
    }

    /// Removes and returns the entry with the largest key.
    pub fn pop_last(&mut self) -> Result<Option<OwnedEntry<K, V>>> {
        self.raw.pop_last()?.map(|entry| self.decode_entry(entry)).transpose()
    }

    /// Keeps only the entries for which `keep` is true; returns how many were
    /// removed. An entry that does not decode is an error, and then nothing
    /// is removed.
    pub fn retain(&mut self, keep: impl FnMut(&K::SelfType<'_>, &V::SelfType<'_>) -> bool) -> Result<u64> {
        self.retain_in(.., keep)
    }

    /// Keeps only the entries in `range` for which `keep` is true (entries
    /// outside it stay); returns how many were removed.
    pub fn retain_in<'k>(
        &mut self,
        range: impl RangeBounds<K::SelfType<'k>>,
        mut keep: impl FnMut(&K::SelfType<'_>, &V::SelfType<'_>) -> bool,
    ) -> Result<u64> {
        Ok(self.remove_where(range, |k, v| !keep(k, v), false)?.len() as u64)
    }

    /// Removes the entries for which `pred` is true and returns them, in key order.
    pub fn extract_if(
        &mut self,
        pred: impl FnMut(&K::SelfType<'_>, &V::SelfType<'_>) -> bool,
    ) -> Result<Vec<OwnedEntry<K, V>>> {
        self.extract_from_if(.., pred)
    }

    /// Removes the entries in `range` for which `pred` is true and returns
    /// them, in key order.
    pub fn extract_from_if<'k>(
        &mut self,
        range: impl RangeBounds<K::SelfType<'k>>,
        pred: impl FnMut(&K::SelfType<'_>, &V::SelfType<'_>) -> bool,
    ) -> Result<Vec<OwnedEntry<K, V>>> {
        let removed = self.remove_where(range, pred, true)?;
        removed.into_iter().map(|entry| self.decode_entry(entry)).collect()
    }

    /// Removes every entry with a key in `range`; returns how many.
    pub fn delete_range<'k>(&mut self, range: impl RangeBounds<K::SelfType<'k>>) -> Result<u64> {
        let (start, end) = codec::key_bounds::<K>(self.name, &range)?;
        self.raw.delete_range::<&[u8]>((codec::as_slice(&start), codec::as_slice(&end)))
    }

    /// Removes every entry; returns how many there were. The table (and its
    /// recorded types) stays.
    pub fn clear(&mut self) -> Result<u64> {
        self.raw.clear()
    }

    fn remove_where<'k>(
        &mut self,
        range: impl RangeBounds<K::SelfType<'k>>,
        mut pred: impl FnMut(&K::SelfType<'_>, &V::SelfType<'_>) -> bool,
        values: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let bounds = codec::bounds::<K>(self.name, &range)?;
        let name = self.name;
        self.raw.remove_where(bounds, |k, v| Ok(pred(&decode::<K>(name, k)?, &decode::<V>(name, v)?)), values)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The table's sequence number (see [`Table::next_sequence`]).
    pub fn sequence(&self) -> Result<u64> {
        self.raw.sequence()
    }

    /// Adds one to the table's sequence number and returns it (see [`Table::next_sequence`]).
    pub fn next_sequence(&mut self) -> Result<u64> {
        self.raw.next_sequence()
    }

    /// Sets the table's sequence number (see [`Table::set_sequence`]).
    pub fn set_sequence(&mut self, value: u64) -> Result<()> {
        self.raw.set_sequence(value)
    }
}

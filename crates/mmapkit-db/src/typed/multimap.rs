//! Multimap tables: each key maps to a sorted set of values. An entry of the
//! underlying table is one (key, value) pair: the key's tuple-element
//! encoding followed by the value's, with nothing stored beside it, so the
//! pairs sort by key and then by value, a key's values are one range, and a
//! value is read straight from the mapping.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::Bound;

use super::codec;
use super::traits::{Key, TupleElement};
use crate::error::{Error, Result};
use crate::tree::Range;
use crate::txn::{ReadTable, ReadTransaction, Table, TableTypes, WriteTransaction};

/// A multimap table: its name, with the key type `K` and the value type `V`
/// (each key holds a set of values, in `V`'s order).
///
/// ```
/// # fn main() -> mmapkit_db::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use mmapkit_db::{Database, MultimapTableDefinition};
///
/// const TAGS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("tags");
/// // SAFETY: no other process writes this file while it is open.
/// let db = unsafe { Database::create(dir.path().join("tags.db"))? };
/// let mut txn = db.begin_write()?;
/// {
///     let mut tags = txn.open_multimap(TAGS)?;
///     tags.insert("apple", "red")?;
///     tags.insert("apple", "fruit")?;
///     assert!(!tags.insert("apple", "red")?, "already there");
/// }
/// txn.commit()?;
/// let read = db.begin_read()?;
/// let tags = read.open_multimap(TAGS)?;
/// let apple: Vec<&str> = tags.get("apple")?.collect::<Result<_, _>>()?;
/// assert_eq!(apple, ["fruit", "red"]);
/// # Ok(())
/// # }
/// ```
pub struct MultimapTableDefinition<K: TupleElement + 'static, V: Key + 'static> {
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: TupleElement + 'static, V: Key + 'static> MultimapTableDefinition<K, V> {
    /// The definition of multimap table `name`.
    pub const fn new(name: &'static str) -> MultimapTableDefinition<K, V> {
        MultimapTableDefinition { name, _types: PhantomData }
    }

    /// The table's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    fn types(&self) -> TableTypes {
        TableTypes { key: K::type_name(), value: format!("set of {}", V::type_name()) }
    }
}

impl<K: TupleElement + 'static, V: Key + 'static> Clone for MultimapTableDefinition<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: TupleElement + 'static, V: Key + 'static> Copy for MultimapTableDefinition<K, V> {}

impl<K: TupleElement + 'static, V: Key + 'static> std::fmt::Debug for MultimapTableDefinition<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MultimapTableDefinition({:?}: {} -> set of {})", self.name, K::type_name(), V::type_name())
    }
}

/// The stored key of `key`'s entries: its element encoding.
fn key_prefix<K: TupleElement>(table: &str, key: &K::SelfType<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    K::encode_element(key, &mut out).map_err(|why| Error::Encode { table: table.to_string(), what: why })?;
    Ok(out)
}

/// The stored key of the pair (`key`, `value`).
fn pair<K: TupleElement, V: Key>(table: &str, key: &K::SelfType<'_>, value: &V::SelfType<'_>) -> Result<Vec<u8>> {
    let mut out = key_prefix::<K>(table, key)?;
    out.extend_from_slice(&codec::encode_value::<V>(table, value)?);
    Ok(out)
}

/// The pair a stored key holds.
fn split_pair<'a, K: TupleElement + 'a, V: Key + 'a>(
    table: &str,
    bytes: &'a [u8],
) -> Result<(K::SelfType<'a>, V::SelfType<'a>)> {
    let bad = |why: String| Error::Decode { table: table.to_string(), what: format!("a multimap entry: {why}") };
    let (key, rest) = K::decode_element(bytes).map_err(bad)?;
    Ok((key, V::decode(rest).map_err(bad)?))
}

/// The pairs of a multimap table in a range, in order (reverse with
/// `.rev()`), decoded from the mapping.
pub struct MultimapRange<'a, K: TupleElement + 'static, V: Key + 'static> {
    raw: Range<'a>,
    table: &'a str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K: TupleElement + 'static, V: Key + 'static> Iterator for MultimapRange<'a, K, V> {
    type Item = Result<(K::SelfType<'a>, V::SelfType<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.raw.next()?;
        Some(item.and_then(|(k, _)| split_pair::<K, V>(self.table, k)))
    }
}

impl<K: TupleElement + 'static, V: Key + 'static> DoubleEndedIterator for MultimapRange<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.raw.next_back()?;
        Some(item.and_then(|(k, _)| split_pair::<K, V>(self.table, k)))
    }
}

/// The values of one key of a multimap table, in order (reverse with `.rev()`).
pub struct MultimapValues<'a, K: TupleElement + 'static, V: Key + 'static>(MultimapRange<'a, K, V>);

impl<'a, K: TupleElement + 'static, V: Key + 'static> Iterator for MultimapValues<'a, K, V> {
    type Item = Result<V::SelfType<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.0.next()?.map(|(_, v)| v))
    }
}

impl<K: TupleElement + 'static, V: Key + 'static> DoubleEndedIterator for MultimapValues<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        Some(self.0.next_back()?.map(|(_, v)| v))
    }
}

/// A multimap table in the write transaction.
pub struct MultimapTable<'txn, 'db, K: TupleElement + 'static, V: Key + 'static> {
    raw: Table<'txn, 'db>,
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

/// A multimap table in a read transaction.
pub struct ReadMultimapTable<'txn, K: TupleElement + 'static, V: Key + 'static> {
    raw: ReadTable<'txn>,
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'db> WriteTransaction<'db> {
    /// Opens multimap table `table`, creating it if it does not exist;
    /// [`Error::TableTypeMismatch`] if it was created with other types or
    /// as another kind of table.
    pub fn open_multimap<K: TupleElement + 'static, V: Key + 'static>(
        &mut self,
        table: MultimapTableDefinition<K, V>,
    ) -> Result<MultimapTable<'_, 'db, K, V>> {
        crate::tree::catalog::check_name(table.name())?;
        self.claim_types(table.name(), &table.types())?;
        let raw = self.open_table(table.name())?;
        Ok(MultimapTable { raw, name: table.name(), _types: PhantomData })
    }
}

impl ReadTransaction<'_> {
    /// Opens multimap table `table` for reading: [`Error::TableNotFound`] if
    /// it does not exist, [`Error::TableTypeMismatch`] if it holds other types.
    pub fn open_multimap<K: TupleElement + 'static, V: Key + 'static>(
        &self,
        table: MultimapTableDefinition<K, V>,
    ) -> Result<ReadMultimapTable<'_, K, V>> {
        let raw = self.open_table(table.name())?;
        self.check_types(table.name(), raw.len(), &table.types())?;
        Ok(ReadMultimapTable { raw, name: table.name(), _types: PhantomData })
    }
}

impl<K: TupleElement + 'static, V: Key + 'static> MultimapTable<'_, '_, K, V> {
    /// Adds `value` to `key`'s set; `false` if it was there already.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<bool> {
        let stored = pair::<K, V>(self.name, key.borrow(), value.borrow())?;
        Ok(self.raw.replace(&stored, &[])?.is_none())
    }

    /// Takes `value` out of `key`'s set; `false` if it was not there.
    pub fn remove<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<bool> {
        let stored = pair::<K, V>(self.name, key.borrow(), value.borrow())?;
        self.raw.remove(&stored)
    }

    /// Removes every value of `key`; returns how many there were.
    pub fn remove_all<'k>(&mut self, key: impl Borrow<K::SelfType<'k>>) -> Result<u64> {
        let prefix = key_prefix::<K>(self.name, key.borrow())?;
        let end = crate::tree::reads::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.raw.delete_range::<Vec<u8>>((Bound::Included(prefix), end))
    }

    /// Whether `value` is in `key`'s set.
    pub fn contains<'k, 'v>(
        &self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<bool> {
        let stored = pair::<K, V>(self.name, key.borrow(), value.borrow())?;
        Ok(self.raw.get(&stored)?.is_some())
    }

    /// `key`'s values, in order.
    pub fn get<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<MultimapValues<'_, K, V>> {
        let prefix = key_prefix::<K>(self.name, key.borrow())?;
        Ok(MultimapValues(MultimapRange { raw: self.raw.range_prefix(&prefix), table: self.name, _types: PhantomData }))
    }

    /// Every (key, value) pair, in order.
    pub fn iter(&self) -> MultimapRange<'_, K, V> {
        MultimapRange { raw: self.raw.range(..), table: self.name, _types: PhantomData }
    }

    /// Number of (key, value) pairs.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }

    /// Whether the table has no pairs.
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

impl<'txn, K: TupleElement + 'static, V: Key + 'static> ReadMultimapTable<'txn, K, V> {
    /// `key`'s values, in order, read from the mapping.
    pub fn get<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<MultimapValues<'txn, K, V>> {
        let prefix = key_prefix::<K>(self.name, key.borrow())?;
        Ok(MultimapValues(MultimapRange { raw: self.raw.range_prefix(&prefix), table: self.name, _types: PhantomData }))
    }

    /// Whether `value` is in `key`'s set.
    pub fn contains<'k, 'v>(
        &self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<bool> {
        let stored = pair::<K, V>(self.name, key.borrow(), value.borrow())?;
        Ok(self.raw.get(&stored)?.is_some())
    }

    /// Every (key, value) pair, in order.
    pub fn iter(&self) -> MultimapRange<'txn, K, V> {
        MultimapRange { raw: self.raw.range(..), table: self.name, _types: PhantomData }
    }

    /// Number of (key, value) pairs.
    pub fn len(&self) -> u64 {
        self.raw.len()
    }

    /// Whether the table has no pairs.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The table's sequence number in this snapshot (see [`Table::next_sequence`]).
    pub fn sequence(&self) -> Result<u64> {
        self.raw.sequence()
    }
}

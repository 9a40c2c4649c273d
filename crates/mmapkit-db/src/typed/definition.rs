//! `TableDefinition`: a table's name and its key and value types, made in a
//! `const`.

use std::marker::PhantomData;

use super::traits::{Key, Value};
use crate::txn::TableTypes;

/// A typed table: its name, with the key type `K` and value type `V`.
///
/// ```
/// use mmapkit_db::TableDefinition;
///
/// const SCORES: TableDefinition<(&str, u32), u64> = TableDefinition::new("scores");
/// assert_eq!(SCORES.name(), "scores");
/// ```
pub struct TableDefinition<K: Key + 'static, V: Value + 'static> {
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Key + 'static, V: Value + 'static> TableDefinition<K, V> {
    /// The definition of table `name` (checked when the table is opened).
    pub const fn new(name: &'static str) -> TableDefinition<K, V> {
        TableDefinition { name, _types: PhantomData }
    }

    /// The table's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The type names the table records.
    pub(crate) fn types(&self) -> TableTypes {
        TableTypes { key: K::type_name(), value: V::type_name() }
    }
}

impl<K: Key + 'static, V: Value + 'static> Clone for TableDefinition<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Key + 'static, V: Value + 'static> Copy for TableDefinition<K, V> {}

impl<K: Key + 'static, V: Value + 'static> std::fmt::Debug for TableDefinition<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableDefinition({:?}: {} -> {})", self.name, K::type_name(), V::type_name())
    }
}

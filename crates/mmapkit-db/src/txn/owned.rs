//! Read transactions that own a share of their database instead of
//! borrowing it: `Send + 'static`, to keep in a struct or move into a
//! thread or an async task.

use std::ops::Deref;
use std::sync::Arc;

use super::read::ReadTransaction;
use crate::db::Database;

/// A [`ReadTransaction`] holding an `Arc` of its [`Database`], made by
/// [`Database::begin_read_owned`]. It dereferences to the transaction, so it
/// opens tables and reads as one does; what it returns borrows from it.
///
/// ```
/// # fn main() -> mmapkit_db::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::sync::Arc;
/// // SAFETY: no other process writes this file while it is open.
/// let db = Arc::new(unsafe { mmapkit_db::Database::create(dir.path().join("owned.db"))? });
/// let mut w = db.begin_write()?;
/// w.open_table("t")?.insert(b"k", b"v")?;
/// w.commit()?;
/// let snapshot = db.begin_read_owned()?;
/// let reader = std::thread::spawn(move || {
///     let value = snapshot.open_table("t").unwrap().get(b"k").unwrap().map(<[u8]>::to_vec);
///     value
/// });
/// assert_eq!(reader.join().unwrap(), Some(b"v".to_vec()));
/// # Ok(())
/// # }
/// ```
pub struct OwnedReadTransaction {
    // Declared first, so dropped first: it borrows from `db`.
    txn: ReadTransaction<'static>,
    db: Arc<Database>,
}

impl OwnedReadTransaction {
    /// A snapshot of `db`'s newest commit, owning a share of `db`.
    pub(crate) fn begin(db: &Arc<Database>) -> crate::Result<OwnedReadTransaction> {
        let db = Arc::clone(db);
        let txn = db.begin_read()?;
        // SAFETY: the transaction borrows the database inside the `Arc`'s
        // allocation, which does not move and lives while `self.db` holds a
        // share of it; the transaction is dropped before that share (field
        // order), and nothing it hands out outlives a borrow of `self`
        // (every method of `ReadTransaction` ties what it returns to `&self`).
        let txn = unsafe { std::mem::transmute::<ReadTransaction<'_>, ReadTransaction<'static>>(txn) };
        Ok(OwnedReadTransaction { txn, db })
    }

    /// The database the snapshot is of.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }
}

impl Deref for OwnedReadTransaction {
    type Target = ReadTransaction<'static>;

    fn deref(&self) -> &ReadTransaction<'static> {
        &self.txn
    }
}

impl std::fmt::Debug for OwnedReadTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedReadTransaction").field("id", &self.txn.id()).field("db", &self.db).finish()
    }
}

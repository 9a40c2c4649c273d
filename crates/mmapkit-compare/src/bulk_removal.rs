//! The bulk removals of the workload: `retain` keeping about half the keys and `delete_range` removing a
//! contiguous quarter, each in one durable write transaction from the same table, and the check that each
//! engine kept exactly the entries it should have.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use crate::data::{Items, KEY_LEN};
use crate::engines::{Engine, ReadTable, ReadTxn, WriteTable, WriteTxn};

/// What `retain` keeps: the keys whose last byte is even.
pub fn kept_by_retain(key: &[u8]) -> bool {
    key[KEY_LEN - 1].is_multiple_of(2)
}

/// Start (included) of the range `delete_range` removes: the keys whose first byte is 0x40 to 0x7f.
pub const DELETED_FROM: &[u8] = &[0x40];
/// End (excluded) of the range `delete_range` removes.
pub const DELETED_UNTIL: &[u8] = &[0x80];

/// Whether `key` is in the range `delete_range` removes.
pub fn in_deleted_range(key: &[u8]) -> bool {
    (DELETED_FROM..DELETED_UNTIL).contains(&key)
}

/// Runs `retain` on the table in one write transaction and commits it; returns the time of the whole
/// transaction, commit included.
pub fn timed_retain<E: Engine>(engine: &E) -> Result<Duration> {
    let start = Instant::now();
    let mut txn = engine.begin_write()?;
    txn.table()?.retain(kept_by_retain)?;
    txn.commit()?;
    Ok(start.elapsed())
}

/// Runs `delete_range` on the table in one write transaction and commits it; returns the time of the whole
/// transaction, commit included.
pub fn timed_delete_range<E: Engine>(engine: &E) -> Result<Duration> {
    let start = Instant::now();
    let mut txn = engine.begin_write()?;
    txn.table()?.delete_range(DELETED_FROM, DELETED_UNTIL)?;
    txn.commit()?;
    Ok(start.elapsed())
}

/// Puts back, in one write transaction, the items of `present` that `retain` removed, so the next step starts
/// from the table as it was before it.
pub fn restore_retained<E: Engine>(engine: &E, items: &Items, present: std::ops::Range<u64>) -> Result<()> {
    let mut txn = engine.begin_write()?;
    {
        let mut table = txn.table()?;
        for i in present {
            let key = items.key(i);
            if !kept_by_retain(&key) {
                table.insert(&key, &items.value(i))?;
            }
        }
    }
    txn.commit()
}

/// Fails unless `engine`'s table holds exactly `expected` entries, both by its `len()` and by walking it, and
/// none of them is one `removed` says should be gone. `what` names the step for the error.
pub fn check_remaining<E: Engine>(
    engine: &E,
    what: &str,
    expected: u64,
    removed: impl Fn(&[u8]) -> bool,
) -> Result<()> {
    let name = engine.kind().name();
    let txn = engine.begin_read()?;
    let table = txn.table()?;
    let len = table.len()?;
    let mut walked = 0u64;
    let mut wrongly_kept = 0u64;
    // From [0], which every non-empty key sorts at or after: LMDB refuses an empty key, even as a bound.
    table.range_from(&[0], usize::MAX, |key, _| {
        walked += 1;
        wrongly_kept += u64::from(removed(key));
    })?;
    ensure!(
        (len, walked, wrongly_kept) == (expected, expected, 0),
        "{name}: after {what}, len() is {len} and the table holds {walked} entries ({wrongly_kept} of them ones it \
         should have removed); it should hold {expected}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::redb::Redb;
    use crate::workload::insert_batch;

    /// Loads items `0..n` into a new redb database in `dir`.
    fn loaded(dir: &std::path::Path, items: &Items, n: u64) -> Redb {
        let db = Redb::create(&dir.join("check.redb")).unwrap();
        insert_batch(&db, items, 0..n).unwrap();
        db
    }

    #[test]
    fn the_count_check_accepts_the_right_table_and_names_a_wrong_one() {
        let dir = tempfile::tempdir().unwrap();
        let items = Items::new(11);
        let db = loaded(dir.path(), &items, 400);
        let kept = (0..400).filter(|&i| kept_by_retain(&items.key(i))).count() as u64;
        assert!(kept > 0 && kept < 400, "{kept} of 400 keys end in an even byte");

        timed_retain(&db).unwrap();
        check_remaining(&db, "retain", kept, |key| !kept_by_retain(key)).unwrap();
        // One entry too many expected, or one entry that should be gone: both fail, naming the engine and step.
        let err = check_remaining(&db, "retain", kept + 1, |key| !kept_by_retain(key)).unwrap_err().to_string();
        assert!(err.contains("redb: after retain") && err.contains(&format!("should hold {}", kept + 1)), "{err}");
        let first = (0..400).map(|i| items.key(i)).find(|key| kept_by_retain(key)).unwrap();
        let err = check_remaining(&db, "retain", kept, |key| key == first).unwrap_err().to_string();
        assert!(err.contains("(1 of them ones it should have removed)"), "{err}");

        restore_retained(&db, &items, 0..400).unwrap();
        check_remaining(&db, "the restore", 400, |_| false).unwrap();
        timed_delete_range(&db).unwrap();
        let left = (0..400).filter(|&i| !in_deleted_range(&items.key(i))).count() as u64;
        assert!(left < 400, "no key of 400 in the deleted range");
        check_remaining(&db, "delete_range", left, in_deleted_range).unwrap();
    }

    #[test]
    fn the_deleted_range_is_the_keys_from_0x40_to_0x7f() {
        assert!(in_deleted_range(&[0x40; KEY_LEN]) && in_deleted_range(&[0x7f; KEY_LEN]));
        assert!(!in_deleted_range(&[0x3f; KEY_LEN]) && !in_deleted_range(&[0x80; KEY_LEN]));
    }
}

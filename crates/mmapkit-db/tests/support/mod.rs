//! Helpers shared by the store's integration tests: a seeded random
//! generator, deterministic values, reading a whole database into a model,
//! and describing how two states differ.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mmapkit_db::Database;

/// Table name → (key → value): a whole database, or the model of one.
pub type Tables = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// SplitMix64: small, seedable, good enough to pick crash points and subsets.
#[derive(Clone, Debug)]
pub struct Rng(u64);

/// The numbers of an [`Rng`] from `start`, one per call.
pub fn stream(start: u64) -> impl FnMut() -> u64 {
    let mut rng = Rng::new(start);
    move || rng.next_u64()
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// The seed in environment variable `var`, else one from the clock.
pub fn seed(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("{var}={s:?} is not a u64")),
        Err(_) => {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            (nanos as u64) ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// `len` deterministic, varied bytes from `seed` (xorshift).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every table of the newest commit, read by full range scans, and each
/// table's `len()` compared with what the scan found.
pub fn dump(db: &Database) -> Result<Tables, String> {
    let read = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    let mut all = Tables::new();
    for name in read.list_tables().map_err(|e| format!("list_tables: {e}"))? {
        let table = read.open_table(&name).map_err(|e| format!("open_table({name:?}): {e}"))?;
        let mut entries = BTreeMap::new();
        for item in table.range(..) {
            let (k, v) = item.map_err(|e| format!("scanning table {name:?}: {e}"))?;
            entries.insert(k.to_vec(), v.to_vec());
        }
        if table.len() != entries.len() as u64 {
            return Err(format!("table {name:?}: len() is {}, a full scan finds {}", table.len(), entries.len()));
        }
        all.insert(name, entries);
    }
    Ok(all)
}

/// Looks every key of `want` up with `get` (the scan in [`dump`] checks the
/// other direction: no key that should not be there).
pub fn point_lookups(db: &Database, want: &Tables) -> Result<(), String> {
    let read = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    for (name, entries) in want {
        let table = read.open_table(name).map_err(|e| format!("open_table({name:?}): {e}"))?;
        for (k, v) in entries {
            match table.get(k) {
                Ok(Some(got)) if got == &v[..] => {}
                Ok(Some(got)) => {
                    return Err(format!("table {name:?} key {}: get gives {}, want {}", show(k), show(got), show(v)));
                }
                Ok(None) => return Err(format!("table {name:?} key {}: get finds nothing", show(k))),
                Err(e) => return Err(format!("table {name:?} key {}: get fails: {e}", show(k))),
            }
        }
    }
    Ok(())
}

/// `db.check()`, as a list of problems (empty when clean).
pub fn problems(db: &Database) -> Vec<String> {
    match db.check() {
        Ok(report) => report.problems.iter().map(|p| p.to_string()).collect(),
        Err(e) => vec![format!("check failed: {e}")],
    }
}

/// A short description of a key or value: its length and first bytes.
pub fn show(b: &[u8]) -> String {
    let head = &b[..b.len().min(24)];
    format!("{:?} ({} bytes)", String::from_utf8_lossy(head), b.len())
}

/// How `got` differs from `want`, one line per difference (at most 20).
pub fn diff(got: &Tables, want: &Tables) -> String {
    let mut lines = Vec::new();
    let names: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    for name in names {
        match (got.get(name), want.get(name)) {
            (Some(_), None) => lines.push(format!("table {name:?} exists but should not")),
            (None, Some(_)) => lines.push(format!("table {name:?} is missing")),
            (Some(g), Some(w)) => {
                let keys: BTreeSet<&Vec<u8>> = g.keys().chain(w.keys()).collect();
                for k in keys {
                    match (g.get(k), w.get(k)) {
                        (Some(a), Some(b)) if a == b => {}
                        (Some(a), Some(b)) => {
                            lines.push(format!("{name:?} {}: holds {}, want {}", show(k), show(a), show(b)))
                        }
                        (Some(a), None) => lines.push(format!("{name:?} {}: extra entry {}", show(k), show(a))),
                        (None, Some(b)) => lines.push(format!("{name:?} {}: missing, want {}", show(k), show(b))),
                        (None, None) => unreachable!("the key came from one of the maps"),
                    }
                }
            }
            (None, None) => unreachable!("the name came from one of the maps"),
        }
    }
    let mut out = String::new();
    for line in lines.iter().take(20) {
        let _ = writeln!(out, "  {line}");
    }
    if lines.len() > 20 {
        let _ = writeln!(out, "  ... and {} more", lines.len() - 20);
    }
    out
}

//! Which engines a run compares, as `--engines`, the table and the JSON name them.

use std::fmt;

use clap::ValueEnum;
use clap::builder::PossibleValue;
use serde::Serialize;

/// One of the engines compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// redb.
    Redb,
    /// LMDB, through heed.
    Lmdb,
    /// mmapkit-db, the engine under test: only in a binary built with the `mmapkit-db` feature.
    MmapkitDb,
    /// mmapkit-db through its typed API (`TableDefinition<&[u8], &[u8]>`), on the same bytes as
    /// [`EngineKind::MmapkitDb`]: what the typed layer costs. Only with the `mmapkit-db` feature.
    MmapkitDbTyped,
}

/// The engines this binary was built with, in the order they run by default and appear as columns.
#[cfg(feature = "mmapkit-db")]
const BUILT: [EngineKind; 4] = [EngineKind::Redb, EngineKind::Lmdb, EngineKind::MmapkitDb, EngineKind::MmapkitDbTyped];
/// The engines this binary was built with, in the order they run by default and appear as columns.
#[cfg(not(feature = "mmapkit-db"))]
const BUILT: [EngineKind; 2] = [EngineKind::Redb, EngineKind::Lmdb];

impl EngineKind {
    /// The engines this binary was built with, in the order they run by default and appear as columns.
    pub fn built() -> &'static [EngineKind] {
        &BUILT
    }

    /// The engine's name: on the command line, as a column of the table and as the `engine` field of the JSON.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Redb => "redb",
            EngineKind::Lmdb => "lmdb",
            EngineKind::MmapkitDb => "mmapkit-db",
            EngineKind::MmapkitDbTyped => "mmapkit-db-typed",
        }
    }
}

/// The names `--engines` takes: those of the engines built in.
impl ValueEnum for EngineKind {
    fn value_variants<'a>() -> &'a [Self] {
        &BUILT
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_built_in_is_parsed_from_its_own_name() {
        for &engine in EngineKind::built() {
            assert_eq!(EngineKind::from_str(engine.name(), false), Ok(engine));
            assert_eq!(serde_json::to_value(engine).unwrap(), engine.name());
        }
        assert!(EngineKind::from_str("nosuch", false).is_err());
        for name in ["mmapkit-db", "mmapkit-db-typed"] {
            assert_eq!(EngineKind::from_str(name, false).is_ok(), cfg!(feature = "mmapkit-db"), "{name}");
        }
    }
}

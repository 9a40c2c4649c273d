//! What gets measured: access patterns, cache states, methods, and how many
//! operations each scenario runs.

use serde::Serialize;

/// How the file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Front to back, once.
    Sequential,
    /// Blocks of `block` bytes at random offsets aligned to the block (or to 4 KiB).
    Random { block: usize },
    /// Many small files, each opened, read whole and closed.
    SmallFiles { file_bytes: usize },
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Sequential => "sequential",
            Pattern::Random { .. } => "random",
            Pattern::SmallFiles { .. } => "small-files",
        }
    }

    /// Bytes one operation reads.
    pub fn block_bytes(self) -> usize {
        match self {
            Pattern::Sequential => SEQUENTIAL_CHUNK,
            Pattern::Random { block } => block,
            Pattern::SmallFiles { file_bytes } => file_bytes,
        }
    }
}

/// The unit a sequential scan counts as one operation (and `pread`'s chunk).
pub const SEQUENTIAL_CHUNK: usize = 1 << 20;

/// Whether the file's pages are in the page cache when a method starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cache {
    Warm,
    Cold,
}

impl Cache {
    pub fn name(self) -> &'static str {
        match self {
            Cache::Warm => "warm",
            Cache::Cold => "cold",
        }
    }
}

/// A way of reading the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// A fresh map, default advice, bytes read in place.
    Mmap,
    /// A fresh map with the advice that fits the pattern (random or sequential).
    MmapAdvice,
    /// A fresh map with every page faulted in up front (`MAP_POPULATE`).
    MmapPopulate,
    /// `pread` into a buffer reused for every operation.
    Pread,
    /// Sequential reads through a `BufReader`: plain buffered I/O.
    Buffered,
    /// `open` + `read` of a whole small file into a reused buffer.
    Read,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Mmap => "mmap",
            Method::MmapAdvice => "mmap_advice",
            Method::MmapPopulate => "mmap_populate",
            Method::Pread => "pread",
            Method::Buffered => "buffered_read",
            Method::Read => "read",
        }
    }

    /// Whether the method reads through a mapping (as opposed to a copy).
    pub fn is_mmap(self) -> bool {
        matches!(self, Method::Mmap | Method::MmapAdvice | Method::MmapPopulate)
    }

    /// The methods that make sense for a pattern.
    pub fn for_pattern(pattern: Pattern) -> &'static [Method] {
        match pattern {
            Pattern::Sequential => {
                &[Method::Mmap, Method::MmapAdvice, Method::MmapPopulate, Method::Pread, Method::Buffered]
            }
            Pattern::Random { .. } => &[Method::Mmap, Method::MmapAdvice, Method::MmapPopulate, Method::Pread],
            Pattern::SmallFiles { .. } => &[Method::Mmap, Method::Read],
        }
    }
}

/// One thing to measure: a pattern, a cache state, a thread count, and how
/// many operations (for a sequential scan: the whole file).
#[derive(Clone, Debug)]
pub struct Scenario {
    pub pattern: Pattern,
    pub cache: Cache,
    pub threads: usize,
    pub ops: usize,
}

impl Scenario {
    /// A stable identifier, for JSON and verdicts: `random-4096-cold-t1`.
    pub fn id(&self) -> String {
        match self.pattern {
            Pattern::Sequential => format!("sequential-{}-t{}", self.cache.name(), self.threads),
            Pattern::Random { block } => format!("random-{block}-{}-t{}", self.cache.name(), self.threads),
            Pattern::SmallFiles { .. } => format!("small-files-{}-t{}", self.cache.name(), self.threads),
        }
    }

    /// A short label for a chart axis: `4 KiB cold`, `seq warm x2`.
    pub fn label(&self) -> String {
        let what = match self.pattern {
            Pattern::Sequential => "seq".to_owned(),
            Pattern::Random { block } => crate::common::units::format_bytes(block as u64),
            Pattern::SmallFiles { .. } => "small files".to_owned(),
        };
        let threads = if self.threads > 1 { format!(" x{}", self.threads) } else { String::new() };
        format!("{what} {}{threads}", self.cache.name())
    }

    /// A title for people: `random 4 KiB reads, cold cache`.
    pub fn title(&self) -> String {
        let what = match self.pattern {
            Pattern::Sequential => "sequential scan".to_owned(),
            Pattern::Random { block } => format!("random {} reads", crate::common::units::format_bytes(block as u64)),
            Pattern::SmallFiles { file_bytes } => {
                format!("{} small files of {}", self.ops, crate::common::units::format_bytes(file_bytes as u64))
            }
        };
        let threads = if self.threads > 1 { format!(", {} threads", self.threads) } else { String::new() };
        format!("{what}, {} cache{threads}", self.cache.name())
    }
}

/// How big a run is.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub random_8b: (usize, usize),
    pub random_4k: (usize, usize),
    pub random_64k: (usize, usize),
    pub small_files: usize,
}

impl Plan {
    /// Operation counts (warm, cold) per random block size. Cold operations
    /// each wait for the disk, so they are far fewer.
    pub fn new(quick: bool, small_files: Option<usize>) -> Plan {
        if quick {
            Plan {
                random_8b: (200_000, 2_000),
                random_4k: (50_000, 1_000),
                random_64k: (5_000, 200),
                small_files: small_files.unwrap_or(1_000),
            }
        } else {
            Plan {
                random_8b: (2_000_000, 5_000),
                random_4k: (500_000, 5_000),
                random_64k: (50_000, 1_000),
                small_files: small_files.unwrap_or(10_000),
            }
        }
    }

    /// Every file scenario, in the order they run; with `threads`, the
    /// sequential and random 4 KiB warm scenarios again on that many threads.
    pub fn scenarios(&self, threads: Option<usize>) -> Vec<Scenario> {
        let mut list = Vec::new();
        for cache in [Cache::Warm, Cache::Cold] {
            let pick = |(warm, cold): (usize, usize)| if cache == Cache::Warm { warm } else { cold };
            list.push(Scenario { pattern: Pattern::Sequential, cache, threads: 1, ops: 0 });
            list.push(Scenario { pattern: Pattern::Random { block: 8 }, cache, threads: 1, ops: pick(self.random_8b) });
            list.push(Scenario {
                pattern: Pattern::Random { block: 4096 },
                cache,
                threads: 1,
                ops: pick(self.random_4k),
            });
            list.push(Scenario {
                pattern: Pattern::Random { block: 65536 },
                cache,
                threads: 1,
                ops: pick(self.random_64k),
            });
        }
        if let Some(n) = threads.filter(|&n| n > 1) {
            list.push(Scenario { pattern: Pattern::Sequential, cache: Cache::Warm, threads: n, ops: 0 });
            list.push(Scenario {
                pattern: Pattern::Random { block: 4096 },
                cache: Cache::Warm,
                threads: n,
                ops: self.random_4k.0,
            });
        }
        list
    }
}

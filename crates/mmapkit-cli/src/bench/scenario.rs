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
    /// 4 KiB records written in `order`, made durable after every `every` writes (and at the end).
    Write { order: WriteOrder, every: usize },
}

/// Where a write scenario's records go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOrder {
    /// At random record slots of an existing file.
    Random,
    /// Slot after slot of an existing file.
    Sequential,
    /// At the end of a new file, which grows.
    Append,
}

impl WriteOrder {
    pub fn name(self) -> &'static str {
        match self {
            WriteOrder::Random => "random",
            WriteOrder::Sequential => "sequential",
            WriteOrder::Append => "append",
        }
    }
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Sequential => "sequential",
            Pattern::Random { .. } => "random",
            Pattern::SmallFiles { .. } => "small-files",
            Pattern::Write { order: WriteOrder::Random, .. } => "random-write",
            Pattern::Write { order: WriteOrder::Sequential, .. } => "sequential-write",
            Pattern::Write { order: WriteOrder::Append, .. } => "append",
        }
    }

    /// Bytes one operation reads.
    pub fn block_bytes(self) -> usize {
        match self {
            Pattern::Sequential => SEQUENTIAL_CHUNK,
            Pattern::Random { block } => block,
            Pattern::SmallFiles { file_bytes } => file_bytes,
            Pattern::Write { .. } => crate::bench::writes::RECORD,
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
    /// Cold at the start, and the method's process limited to this many
    /// bytes of memory (page cache included) by a cgroup of its own.
    Limited(u64),
}

impl Cache {
    pub fn name(self) -> &'static str {
        match self {
            Cache::Warm => "warm",
            Cache::Cold => "cold",
            Cache::Limited(_) => "limited",
        }
    }

    /// How a title says it: `warm cache`, `memory limited to 256 MiB`.
    pub fn describe(self) -> String {
        match self {
            Cache::Limited(bytes) => format!("memory limited to {}", crate::common::units::format_bytes(bytes)),
            other => format!("{} cache", other.name()),
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
    /// `pread` on a descriptor opened with `O_DIRECT` (no page cache), into a
    /// page-aligned buffer.
    PreadDirect,
    /// Sequential reads through a `BufReader`: plain buffered I/O.
    Buffered,
    /// `open` + `read` of a whole small file into a reused buffer.
    Read,
    /// Writes into a shared map of the file; durable with `flush_range` of the
    /// record (every write) or `flush` of the map (every N).
    MmapFlush,
    /// `pwrite` of each record, durable with `fdatasync`.
    PwriteSync,
    /// Appends into a `GrowableMap`, grown 1 MiB at a time; durable with
    /// `flush_range` (every write) or `flush` (every N).
    GrowableMap,
    /// `write` at the end of the file (`O_APPEND`), durable with `fdatasync`.
    Write,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Mmap => "mmap",
            Method::MmapAdvice => "mmap_advice",
            Method::MmapPopulate => "mmap_populate",
            Method::Pread => "pread",
            Method::PreadDirect => "pread_direct",
            Method::Buffered => "buffered_read",
            Method::Read => "read",
            Method::MmapFlush => "mmap_flush",
            Method::PwriteSync => "pwrite_fdatasync",
            Method::GrowableMap => "growable_map",
            Method::Write => "write_fdatasync",
        }
    }

    /// The method called `name` (as [`Method::name`] gives it).
    pub fn from_name(name: &str) -> anyhow::Result<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            anyhow::anyhow!("unknown method {name:?}; the methods are {}", known.join(", "))
        })
    }

    /// Every method.
    pub const ALL: [Method; 11] = [
        Method::Mmap,
        Method::MmapAdvice,
        Method::MmapPopulate,
        Method::Pread,
        Method::PreadDirect,
        Method::Buffered,
        Method::Read,
        Method::MmapFlush,
        Method::PwriteSync,
        Method::GrowableMap,
        Method::Write,
    ];

    /// The methods run under a memory limit, on random reads.
    pub const LIMITED: [Method; 4] = [Method::Mmap, Method::MmapAdvice, Method::Pread, Method::PreadDirect];

    /// Whether the method reads through a mapping (as opposed to a copy).
    pub fn is_mmap(self) -> bool {
        matches!(
            self,
            Method::Mmap | Method::MmapAdvice | Method::MmapPopulate | Method::MmapFlush | Method::GrowableMap
        )
    }

    /// The methods that make sense for a pattern.
    pub fn for_pattern(pattern: Pattern) -> &'static [Method] {
        match pattern {
            Pattern::Sequential => {
                &[Method::Mmap, Method::MmapAdvice, Method::MmapPopulate, Method::Pread, Method::Buffered]
            }
            Pattern::Random { .. } => &[Method::Mmap, Method::MmapAdvice, Method::MmapPopulate, Method::Pread],
            Pattern::SmallFiles { .. } => &[Method::Mmap, Method::Read],
            Pattern::Write { order: WriteOrder::Append, .. } => &[Method::GrowableMap, Method::Write],
            Pattern::Write { .. } => &[Method::MmapFlush, Method::PwriteSync],
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
            Pattern::Write { every, .. } => format!("{}-4096-sync{every}-t{}", self.pattern.name(), self.threads),
        }
    }

    /// A short label for a chart axis: `4 KiB cold`, `seq warm x2`.
    pub fn label(&self) -> String {
        let what = match self.pattern {
            Pattern::Sequential => "seq".to_owned(),
            Pattern::Random { block } => crate::common::units::format_bytes(block as u64),
            Pattern::SmallFiles { .. } => "small files".to_owned(),
            Pattern::Write { order, every } => return format!("{} write sync/{every}", order.name()),
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
            Pattern::Write { order, every } => {
                let what = match order {
                    WriteOrder::Append => "4 KiB appends to a new file".to_owned(),
                    other => format!("{} 4 KiB writes", other.name()),
                };
                let durable = if every == 1 {
                    "durable after every write".to_owned()
                } else {
                    format!("durable every {every} writes")
                };
                return format!("{what}, {durable}, warm cache");
            }
        };
        let threads = if self.threads > 1 { format!(", {} threads", self.threads) } else { String::new() };
        format!("{what}, {}{threads}", self.cache.describe())
    }
}

/// How big a run is.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub random_8b: (usize, usize),
    pub random_4k: (usize, usize),
    pub random_64k: (usize, usize),
    pub small_files: usize,
    /// Records per write scenario: (durable after every write, durable every `write_batch`).
    pub writes: (usize, usize),
    /// Writes between two flushes in the batched write scenarios.
    pub write_batch: usize,
    /// The length of the file the random and sequential writes go to.
    pub write_file_bytes: u64,
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
                writes: (50, 2_000),
                write_batch: 100,
                write_file_bytes: 8 << 20,
            }
        } else {
            Plan {
                random_8b: (2_000_000, 5_000),
                random_4k: (500_000, 5_000),
                random_64k: (50_000, 1_000),
                small_files: small_files.unwrap_or(10_000),
                writes: (1_000, 20_000),
                write_batch: 100,
                write_file_bytes: 32 << 20,
            }
        }
    }

    /// The write scenarios: each order, durable after every write and every `write_batch`.
    pub fn write_scenarios(&self) -> Vec<Scenario> {
        let mut list = Vec::new();
        for order in [WriteOrder::Random, WriteOrder::Sequential, WriteOrder::Append] {
            for (every, ops) in [(1, self.writes.0), (self.write_batch, self.writes.1)] {
                list.push(Scenario { pattern: Pattern::Write { order, every }, cache: Cache::Warm, threads: 1, ops });
            }
        }
        list
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

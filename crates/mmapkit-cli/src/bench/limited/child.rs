//! The process that runs one method under a memory limit: it joins the cgroup
//! its parent made, reads random blocks of the file on its threads for a
//! fixed time, and writes a line per second and its totals on stdout.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use mmapkit::{Advice, Map, MapMut};
use mmapkit_cli::timed::{self, Progress};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::bench::scenario::Method;
use crate::common::checksum::sum_words;

/// Options of the hidden `bench-child` command (set by `bench --memory-limit`).
#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    /// The memory cgroup to join before anything else.
    #[arg(long)]
    pub cgroup: PathBuf,
    /// The file to read.
    #[arg(long)]
    pub file: PathBuf,
    /// The method, by name (`mmap`, `mmap_advice`, `pread`, `pread_direct`).
    #[arg(long)]
    pub method: String,
    /// Reader threads.
    #[arg(long)]
    pub threads: usize,
    /// How long to read, in seconds.
    #[arg(long)]
    pub seconds: f64,
    /// Bytes per read (a multiple of 4096 for `pread_direct`).
    #[arg(long)]
    pub block: usize,
}

/// Runs the child: join, read until the time is up, report.
pub fn run(args: ChildArgs) -> anyhow::Result<()> {
    let cgroup = mmapkit_cli::memory_cgroup::join(&args.cgroup)?;
    let method = Method::from_name(&args.method)?;
    if args.threads == 0 || args.seconds.is_nan() || args.seconds <= 0.0 || args.block == 0 {
        bail!("bench-child needs --threads, --seconds and --block above 0");
    }
    let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let len = file.metadata().with_context(|| format!("cannot read {}", args.file.display()))?.len();
    if len < args.block as u64 {
        bail!("{} is {len} bytes, shorter than one {}-byte read", args.file.display(), args.block);
    }
    let slots = len / args.block as u64;
    let reader = Reader::new(method, &args, &file)?;
    timed::run(args.threads, args.seconds, cgroup, |thread, progress| reader.read(thread, slots, args.block, progress))
}

/// How the threads read: through one shared map, or with `pread` on a
/// shared descriptor.
enum Reader<'a> {
    Map(Map, &'a std::path::Path),
    Pread(&'a File),
    Direct(File),
}

impl<'a> Reader<'a> {
    fn new(method: Method, args: &'a ChildArgs, file: &'a File) -> anyhow::Result<Reader<'a>> {
        Ok(match method {
            Method::Mmap | Method::MmapAdvice => {
                // SAFETY: the bench only reads through the map, inside `checked`: a file changed or truncated by
                // someone else during the run is caught by the fault guard and reported.
                let map = unsafe { Map::new(file) }.with_context(|| format!("cannot map {}", args.file.display()))?;
                if method == Method::MmapAdvice {
                    map.advise(Advice::Random)?;
                }
                Reader::Map(map, &args.file)
            }
            Method::Pread => Reader::Pread(file),
            Method::PreadDirect => {
                if !args.block.is_multiple_of(4096) {
                    bail!("pread_direct needs blocks of a multiple of 4096 bytes, not {}", args.block);
                }
                Reader::Direct(open_direct(&args.file)?)
            }
            other => bail!("{} is not measured under a memory limit", other.name()),
        })
    }

    /// Reads random blocks until stopped, counting each; returns the checksum.
    fn read(&self, thread: usize, slots: u64, block: usize, progress: &Progress<'_>) -> anyhow::Result<u64> {
        let mut rng = SmallRng::seed_from_u64(0x6c69_6d69_7465_6400 + thread as u64);
        match self {
            Reader::Map(map, path) => map
                .checked(|bytes| {
                    let mut sum = 0u64;
                    while !progress.stopped() {
                        let offset = rng.random_range(0..slots) as usize * block;
                        sum = sum.wrapping_add(sum_words(&bytes[offset..offset + block]));
                        progress.done();
                    }
                    sum
                })
                .map_err(|fault| anyhow::anyhow!("{} was truncated during the run: {fault}", path.display())),
            Reader::Pread(file) => pread_until_stopped(file, &mut rng, slots, block, progress),
            Reader::Direct(file) => pread_until_stopped(file, &mut rng, slots, block, progress),
        }
    }
}

/// `pread`s random blocks of `file` until `stop`, counting each; returns the checksum.
fn pread_until_stopped(
    file: &File,
    rng: &mut SmallRng,
    slots: u64,
    block: usize,
    progress: &Progress<'_>,
) -> anyhow::Result<u64> {
    // A page-aligned buffer, as O_DIRECT needs.
    let mut buf = MapMut::anon(block)?;
    let mut sum = 0u64;
    while !progress.stopped() {
        let offset = rng.random_range(0..slots) * block as u64;
        file.read_exact_at(&mut buf[..], offset).with_context(|| format!("cannot read at byte {offset}"))?;
        sum = sum.wrapping_add(sum_words(&buf[..]));
        progress.done();
    }
    Ok(sum)
}

/// Opens `path` for reading around the page cache (`O_DIRECT`).
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn open_direct(path: &std::path::Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path).with_context(|| {
        format!("cannot open {} with O_DIRECT (its file system may not support direct I/O)", path.display())
    })
}

/// Opens `path` for reading around the page cache: not on this OS.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn open_direct(path: &std::path::Path) -> anyhow::Result<File> {
    bail!("cannot open {} with O_DIRECT: {} has no O_DIRECT", path.display(), mmapkit_sys::OS)
}

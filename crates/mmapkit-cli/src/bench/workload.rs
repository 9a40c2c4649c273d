//! The file under test (the user's, or a generated one that is always removed
//! again), the random offsets to read at, and control of its cache state.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Temporary directories to remove if the user presses Ctrl-C.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the benchmark's temporary files on Ctrl-C, then exits with 130.
pub fn remove_temp_files_on_interrupt() {
    let installed = ctrlc::set_handler(|| {
        let dirs = TEMP_DIRS.lock().map(|d| d.clone()).unwrap_or_default();
        for dir in &dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        // The children of --memory-limit had the same interrupt; their cgroups go once they have left.
        mmapkit_cli::memory_cgroup::remove_live();
        eprintln!("mmapkit: interrupted; temporary files removed");
        std::process::exit(130);
    });
    // A handler already set (by an embedding program) keeps precedence; the
    // TempDir guards still remove the files on a normal exit.
    let _ = installed;
}

/// A temporary directory that is removed when dropped, or on Ctrl-C.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(purpose: &str) -> anyhow::Result<TempDir> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mmapkit-bench-{purpose}-"))
            .tempdir()
            .context("cannot create a temporary directory")?;
        if let Ok(mut dirs) = TEMP_DIRS.lock() {
            dirs.push(dir.path().to_path_buf());
        }
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Ok(mut dirs) = TEMP_DIRS.lock() {
            dirs.retain(|d| d != self.0.path());
        }
    }
}

/// Fills `buf` with pseudorandom bytes, none of them zero (so a page that
/// reads as zeros is never mistaken for data).
pub fn fill_nonzero(rng: &mut SmallRng, buf: &mut [u8]) {
    rng.fill(buf);
    for b in buf.iter_mut().filter(|b| **b == 0) {
        *b = 0x5A;
    }
}

/// The file under test.
pub struct Workload {
    pub path: PathBuf,
    pub file: File,
    pub len: u64,
    pub generated: bool,
    _temp: Option<TempDir>,
}

/// The largest block any scenario reads.
pub const LARGEST_BLOCK: u64 = 65536;

impl Workload {
    /// Opens the user's file read-only, after checking it can be measured.
    pub fn existing(path: &Path) -> anyhow::Result<Workload> {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            bail!("{} is a directory; mmapkit bench needs a regular file", path.display());
        }
        if !meta.is_file() {
            bail!("{} is not a regular file; mmapkit bench needs one", path.display());
        }
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = meta.len();
        if len == 0 {
            bail!("{} is empty; there is nothing to measure", path.display());
        }
        if len < LARGEST_BLOCK {
            bail!(
                "{} is {len} bytes, shorter than the largest block read ({LARGEST_BLOCK} bytes); use a larger file",
                path.display()
            );
        }
        Ok(Workload { path: path.to_path_buf(), file, len, generated: false, _temp: None })
    }

    /// Writes a temporary file of `size` pseudorandom bytes.
    pub fn generated(size: u64, progress: &ProgressBar) -> anyhow::Result<Workload> {
        if size < LARGEST_BLOCK {
            bail!("--size {size} is smaller than the largest block read ({LARGEST_BLOCK} bytes)");
        }
        let temp = TempDir::new("file")?;
        let path = temp.path().join("bench.bin");
        let out = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let mut rng = SmallRng::seed_from_u64(0x006d_6d61_706b_6974);
        let mut chunk = vec![0u8; 1 << 20];
        progress.set_length(size);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:45} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        {
            progress.set_style(style.progress_chars("=> "));
        }
        progress.set_message("writing the test file");
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            fill_nonzero(&mut rng, &mut chunk[..n]);
            out.write_all(&chunk[..n]).with_context(|| format!("cannot write {}", path.display()))?;
            progress.inc(n as u64);
            left -= n as u64;
        }
        let file =
            out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("cannot write {}", path.display()))?;
        file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
        progress.finish_and_clear();
        let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Workload { path, file, len: size, generated: true, _temp: Some(temp) })
    }

    /// `count` random offsets for `block`-byte reads, aligned to the block
    /// (at most to a page), all inside the file. The same `stream` gives
    /// every method the same offsets.
    pub fn offsets(&self, block: usize, count: usize, stream: u64) -> Vec<u64> {
        let align = block.clamp(8, 4096) as u64;
        let slots = (self.len - block as u64) / align + 1;
        let mut rng = SmallRng::seed_from_u64(stream);
        (0..count).map(|_| rng.random_range(0..slots) * align).collect()
    }

    /// Drops the file from the page cache. Returns whether that took: at most
    /// 1% of its pages still resident. Where the OS cannot drop a file's pages
    /// (macOS), it does not take, and the report says the cold runs were warm.
    pub fn make_cold(&self) -> anyhow::Result<(bool, f64)> {
        // Pages a process that just exited was using can still be held for a moment (in the kernel's per-CPU
        // batches) and survive one drop: try a few times.
        let mut resident = 1.0;
        for attempt in 0..5 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            match mmapkit::page_cache::evict(&self.file) {
                Err(e) if matches!(e.kind(), mmapkit::ErrorKind::Unsupported(_)) => {}
                Err(e) => return Err(e.into()),
                Ok(()) => {}
            }
            let residency = mmapkit::page_cache::residency(&self.file)?;
            resident = residency.resident_pages() as f64 / residency.total_pages().max(1) as f64;
            if resident <= 0.01 {
                break;
            }
        }
        Ok((resident <= 0.01, resident))
    }

    /// Reads the whole file into the page cache. Returns the resident fraction.
    pub fn make_warm(&self) -> anyhow::Result<f64> {
        crate::common::page_cache::read_into_cache(&self.path, &self.file, |_| {})?;
        let residency = mmapkit::page_cache::residency(&self.file)?;
        Ok(residency.resident_pages() as f64 / residency.total_pages().max(1) as f64)
    }
}

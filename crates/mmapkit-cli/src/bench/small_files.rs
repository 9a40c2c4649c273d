//! Small files: many 4 KiB files, each opened, read whole and closed,
//! through a map or through `read`.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::ProgressBar;
use mmapkit::Map;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::clock::op_time;
use super::methods::Run;
use super::scenario::Method;
use super::workload::{TempDir, fill_nonzero};
use crate::common::checksum::sum_words;

/// A directory of small generated files, removed on drop.
pub struct SmallFiles {
    _dir: TempDir,
    paths: Vec<PathBuf>,
    file_bytes: usize,
}

impl SmallFiles {
    pub fn create(count: usize, file_bytes: usize, progress: &ProgressBar) -> anyhow::Result<SmallFiles> {
        let dir = TempDir::new("small")?;
        let mut rng = SmallRng::seed_from_u64(0x0073_6d61_6c6c);
        let mut data = vec![0u8; file_bytes];
        progress.set_length(count as u64);
        progress.set_message(format!("writing {count} small files"));
        let paths = (0..count)
            .map(|i| {
                let path = dir.path().join(format!("{i:06}.bin"));
                fill_nonzero(&mut rng, &mut data);
                std::fs::write(&path, &data).with_context(|| format!("cannot write {}", path.display()))?;
                progress.inc(1);
                Ok(path)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        progress.finish_and_clear();
        Ok(SmallFiles { _dir: dir, paths, file_bytes })
    }

    /// Opens, reads and closes every file with `method`, timing each file.
    pub fn run(&self, method: Method) -> anyhow::Result<Run> {
        let mut run = Run::default();
        let mut buf = vec![0u8; self.file_bytes];
        for path in &self.paths {
            let start = Instant::now();
            let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let checksum = if method.is_mmap() {
                // SAFETY: the files are ours and only read; a change is caught by the fault guard and reported.
                let map = unsafe { Map::new(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
                map.checked(sum_words).map_err(|fault| {
                    anyhow::anyhow!("{} was truncated during the benchmark: {fault}", path.display())
                })?
            } else {
                file.read_exact(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
                sum_words(&buf)
            };
            drop(file);
            run.latencies_ns.push(op_time(start));
            run.checksum = run.checksum.wrapping_add(checksum);
            run.ops += 1;
            run.bytes += self.file_bytes as u64;
        }
        Ok(run)
    }
}

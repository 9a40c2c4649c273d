//! Each method's way of reading the file for a scenario, on one or more
//! threads. Every method really reads every byte it is asked for and folds it
//! into a checksum ([`sum_words`]), which must come out the same for all methods.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use mmapkit::{Advice, Map, MapOptions};

use super::clock::op_time;
use super::scenario::{Method, Pattern, SEQUENTIAL_CHUNK, Scenario};
use crate::common::checksum::sum_words;

/// The file under test.
pub struct Subject<'a> {
    pub path: &'a Path,
    pub file: &'a File,
    pub len: u64,
}

/// What one method's run produced.
#[derive(Debug, Default)]
pub struct Run {
    pub checksum: u64,
    /// Per-operation times in nanoseconds, where operations are timed one by one.
    pub latencies_ns: Vec<u64>,
    pub bytes: u64,
    pub ops: u64,
}

impl Run {
    fn merge(mut self, other: Run) -> Run {
        self.checksum = self.checksum.wrapping_add(other.checksum);
        self.latencies_ns.extend(other.latencies_ns);
        self.bytes += other.bytes;
        self.ops += other.ops;
        self
    }
}

/// Times one operation in every `stride` (1 for block reads; more for 8-byte
/// reads, where reading the clock would cost more than the read).
fn stride_for(block: usize) -> usize {
    if block < 4096 { 16 } else { 1 }
}

/// Splits `0..len` into `parts` contiguous ranges that start on chunk boundaries.
fn split_ranges(len: u64, parts: usize) -> Vec<(u64, u64)> {
    let chunks = len.div_ceil(SEQUENTIAL_CHUNK as u64);
    let per = chunks.div_ceil(parts as u64).max(1);
    (0..parts as u64)
        .map(|p| ((p * per * SEQUENTIAL_CHUNK as u64).min(len), ((p + 1) * per * SEQUENTIAL_CHUNK as u64).min(len)))
        .filter(|(start, end)| start < end)
        .collect()
}

/// Runs `work` on `threads` threads, each given its index, and merges the runs.
fn on_threads<F>(threads: usize, work: F) -> anyhow::Result<Run>
where
    F: Fn(usize) -> anyhow::Result<Run> + Sync,
{
    if threads <= 1 {
        return work(0);
    }
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
        handles.into_iter().try_fold(Run::default(), |acc, h| {
            let run = h.join().map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
            Ok(acc.merge(run))
        })
    })
}

/// Runs `method` on `scenario` against `subject`, reading at `offsets` for a
/// random pattern.
pub fn run(subject: &Subject<'_>, scenario: &Scenario, method: Method, offsets: &[u64]) -> anyhow::Result<Run> {
    if method == Method::PreadDirect {
        bail!("{} runs only in the time-bounded scenarios of --memory-limit", method.name());
    }
    if method.is_mmap() {
        run_mmap(subject, scenario, method, offsets)
    } else {
        run_read(subject, scenario, method, offsets)
    }
}

fn map(subject: &Subject<'_>, scenario: &Scenario, method: Method) -> anyhow::Result<Map> {
    let mut options = MapOptions::new();
    if method == Method::MmapPopulate {
        options.populate(true);
    }
    // SAFETY: the benchmark only reads through the map, inside `checked`: a file changed or truncated by someone
    // else during the run is caught by the fault guard and reported, never read as a valid slice.
    let map = unsafe { options.map(subject.file) }.with_context(|| format!("cannot map {}", subject.path.display()))?;
    if (map.len() as u64) < subject.len {
        bail!(
            "{} shrank during the benchmark: it is {} bytes now, {} when the run began (reads reached byte {})",
            subject.path.display(),
            map.len(),
            subject.len,
            map.len()
        );
    }
    if method == Method::MmapAdvice {
        let advice = if scenario.pattern == Pattern::Sequential { Advice::Sequential } else { Advice::Random };
        map.advise(advice)?;
    }
    Ok(map)
}

fn truncated(subject: &Subject<'_>, fault: mmapkit::Fault) -> anyhow::Error {
    anyhow::anyhow!(
        "{} was truncated or became unreadable during the benchmark, at byte {}: {fault}",
        subject.path.display(),
        fault.file_offset()
    )
}

fn run_mmap(subject: &Subject<'_>, scenario: &Scenario, method: Method, offsets: &[u64]) -> anyhow::Result<Run> {
    let map = map(subject, scenario, method)?;
    let threads = scenario.threads;
    let run = match scenario.pattern {
        Pattern::Sequential => {
            let ranges = split_ranges(subject.len, threads);
            on_threads(ranges.len(), |t| {
                let (start, end) = ranges[t];
                let checksum = map
                    .checked(|bytes| sum_words(&bytes[start as usize..end as usize]))
                    .map_err(|fault| truncated(subject, fault))?;
                let bytes = end - start;
                Ok(Run { checksum, latencies_ns: Vec::new(), bytes, ops: bytes.div_ceil(SEQUENTIAL_CHUNK as u64) })
            })?
        }
        Pattern::Random { block } => {
            let per = offsets.len().div_ceil(threads);
            on_threads(threads, |t| {
                let mine = &offsets[(t * per).min(offsets.len())..((t + 1) * per).min(offsets.len())];
                let stride = stride_for(block);
                map.checked(|bytes| {
                    let mut run = Run::default();
                    for (i, &offset) in mine.iter().enumerate() {
                        let start = (i % stride == 0).then(Instant::now);
                        let offset = offset as usize;
                        run.checksum = run.checksum.wrapping_add(sum_words(&bytes[offset..offset + block]));
                        if let Some(start) = start {
                            run.latencies_ns.push(op_time(start));
                        }
                    }
                    run.ops = mine.len() as u64;
                    run.bytes = run.ops * block as u64;
                    run
                })
                .map_err(|fault| truncated(subject, fault))
            })?
        }
        Pattern::SmallFiles { .. } => bail!("small files are measured by small_files.rs"),
        Pattern::Write { .. } => bail!("writes are measured by writes.rs"),
    };
    if let Some(fault) = map.fault() {
        return Err(truncated(subject, fault));
    }
    Ok(run)
}

fn shrank(subject: &Subject<'_>, offset: u64, len: usize, err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::UnexpectedEof {
        anyhow::anyhow!(
            "{} shrank during the benchmark: a {len}-byte read at byte {offset} reached the end of the file",
            subject.path.display()
        )
    } else {
        anyhow::anyhow!("cannot read {} at byte {offset}: {err}", subject.path.display())
    }
}

fn run_read(subject: &Subject<'_>, scenario: &Scenario, method: Method, offsets: &[u64]) -> anyhow::Result<Run> {
    match scenario.pattern {
        Pattern::Sequential => {
            let ranges = split_ranges(subject.len, scenario.threads);
            on_threads(ranges.len(), |t| {
                let (start, end) = ranges[t];
                if method == Method::Buffered {
                    read_buffered(subject, start, end)
                } else {
                    pread_range(subject, start, end)
                }
            })
        }
        Pattern::Random { block } => {
            let per = offsets.len().div_ceil(scenario.threads);
            on_threads(scenario.threads, |t| {
                let mine = &offsets[(t * per).min(offsets.len())..((t + 1) * per).min(offsets.len())];
                let stride = stride_for(block);
                let mut buf = vec![0u8; block];
                let mut run = Run::default();
                for (i, &offset) in mine.iter().enumerate() {
                    let start = (i % stride == 0).then(Instant::now);
                    subject.file.read_exact_at(&mut buf, offset).map_err(|e| shrank(subject, offset, block, e))?;
                    run.checksum = run.checksum.wrapping_add(sum_words(&buf));
                    if let Some(start) = start {
                        run.latencies_ns.push(op_time(start));
                    }
                }
                run.ops = mine.len() as u64;
                run.bytes = run.ops * block as u64;
                Ok(run)
            })
        }
        Pattern::SmallFiles { .. } => bail!("small files are measured by small_files.rs"),
        Pattern::Write { .. } => bail!("writes are measured by writes.rs"),
    }
}

/// `pread` of `start..end` in chunks into one reused buffer.
fn pread_range(subject: &Subject<'_>, start: u64, end: u64) -> anyhow::Result<Run> {
    let mut buf = vec![0u8; SEQUENTIAL_CHUNK];
    let mut run = Run::default();
    let mut offset = start;
    while offset < end {
        let n = (end - offset).min(SEQUENTIAL_CHUNK as u64) as usize;
        subject.file.read_exact_at(&mut buf[..n], offset).map_err(|e| shrank(subject, offset, n, e))?;
        run.checksum = run.checksum.wrapping_add(sum_words(&buf[..n]));
        run.ops += 1;
        offset += n as u64;
    }
    run.bytes = end - start;
    Ok(run)
}

/// Reads `start..end` through a `BufReader` (default 8 KiB buffer) in 4 KiB
/// pieces, the way a program streams a file with buffered I/O.
fn read_buffered(subject: &Subject<'_>, start: u64, end: u64) -> anyhow::Result<Run> {
    const PIECE: usize = 4096;
    let mut file = File::open(subject.path).with_context(|| format!("cannot open {}", subject.path.display()))?;
    file.seek(SeekFrom::Start(start)).with_context(|| format!("cannot seek in {}", subject.path.display()))?;
    let mut reader = BufReader::new(file);
    let mut piece = [0u8; PIECE];
    let mut run = Run::default();
    let mut offset = start;
    while offset < end {
        let n = (end - offset).min(PIECE as u64) as usize;
        reader.read_exact(&mut piece[..n]).map_err(|e| shrank(subject, offset, n, e))?;
        run.checksum = run.checksum.wrapping_add(sum_words(&piece[..n]));
        offset += n as u64;
    }
    run.bytes = end - start;
    run.ops = run.bytes.div_ceil(SEQUENTIAL_CHUNK as u64);
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_file_once() {
        for (len, parts) in [(0u64, 2usize), (1, 3), (5 << 20, 2), ((5 << 20) + 7, 4), (3 << 20, 8)] {
            let ranges = split_ranges(len, parts);
            let covered: u64 = ranges.iter().map(|(s, e)| e - s).sum();
            assert_eq!(covered, len, "len {len} parts {parts}");
            assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0));
            assert!(ranges.iter().all(|(s, _)| s % SEQUENTIAL_CHUNK as u64 == 0));
        }
    }
}

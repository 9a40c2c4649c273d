//! Writes: 4 KiB records written at random or in order over a file through a
//! shared map (`MapMut`, made durable with `flush_range` or `flush`) against
//! `pwrite` + `fdatasync`, and appended to a new file through a
//! [`GrowableMap`] against `write` + `fdatasync`; each durable after every
//! write, or after every N writes (and at the end). The files are temporary;
//! the user's file is never written. Every method's file is read back at the
//! end: the methods must leave the same bytes.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mmapkit::{GrowableMap, MapMut};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::clock::op_time;
use super::methods::Run;
use super::scenario::{Method, Pattern, Scenario, WriteOrder};
use super::workload::{TempDir, fill_nonzero};
use crate::common::checksum::sum_words;

/// Bytes per write.
pub const RECORD: usize = 4096;
/// How far a growable map grows at a time when an append reaches its end.
const GROW_STEP: u64 = 1 << 20;
/// How long one method may write in one scenario; a method that reaches it
/// stops there, and the later methods of the scenario write as many records.
const TIME_CAP: Duration = Duration::from_secs(10);

/// The temporary files the write scenarios use.
pub struct WriteFiles {
    dir: TempDir,
    /// The length of the file random and sequential writes go to.
    file_bytes: u64,
    /// The file's starting contents, written again before each method.
    template: PathBuf,
}

impl WriteFiles {
    /// Makes the directory and the starting file of `file_bytes` pseudorandom bytes.
    pub fn create(file_bytes: u64) -> anyhow::Result<WriteFiles> {
        let dir = TempDir::new("writes")?;
        let template = dir.path().join("template.bin");
        let mut out = File::create(&template).with_context(|| format!("cannot create {}", template.display()))?;
        let mut rng = SmallRng::seed_from_u64(0x7772_6974_6573);
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = file_bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            fill_nonzero(&mut rng, &mut chunk[..n]);
            out.write_all(&chunk[..n]).with_context(|| format!("cannot write {}", template.display()))?;
            left -= n as u64;
        }
        out.sync_all().with_context(|| format!("cannot write {}", template.display()))?;
        Ok(WriteFiles { dir, file_bytes, template })
    }

    /// A fresh copy of the starting file for one method (on disk, and in the page cache).
    fn fresh_copy(&self, method: Method) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join(format!("{}.bin", method.name()));
        std::fs::copy(&self.template, &path)
            .with_context(|| format!("cannot copy {} to {}", self.template.display(), path.display()))?;
        File::open(&path).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", path.display()))?;
        Ok(path)
    }

    /// A new empty file for one method's appends.
    fn empty_file(&self, method: Method) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join(format!("{}-log.bin", method.name()));
        let _ = std::fs::remove_file(&path);
        Ok(path)
    }
}

/// Record `i`: pseudorandom bytes, its index in the first word.
fn record(i: u64, base: &[u8]) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r.copy_from_slice(base);
    r[..8].copy_from_slice(&(i + 1).to_le_bytes());
    r
}

/// The byte offset of write `i` in a file of `slots` records.
fn offsets(order: WriteOrder, ops: usize, slots: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(0x6f66_6673);
    (0..ops as u64)
        .map(|i| match order {
            WriteOrder::Random => rng.random_range(0..slots) * RECORD as u64,
            WriteOrder::Sequential => (i % slots) * RECORD as u64,
            WriteOrder::Append => i * RECORD as u64,
        })
        .collect()
}

/// Runs `method` on a write scenario, writing `ops` records; with `capped`,
/// fewer if it reaches the time cap (`ops` is then lowered to what it wrote,
/// for the scenario's later methods to write as many).
pub fn run(
    files: &WriteFiles,
    scenario: &Scenario,
    method: Method,
    ops: &mut usize,
    capped: bool,
) -> anyhow::Result<Run> {
    let Pattern::Write { order, every } = scenario.pattern else {
        bail!("{} is not a write scenario", scenario.title());
    };
    let slots = files.file_bytes / RECORD as u64;
    let offsets = offsets(order, *ops, slots);
    let mut base = [0u8; RECORD];
    fill_nonzero(&mut SmallRng::seed_from_u64(0x7265_636f_7264), &mut base);
    let path = if order == WriteOrder::Append { files.empty_file(method)? } else { files.fresh_copy(method)? };
    let mut run = Run::default();
    let plan = Writes { count: *ops, every, cap: capped.then_some(TIME_CAP) };
    let written = match method {
        Method::MmapFlush => write_mapped(&path, &offsets, plan, &base, &mut run)?,
        Method::PwriteSync => write_pwrite(&path, &offsets, plan, &base, &mut run)?,
        Method::GrowableMap => append_growable(&path, plan, &base, &mut run)?,
        Method::Write => append_write(&path, plan, &base, &mut run)?,
        other => bail!("{} does not write", other.name()),
    };
    *ops = written;
    run.ops = written as u64;
    run.bytes = run.ops * RECORD as u64;
    run.checksum = read_back(&path, &offsets[..written])?;
    Ok(run)
}

/// The checksum of every record slot written, read back from the file with
/// `pread` (each slot once, whatever wrote it last).
fn read_back(path: &Path, offsets: &[u64]) -> anyhow::Result<u64> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let unique: BTreeSet<u64> = offsets.iter().copied().collect();
    let mut buf = [0u8; RECORD];
    let mut sum = 0u64;
    for offset in unique {
        file.read_exact_at(&mut buf, offset)
            .with_context(|| format!("cannot read back {} at byte {offset}", path.display()))?;
        sum = sum.wrapping_add(sum_words(&buf));
    }
    Ok(sum)
}

/// How many records one method writes, how often it makes them durable, and
/// whether it may stop early.
#[derive(Clone, Copy)]
struct Writes {
    count: usize,
    every: usize,
    cap: Option<Duration>,
}

/// Runs `write(i)` for each record until `count` (or the time cap), timing
/// each (with its flush, when it has one); `flush` runs after every `every`
/// writes and after the last. Returns how many were written.
fn timed_writes(
    Writes { count, every, cap }: Writes,
    run: &mut Run,
    mut write: impl FnMut(usize) -> anyhow::Result<()>,
    mut flush: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let every = every.max(1);
    let start = Instant::now();
    let mut done = 0;
    while done < count {
        let op = Instant::now();
        write(done)?;
        done += 1;
        if done.is_multiple_of(every) {
            flush(done - 1)?;
        }
        run.latencies_ns.push(op_time(op));
        if cap.is_some_and(|cap| start.elapsed() > cap) {
            break;
        }
    }
    if !done.is_multiple_of(every) && done > 0 {
        flush(done - 1)?;
    }
    Ok(done)
}

fn open_rw(path: &Path, create: bool) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open {} for writing", path.display()))
}

fn write_mapped(path: &Path, offsets: &[u64], plan: Writes, base: &[u8], run: &mut Run) -> anyhow::Result<usize> {
    let file = open_rw(path, false)?;
    // SAFETY: the file is this run's own temporary file; nothing else opens it while it is mapped.
    let map = unsafe { MapMut::new(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    let map = std::cell::RefCell::new(map);
    let fail = |e: mmapkit::Error| anyhow::Error::new(e).context(format!("cannot flush {}", path.display()));
    timed_writes(
        plan,
        run,
        |i| {
            let offset = offsets[i] as usize;
            map.borrow_mut()
                .write_at(offset, &record(i as u64, base))
                .with_context(|| format!("cannot write {} at byte {offset} through its map", path.display()))
        },
        |last| {
            let map = map.borrow();
            if plan.every == 1 { map.flush_range(offsets[last] as usize, RECORD) } else { map.flush() }.map_err(fail)
        },
    )
}

fn write_pwrite(path: &Path, offsets: &[u64], plan: Writes, base: &[u8], run: &mut Run) -> anyhow::Result<usize> {
    let file = open_rw(path, false)?;
    timed_writes(
        plan,
        run,
        |i| {
            file.write_all_at(&record(i as u64, base), offsets[i])
                .with_context(|| format!("cannot write {} at byte {}", path.display(), offsets[i]))
        },
        |_| file.sync_data().with_context(|| format!("cannot fdatasync {}", path.display())),
    )
}

fn append_growable(path: &Path, plan: Writes, base: &[u8], run: &mut Run) -> anyhow::Result<usize> {
    let file = open_rw(path, true)?;
    let reserve = (plan.count as u64 * RECORD as u64).next_multiple_of(GROW_STEP) + GROW_STEP;
    // SAFETY: the file is this run's own temporary file; nothing else opens it while it is mapped.
    let map = unsafe { GrowableMap::new(file, reserve as usize) }
        .with_context(|| format!("cannot map {} to grow it", path.display()))?;
    let map = std::cell::RefCell::new(map);
    timed_writes(
        plan,
        run,
        |i| {
            let offset = i * RECORD;
            let mut map = map.borrow_mut();
            if offset + RECORD > map.len() {
                map.grow_to(map.len() as u64 + GROW_STEP)
                    .with_context(|| format!("cannot grow {} past byte {}", path.display(), map.len()))?;
            }
            map[offset..offset + RECORD].copy_from_slice(&record(i as u64, base));
            Ok(())
        },
        |last| {
            let map = map.borrow();
            let flushed = if plan.every == 1 { map.flush_range(last * RECORD, RECORD) } else { map.flush() };
            flushed.with_context(|| format!("cannot flush {}", path.display()))
        },
    )
}

fn append_write(path: &Path, plan: Writes, base: &[u8], run: &mut Run) -> anyhow::Result<usize> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {} to append", path.display()))?;
    let file = std::cell::RefCell::new(&mut file);
    timed_writes(
        plan,
        run,
        |i| {
            file.borrow_mut()
                .write_all(&record(i as u64, base))
                .with_context(|| format!("cannot append to {} at record {i}", path.display()))
        },
        |_| file.borrow().sync_data().with_context(|| format!("cannot fdatasync {}", path.display())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_writes_wrap_and_appends_never_repeat() {
        let seq = offsets(WriteOrder::Sequential, 10, 4);
        assert_eq!(seq[4], 0);
        assert_eq!(seq[5], RECORD as u64);
        let append = offsets(WriteOrder::Append, 10, 4);
        assert_eq!(append[9], 9 * RECORD as u64);
        let random = offsets(WriteOrder::Random, 1000, 16);
        assert!(random.iter().all(|&o| o < 16 * RECORD as u64 && o % RECORD as u64 == 0));
    }
}

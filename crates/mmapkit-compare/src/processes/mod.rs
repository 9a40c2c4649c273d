//! The two rows measured together with reader processes: the parent, which holds the database open for writing,
//! commits durable batches of updates of existing keys while [`READERS`] child processes (this program's hidden
//! `db-reader` subcommand, [`reader`]) open the same database read-only and get random existing keys, one read
//! transaction per [`reader::GETS_PER_TXN`] gets, until the parent's last commit is done.
//!
//! The parent and each child talk in lines: the child writes `ready` once its database is open, the parent writes
//! `go` to every child, commits its batches, then writes `stop`; each child then writes its [`ReaderTotals`] as
//! JSON.

pub mod reader;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use serde::{Deserialize, Serialize};

use crate::data::{Items, Rng, VALUE_LEN, Value};
use crate::engines::{Engine, EngineKind, WriteTable, WriteTxn};
use crate::own_process::{self, DatabaseArgs};
use crate::workload::Plan;

/// Reader processes beside the writer.
pub const READERS: usize = 2;
/// The hidden subcommand a reader process runs.
pub const SUBCOMMAND: &str = "db-reader";
/// How long a reader may take to open the database, and to report once told to stop.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// Mixed into the workload's stream for the keys the batches update.
const UPDATE_STREAM: u64 = 0x7570_6461_7465;

/// What a reader process did, as it reports it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ReaderTotals {
    /// Gets done.
    pub gets: u64,
    /// Seconds from `go` until the end of the read transaction during which it saw `stop`.
    pub seconds: f64,
    /// Gets of existing keys that found nothing.
    pub misses: u64,
    /// Values found that are neither the item's first value nor one of its updates (see [`update_mask`]).
    pub bad_values: u64,
    /// Values found that an update of the parent's batches wrote: the reader saw new commits.
    pub updated_seen: u64,
    /// Read transactions.
    pub transactions: u64,
}

/// What the two rows measured.
#[derive(Debug, Clone)]
pub struct BesideReaders {
    /// Time of all the batches, each committed durably.
    pub writes: Duration,
    /// Time of the workload's `reads` gets at the summed rate of the readers.
    pub reads: Duration,
}

/// The byte every byte of item `i`'s value is XORed with by the update of batch `batch`: never 0, so an updated
/// value differs from the first one in every byte.
pub fn mask_of_batch(batch: u64) -> u8 {
    (batch % 255) as u8 + 1
}

/// Item `i`'s value as batch `batch` updates it.
fn updated_value(items: &Items, i: u64, batch: u64) -> Value {
    let mask = mask_of_batch(batch);
    items.value(i).map(|byte| byte ^ mask)
}

/// The mask `stored` differs from `first` (an item's first value) by: `Some(0)` if it is the first value,
/// `Some(mask)` if an update wrote it, `None` if it has another length or its bytes differ by different masks.
pub fn update_mask(first: &Value, stored: &[u8]) -> Option<u8> {
    if stored.len() != VALUE_LEN {
        return None;
    }
    let mask = first[0] ^ stored[0];
    first.iter().zip(stored).all(|(a, b)| a ^ b == mask).then_some(mask)
}

/// Runs the two rows on `engine`, whose database is in `dir` and holds the items of `plan`'s workload once
/// every write step is done: starts the readers, runs the batches beside them, and gathers what the readers did.
pub fn run<E: Engine>(engine: &E, plan: &Plan, dir: &std::path::Path) -> Result<BesideReaders> {
    let kind = engine.kind();
    let w = &plan.workload;
    let database = DatabaseArgs::new(kind, dir, w.total(), w.stream);
    let exe = own_process::own_binary()?;
    let mut readers = Readers::start(kind, |n| {
        let mut command = database.command(&exe, SUBCOMMAND);
        command.args(["--reader", &n.to_string()]);
        command
    })?;
    readers.tell_all("go")?;
    let start = Instant::now();
    update_batches(engine, plan)?;
    let writes = start.elapsed();
    readers.tell_all("stop")?;
    let totals = readers.finish()?;

    let mut rate = 0.0;
    for (n, reader) in totals.iter().enumerate() {
        let n = n + 1;
        ensure!(
            reader.misses == 0 && reader.bad_values == 0,
            "{kind}: reader process {n} of {READERS} found {} of its {} existing keys missing and {} values neither \
             inserted nor updated",
            reader.misses,
            reader.gets,
            reader.bad_values
        );
        ensure!(reader.gets > 0 && reader.seconds > 0.0, "{kind}: reader process {n} of {READERS} did no gets");
        rate += reader.gets as f64 / reader.seconds;
        eprintln!(
            "{:<16} reader process {n}: {} gets in {} read transactions in {:.3} s ({:.0} gets/s), {} of updated \
             values",
            kind.name(),
            reader.gets,
            reader.transactions,
            reader.seconds,
            reader.gets as f64 / reader.seconds,
            reader.updated_seen
        );
    }
    let reads = Duration::from_secs_f64(w.reads as f64 / rate);
    Ok(BesideReaders { writes, reads })
}

/// The workload's batches, each of `batch_size` updates of random existing keys to new values, each committed
/// durably.
fn update_batches<E: Engine>(engine: &E, plan: &Plan) -> Result<()> {
    let w = &plan.workload;
    let mut rng = Rng::new(w.stream ^ UPDATE_STREAM);
    for batch in 0..w.batches {
        let mut txn = engine.begin_write()?;
        {
            let mut table = txn.table()?;
            for _ in 0..w.batch_size {
                let i = rng.below(w.total());
                table.insert(&plan.items.key(i), &updated_value(&plan.items, i, batch))?;
            }
        }
        txn.commit()?;
    }
    Ok(())
}

/// The reader processes of one engine. Dropping it kills those still running.
struct Readers {
    engine: EngineKind,
    children: Vec<ReaderProcess>,
}

/// One reader process and the threads that read its output.
struct ReaderProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its stdout, a line at a time; `None` at its end.
    lines: Receiver<Option<String>>,
    /// Everything it writes on stderr, once it is closed.
    stderr: Option<JoinHandle<String>>,
}

impl Readers {
    /// Starts [`READERS`] processes of `engine`'s database, reader `n` as `command(n)` says, and waits until each
    /// has it open.
    fn start(engine: EngineKind, mut command: impl FnMut(usize) -> std::process::Command) -> Result<Self> {
        let mut readers = Readers { engine, children: Vec::new() };
        for n in 0..READERS {
            let mut child = command(n)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("{engine}: starting reader process {} of {READERS}", n + 1))?;
            let stdin = child.stdin.take();
            let (stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
            let (send, lines) = mpsc::channel();
            if let Some(stdout) = stdout {
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        if send.send(Some(line)).is_err() {
                            break;
                        }
                    }
                    let _ = send.send(None);
                });
            }
            let stderr = stderr.take().map(|mut stderr| {
                std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = stderr.read_to_string(&mut text);
                    text
                })
            });
            readers.children.push(ReaderProcess { child, stdin, lines, stderr });
        }
        for n in 0..READERS {
            let line = readers.line(n, "saying it was ready")?;
            if line != "ready" {
                return Err(readers.failure(n, &format!("wrote {line:?} instead of \"ready\"")));
            }
        }
        Ok(readers)
    }

    /// Writes `word` and a newline to every reader; `stop` also closes their stdin.
    fn tell_all(&mut self, word: &str) -> Result<()> {
        for n in 0..self.children.len() {
            let stdin = self.children[n].stdin.as_mut().context("the reader's stdin is already closed")?;
            if let Err(err) = writeln!(stdin, "{word}").and_then(|()| stdin.flush()) {
                return Err(self.failure(n, &format!("could not be told {word:?} ({err})")));
            }
            if word == "stop" {
                self.children[n].stdin = None;
            }
        }
        Ok(())
    }

    /// The next line reader `n` writes, or an error if it ends or takes longer than [`REPLY_TIMEOUT`]; `what`
    /// says what the line was awaited for.
    fn line(&mut self, n: usize, what: &str) -> Result<String> {
        match self.children[n].lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(Some(line)) => Ok(line),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => Err(self.failure(n, &format!("ended before {what}"))),
            Err(RecvTimeoutError::Timeout) => {
                Err(self.failure(n, &format!("took more than {} s {what}", REPLY_TIMEOUT.as_secs())))
            }
        }
    }

    /// Reads every reader's totals, then waits for it to exit successfully.
    fn finish(mut self) -> Result<Vec<ReaderTotals>> {
        let mut all = Vec::new();
        for n in 0..self.children.len() {
            let line = self.line(n, "writing its totals")?;
            let totals = match serde_json::from_str::<ReaderTotals>(&line) {
                Ok(totals) => totals,
                Err(err) => return Err(self.failure(n, &format!("wrote {line:?}, not its totals ({err})"))),
            };
            let status = self.children[n].child.wait();
            match status {
                Ok(status) if status.success() => all.push(totals),
                Ok(status) => return Err(self.failure(n, &format!("exited with {status}"))),
                Err(err) => return Err(self.failure(n, &format!("could not be waited for ({err})"))),
            }
        }
        Ok(all)
    }

    /// The error of reader `n`, which `went_wrong`: it is killed, and what it wrote on stderr is added.
    fn failure(&mut self, n: usize, went_wrong: &str) -> anyhow::Error {
        let reader = &mut self.children[n];
        reader.stdin = None;
        let _ = reader.child.kill();
        let status = reader.child.wait().map_or_else(|err| format!("unknown status ({err})"), |s| s.to_string());
        let stderr = reader.stderr.take().and_then(|handle| handle.join().ok()).unwrap_or_default();
        let stderr = stderr.trim();
        let said = if stderr.is_empty() { "nothing on stderr".to_owned() } else { format!("stderr: {stderr}") };
        anyhow::anyhow!(
            "{}: reader process {} of {READERS} (pid {}) {went_wrong}; {status}; {said}",
            self.engine,
            n + 1,
            reader.child.id()
        )
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        for reader in &mut self.children {
            reader.stdin = None;
            // Those already waited for are gone; killing them again only fails.
            if let Ok(None) = reader.child.try_wait() {
                let _ = reader.child.kill();
                let _ = reader.child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_differs_from_the_first_value_by_one_mask_that_is_never_zero() {
        let items = Items::new(5);
        let first = items.value(7);
        assert_eq!(update_mask(&first, &first), Some(0));
        for batch in [0, 1, 254, 255, 1000] {
            let mask = update_mask(&first, &updated_value(&items, 7, batch));
            assert_eq!(mask, Some(mask_of_batch(batch)), "batch {batch}");
            assert_ne!(mask, Some(0), "batch {batch}");
        }
        // Another item's value, a value torn between two updates, and a short one are no update.
        assert_eq!(update_mask(&first, &items.value(8)), None);
        let mut torn = updated_value(&items, 7, 1);
        torn[VALUE_LEN / 2..].copy_from_slice(&updated_value(&items, 7, 2)[VALUE_LEN / 2..]);
        assert_eq!(update_mask(&first, &torn), None);
        assert_eq!(update_mask(&first, &first[1..]), None);
    }

    /// Readers that run `script` in `sh`, with their number as `$1`.
    fn scripted(script: &str) -> impl FnMut(usize) -> std::process::Command {
        let script = script.to_owned();
        move |n| {
            let mut command = std::process::Command::new("sh");
            command.args(["-c", &script, "sh", &n.to_string()]);
            command
        }
    }

    /// Whether process `pid` exists (`kill -0`).
    fn exists(pid: u32) -> bool {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn readers_that_follow_the_protocol_report_their_totals() {
        let totals = r#"{"gets":200,"seconds":0.25,"misses":0,"bad_values":0,"updated_seen":%s,"transactions":2}"#;
        let script = format!("echo ready; read go; read stop; printf '{totals}\\n' $1");
        let mut readers = Readers::start(EngineKind::Lmdb, scripted(&script)).unwrap();
        readers.tell_all("go").unwrap();
        readers.tell_all("stop").unwrap();
        let all = readers.finish().unwrap();
        assert_eq!(all.iter().map(|t| (t.gets, t.updated_seen)).collect::<Vec<_>>(), [(200, 0), (200, 1)]);
    }

    #[test]
    fn a_reader_that_fails_is_named_with_its_stderr() {
        // The second reader fails once told to go; the first waits for stop and reports.
        let totals = r#"{"gets":100,"seconds":0.1,"misses":0,"bad_values":0,"updated_seen":0,"transactions":1}"#;
        let script = format!(
            "echo ready; read go; if [ $1 = 1 ]; then echo 'no such table' >&2; exit 3; fi; read stop; echo '{totals}'"
        );
        let mut readers = Readers::start(EngineKind::MmapkitDb, scripted(&script)).unwrap();
        readers.tell_all("go").unwrap();
        // Telling a reader that died may fail already; otherwise gathering the totals does.
        let err = readers.tell_all("stop").and_then(|()| readers.finish().map(drop)).unwrap_err().to_string();
        assert!(err.contains("mmapkit-db: reader process 2 of 2"), "{err}");
        assert!(err.contains("exit status: 3") && err.contains("stderr: no such table"), "{err}");

        let script = "echo ready; read go; read stop; echo 'not totals'";
        let mut readers = Readers::start(EngineKind::Redb, scripted(script)).unwrap();
        readers.tell_all("go").unwrap();
        readers.tell_all("stop").unwrap();
        let err = readers.finish().unwrap_err().to_string();
        assert!(err.contains("redb: reader process 1 of 2") && err.contains("\"not totals\", not its totals"), "{err}");

        let err = Readers::start(EngineKind::Lmdb, scripted("echo 'cannot open' >&2; exit 1")).err().unwrap();
        let err = err.to_string();
        assert!(err.contains("reader process 1 of 2") && err.contains("ended before saying it was ready"), "{err}");
        assert!(err.contains("cannot open") && err.contains("exit status: 1"), "{err}");
    }

    #[test]
    fn readers_still_running_are_killed_when_dropped() {
        let readers = Readers::start(EngineKind::Lmdb, scripted("echo ready; exec sleep 600")).unwrap();
        let pids: Vec<u32> = readers.children.iter().map(|reader| reader.child.id()).collect();
        assert!(pids.iter().all(|&pid| exists(pid)), "{pids:?}");
        drop(readers);
        assert!(pids.iter().all(|&pid| !exists(pid)), "{pids:?} outlived their guard");
    }

    #[test]
    fn totals_round_trip_as_one_json_line() {
        let totals =
            ReaderTotals { gets: 300, seconds: 0.5, misses: 0, bad_values: 1, updated_seen: 7, transactions: 3 };
        let line = serde_json::to_string(&totals).unwrap();
        assert!(!line.contains('\n'));
        let back: ReaderTotals = serde_json::from_str(&line).unwrap();
        assert_eq!((back.gets, back.bad_values, back.updated_seen, back.transactions), (300, 1, 7, 3));
    }
}

//! `mmapkit db`: the embedded key-value store (mmapkit-db) from the shell:
//! put, get, del, scan, load, stats, check, compact and readers. Every
//! command works while other processes have the database open, writing
//! included: reads see the newest durable commit, writes take their turn.

mod codec;
mod load;
mod report;

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use mmapkit_db::{Database, ReadTable, ReadTransaction};

use crate::common::units::format_bytes;
use codec::Encoding;
pub use load::LoadArgs;

/// The table used when `--table` is not given.
const DEFAULT_TABLE: &str = "default";

/// The subcommands of `mmapkit db`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Store VALUE under KEY, replacing any value there (creates FILE if it does not exist).
    Put {
        /// The database file.
        file: PathBuf,
        /// The key.
        key: String,
        /// The value.
        value: String,
        #[command(flatten)]
        options: KeyOptions,
    },
    /// Print the value stored under KEY (exit status 1 if there is none).
    Get {
        /// The database file.
        file: PathBuf,
        /// The key.
        key: String,
        #[command(flatten)]
        options: KeyOptions,
    },
    /// Delete KEY (exit status 1 if it is not there).
    Del {
        /// The database file.
        file: PathBuf,
        /// The key.
        key: String,
        #[command(flatten)]
        options: KeyOptions,
    },
    /// Print entries in key order, one `key<TAB>value` line each.
    Scan(ScanArgs),
    /// Store `key<TAB>value` lines read from stdin, committing every --batch lines
    /// (creates FILE if it does not exist).
    ///
    /// A line is split at its first tab: keys cannot hold a tab, values can.
    /// A malformed line (no tab, bad hex, not UTF-8) stops the load with an
    /// error naming its line number: the batches committed before it stay
    /// committed, the lines read since the last commit are not committed.
    Load(LoadArgs),
    /// Show the database's size, pages, and each table's entries and tree depth.
    Stats {
        /// The database file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify every page and tree; list each problem with its page (exit status 0 only when none).
    Check {
        /// The database file.
        file: PathBuf,
    },
    /// List the reader slots of every handle that has FILE open, in any process: pid, oldest
    /// open read transaction, its age, and whether the process is alive.
    Readers {
        /// The database file.
        file: PathBuf,
        /// Clear the slots of processes that died with the database open (their snapshots keep
        /// pages from being reused until then), and list what was cleared.
        #[arg(long)]
        clear_stale: bool,
    },
    /// Write a compacted copy of FILE to DEST, a new file: no free pages, full leaves.
    Compact {
        /// The database file to copy.
        file: PathBuf,
        /// Where to write the copy; must not exist.
        dest: PathBuf,
    },
}

/// The table and the key encoding, shared by every command that reads or writes entries.
#[derive(Debug, clap::Args)]
pub struct KeyOptions {
    /// The table to use.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TABLE)]
    table: String,
    /// Keys and values are hex (two digits per byte) on input and output, not UTF-8 text.
    #[arg(long)]
    hex: bool,
    /// How long a write waits for another handle's turn to write to end, in seconds (0: fail at once,
    /// naming the process whose turn it is).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    wait: f64,
}

impl KeyOptions {
    fn encoding(&self) -> Encoding {
        Encoding::new(self.hex)
    }
}

/// Options of `mmapkit db scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The database file.
    file: PathBuf,
    /// Start at this key (inclusive).
    #[arg(long, value_name = "KEY")]
    from: Option<String>,
    /// Stop before this key (exclusive).
    #[arg(long, value_name = "KEY")]
    to: Option<String>,
    /// Print at most N entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print from the largest key down (with --limit N: the N largest keys in the range).
    #[arg(long)]
    reverse: bool,
    #[command(flatten)]
    options: KeyOptions,
}

/// Runs one `mmapkit db` command.
pub fn run(command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Put { file, key, value, options } => put(&file, &key, &value, &options),
        DbCommand::Get { file, key, options } => get(&file, &key, &options),
        DbCommand::Del { file, key, options } => del(&file, &key, &options),
        DbCommand::Scan(args) => scan(&args),
        DbCommand::Load(args) => load::load(&args),
        DbCommand::Stats { file, json } => report::stats(&file, json),
        DbCommand::Check { file } => report::check(&file),
        DbCommand::Compact { file, dest } => compact(&file, &dest),
        DbCommand::Readers { file, clear_stale } => report::readers(&file, clear_stale),
    }
}

/// Opens the existing database at `path`; a missing file is an error, never created.
///
/// Other processes may have it open too: a write waits for its turn.
fn open_existing(path: &Path, wait: Duration) -> mmapkit_db::Result<Database> {
    // SAFETY: only mmapkit-db handles write a database file, and they never write pages a snapshot can see.
    unsafe { Database::builder().write_lock_timeout(Some(wait)).open(path) }
}

/// Opens the database at `path`, creating it when the file does not exist or is empty.
///
/// As for [`open_existing`], other processes may have it open too.
fn open_or_create(path: &Path, wait: Duration) -> mmapkit_db::Result<Database> {
    // SAFETY: only mmapkit-db handles write a database file, and they never write pages a snapshot can see.
    unsafe { Database::builder().write_lock_timeout(Some(wait)).create(path) }
}

/// `--wait SECS` as a duration, refused when negative or not a number.
fn wait_for(secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| anyhow!("--wait {secs}: not a number of seconds (0 or more)"))
}

/// [`open_existing`] with its error made a one-line message.
fn open_existing_for_cli(path: &Path, wait: Duration) -> anyhow::Result<Database> {
    open_existing(path, wait).map_err(|err| open_error(path, err))
}

/// Opens the existing database at `path` read-only: the file is never
/// written by this handle (the lock file beside it is). Commands that only
/// read (get, scan, stats, check, compact, readers) use this.
fn open_read_only(path: &Path) -> mmapkit_db::Result<Database> {
    // SAFETY: only mmapkit-db handles write a database file, and they never write pages a snapshot can see.
    unsafe { Database::builder().read_only(true).open(path) }
}

/// [`open_read_only`] with its error made a one-line message.
fn open_read_only_for_cli(path: &Path) -> anyhow::Result<Database> {
    open_read_only(path).map_err(|err| open_error(path, err))
}

/// Why [`open_existing`] failed, as one line; a missing file says so.
fn open_error(path: &Path, err: mmapkit_db::Error) -> anyhow::Error {
    match err {
        mmapkit_db::Error::Io { error, .. } if error.kind() == io::ErrorKind::NotFound => {
            anyhow!("{}: no such database file (only `db put` and `db load` create one)", path.display())
        }
        other => flat(other),
    }
}

/// A store error as one line. The store's messages already embed their
/// causes, so the error is not kept as a source (`{:#}` would repeat them).
fn flat(err: mmapkit_db::Error) -> anyhow::Error {
    anyhow!("{err}")
}

/// The error for a table that does not exist, listing those that do.
fn no_table(path: &Path, name: &str, tables: &[String]) -> anyhow::Error {
    let known = match tables {
        [] => "it has no tables".to_string(),
        names => format!("its tables: {}", names.join(", ")),
    };
    anyhow!("{}: no table named {name:?} ({known})", path.display())
}

/// Opens table `name` of a read snapshot, or explains which tables exist.
fn read_table<'t>(read: &'t ReadTransaction<'_>, path: &Path, name: &str) -> anyhow::Result<ReadTable<'t>> {
    match read.open_table(name) {
        Ok(table) => Ok(table),
        Err(mmapkit_db::Error::TableNotFound(_)) => Err(no_table(path, name, &read.list_tables().map_err(flat)?)),
        Err(other) => Err(flat(other)),
    }
}

/// Ends a run of output: a reader that went away (`| head`) is not an error.
fn finish_output(result: io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(anyhow!("cannot write to stdout: {err}")),
        _ => Ok(()),
    }
}

/// `mmapkit db put`.
fn put(file: &Path, key: &str, value: &str, options: &KeyOptions) -> anyhow::Result<()> {
    let encoding = options.encoding();
    let key = encoding.decode("key", key)?;
    let value = encoding.decode("value", value)?;
    let db = open_or_create(file, wait_for(options.wait)?).map_err(flat)?;
    let mut txn = db.begin_write().map_err(flat)?;
    txn.open_table(&options.table).and_then(|mut table| table.insert(&key, &value)).map_err(flat)?;
    txn.commit().map_err(flat)
}

/// `mmapkit db get`.
fn get(file: &Path, key_arg: &str, options: &KeyOptions) -> anyhow::Result<()> {
    let encoding = options.encoding();
    let key = encoding.decode("key", key_arg)?;
    let db = open_read_only_for_cli(file)?;
    let read = db.begin_read().map_err(flat)?;
    let table = read_table(&read, file, &options.table)?;
    let Some(value) = table.get(&key).map_err(flat)? else { bail!("key not found: {key_arg}") };
    let Some(shown) = encoding.encode(value) else {
        bail!("the value of key {key_arg} is not UTF-8 text; use --hex to print it as hex")
    };
    let mut out = io::stdout().lock();
    finish_output(writeln!(out, "{shown}").and_then(|()| out.flush()))
}

/// `mmapkit db del`.
fn del(file: &Path, key_arg: &str, options: &KeyOptions) -> anyhow::Result<()> {
    let key = options.encoding().decode("key", key_arg)?;
    let db = open_existing_for_cli(file, wait_for(options.wait)?)?;
    let mut txn = db.begin_write().map_err(flat)?;
    let tables = txn.list_tables().map_err(flat)?;
    if !tables.contains(&options.table) {
        return Err(no_table(file, &options.table, &tables));
    }
    let removed = txn.open_table(&options.table).and_then(|mut table| table.remove(&key)).map_err(flat)?;
    if !removed {
        // Dropping the transaction aborts it: the file is unchanged.
        bail!("key not found: {key_arg}");
    }
    txn.commit().map_err(flat)
}

/// `mmapkit db scan`.
fn scan(args: &ScanArgs) -> anyhow::Result<()> {
    let encoding = args.options.encoding();
    let from = args.from.as_deref().map(|key| encoding.decode("--from key", key)).transpose()?;
    let to = args.to.as_deref().map(|key| encoding.decode("--to key", key)).transpose()?;
    let db = open_read_only_for_cli(&args.file)?;
    let read = db.begin_read().map_err(flat)?;
    let table = read_table(&read, &args.file, &args.options.table)?;
    let start = from.as_deref().map_or(Bound::Unbounded, Bound::Included);
    let end = to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let range = table.range((start, end));
    let entries: Box<dyn Iterator<Item = _>> = if args.reverse { Box::new(range.rev()) } else { Box::new(range) };
    let mut out = BufWriter::new(io::stdout().lock());
    for entry in entries.take(args.limit.unwrap_or(usize::MAX)) {
        let (key, value) = entry.map_err(flat)?;
        let (key, value) = scan_fields(encoding, key, value)?;
        if let Err(err) = writeln!(out, "{key}\t{value}") {
            return finish_output(Err(err));
        }
    }
    finish_output(out.flush())
}

/// One entry as `scan` prints it. In text mode, bytes that are not UTF-8, and
/// tabs or newlines that would break the `key<TAB>value` lines (and `load`
/// reading them back), are an error suggesting --hex.
fn scan_fields<'a>(encoding: Encoding, key: &'a [u8], value: &'a [u8]) -> anyhow::Result<(Cow<'a, str>, Cow<'a, str>)> {
    let Some(shown_key) = encoding.encode(key) else {
        bail!("key {} is not UTF-8 text; use --hex to print keys and values as hex", encoding.describe_key(key))
    };
    if shown_key.contains(['\t', '\n']) {
        bail!("key {shown_key:?} holds a tab or newline, which a key<TAB>value line cannot show; use --hex");
    }
    let Some(shown_value) = encoding.encode(value) else {
        bail!("the value of key {shown_key} is not UTF-8 text; use --hex to print keys and values as hex")
    };
    if shown_value.contains('\n') {
        bail!("the value of key {shown_key} holds a newline, which a key<TAB>value line cannot show; use --hex");
    }
    Ok((shown_key, shown_value))
}

/// `mmapkit db compact`.
fn compact(file: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.symlink_metadata().is_ok() {
        bail!("{}: already exists (compact writes a new file)", dest.display());
    }
    let db = open_read_only_for_cli(file)?;
    let copied = db.compact_to(dest);
    // Closing gives the file's unused tail back, so the sizes below compare like with like.
    drop(db);
    if let Err(err) = copied {
        let created = !matches!(err, mmapkit_db::Error::Io { op: mmapkit_db::IoOp::CreateCompactedCopy, .. });
        if created && std::fs::remove_file(dest).is_ok() {
            bail!("{err} (the partial copy {} was removed)", dest.display());
        }
        return Err(flat(err));
    }
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let (before, after) = (size(file), size(dest));
    println!(
        "compacted {} ({}) into {} ({}, {:.0}% of the original)",
        file.display(),
        format_bytes(before),
        dest.display(),
        format_bytes(after),
        after as f64 * 100.0 / before.max(1) as f64
    );
    Ok(())
}

//! The command line: what each subcommand takes, and dispatch.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{db_cmds, page_cache_cmds};

/// Memory-mapped I/O, measured and inspected.
#[derive(Debug, Parser)]
#[command(name = "mmapkit", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure mmap against read on a file (yours, or a generated one) and say which wins.
    Bench(crate::bench::BenchArgs),
    /// One method of `bench --memory-limit`, inside its cgroup (internal).
    #[command(hide = true)]
    BenchChild(crate::bench::limited::child::ChildArgs),
    /// Shared memory between processes.
    #[command(subcommand)]
    Shm(ShmCommand),
    /// Show how much of each file is in the page cache.
    Residency {
        /// Files (or, with -r, directories) to inspect.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Walk directories.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read files into the page cache.
    Touch {
        /// Files (or, with -r, directories) to read in.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Walk directories.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Drop files from the page cache.
    Evict {
        /// Files (or, with -r, directories) to drop.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Walk directories.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// An embedded transactional key-value store in one file: put, get, del,
    /// scan, load, stats, check, compact.
    ///
    /// Keys and values are UTF-8 text, or hex with --hex; --table picks the
    /// table (default: `default`). Only `put` and `load` create FILE. One
    /// process at a time may have FILE open: a second gets an error naming the
    /// first's pid. Errors are one line on stderr, with exit status 1.
    #[command(subcommand)]
    Db(db_cmds::DbCommand),
}

#[derive(Debug, Subcommand)]
enum ShmCommand {
    /// Round trips and throughput between two processes: the shm channel
    /// against a Unix socket, a pipe pair, and one bounced counter.
    Bench(crate::shm_bench::ShmBenchArgs),
    /// The other process of `shm bench` (internal).
    #[command(hide = true)]
    Peer(crate::shm_bench::PeerArgs),
    /// The named mmapkit-shm regions in /dev/shm: name, kind, creator pid,
    /// whether the creator is alive, size, handles and ends attached.
    List,
    /// Remove the named regions nobody holds (creator gone, nobody
    /// attached).
    Clean(crate::shm_cmds::CleanArgs),
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bench(args) => crate::bench::run(args),
        Command::BenchChild(args) => crate::bench::limited::child::run(args),
        Command::Shm(ShmCommand::Bench(args)) => crate::shm_bench::run(args),
        Command::Shm(ShmCommand::Peer(args)) => crate::shm_bench::peer(args),
        Command::Shm(ShmCommand::List) => crate::shm_cmds::list(),
        Command::Shm(ShmCommand::Clean(args)) => crate::shm_cmds::clean(&args),
        Command::Residency { paths, recursive, json } => page_cache_cmds::residency(&paths, recursive, json),
        Command::Touch { paths, recursive, quiet } => page_cache_cmds::touch(&paths, recursive, quiet),
        Command::Evict { paths, recursive } => page_cache_cmds::evict(&paths, recursive),
        Command::Db(command) => db_cmds::run(command),
    }
}

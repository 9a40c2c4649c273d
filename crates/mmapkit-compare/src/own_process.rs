//! What the child processes this program starts of itself share: the hidden subcommand runs the same binary,
//! and the database it opens, with its items, is passed as the same options.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use clap::ValueEnum as _;

use crate::data::Items;
use crate::engines::EngineKind;

/// The database a child process opens and the items it holds.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// The engine, by name.
    #[arg(long)]
    pub engine: String,
    /// The directory that holds the engine's database.
    #[arg(long)]
    pub dir: PathBuf,
    /// How many items the database holds (items `0..N` of the stream).
    #[arg(long)]
    pub items: u64,
    /// The number of the items' stream (the generator's start).
    #[arg(long)]
    pub stream: u64,
}

impl DatabaseArgs {
    /// The options for `engine`'s database in `dir`, holding items `0..items` of stream number `stream`.
    pub fn new(engine: EngineKind, dir: &Path, items: u64, stream: u64) -> Self {
        Self { engine: engine.name().to_owned(), dir: dir.to_owned(), items, stream }
    }

    /// The engine named by `--engine`; `subcommand` names the child in the error.
    pub fn engine(&self, subcommand: &str) -> Result<EngineKind> {
        EngineKind::from_str(&self.engine, false)
            .map_err(|_| anyhow::anyhow!("unknown engine {:?} for {subcommand}", self.engine))
    }

    /// The items of the stream.
    pub fn items_of_stream(&self) -> Items {
        Items::new(self.stream)
    }

    /// A command running `exe` (this program, from [`own_binary`]) as `subcommand` on this database.
    pub fn command(&self, exe: &Path, subcommand: &str) -> Command {
        let mut command = Command::new(exe);
        command.arg(subcommand).args(["--engine", &self.engine]).arg("--dir").arg(&self.dir).args([
            "--items",
            &self.items.to_string(),
            "--stream",
            &self.stream.to_string(),
        ]);
        command
    }
}

/// This program's own binary, to run its hidden subcommands in child processes.
pub fn own_binary() -> Result<PathBuf> {
    std::env::current_exe().context("finding this program's own path to run its child")
}

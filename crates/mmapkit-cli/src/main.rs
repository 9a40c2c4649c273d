//! `mmapkit`: measure mmap against read on your own files, inspect the page cache,
//! and use the embedded key-value store from the shell.

mod bench;
mod cli;
mod db_cmds;
mod files;
mod page_cache_cmds;
mod shm_bench;
mod units;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mmapkit: {err:#}");
            ExitCode::from(1)
        }
    }
}

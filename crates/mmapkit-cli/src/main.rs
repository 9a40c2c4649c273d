//! `mmapkit`: measure mmap against read on your own files, inspect the page cache,
//! measure shared memory between processes, and use the embedded key-value store
//! from the shell. One module per command (or family of commands); what several
//! of them share lives in `common`.

mod bench;
mod cli;
mod common;
mod db_cmds;
mod page_cache_cmds;
mod shm_bench;
mod shm_cmds;

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

//! `mmapkit shm list` and `mmapkit shm clean`: the named mmapkit-shm
//! regions in `/dev/shm`, who holds each, and removing those nobody does.

use anyhow::Context;
use mmapkit_shm::{NamedRegion, list_named, remove_if_stale};
use mmapkit_sys::bell_fifo::{BELL_DIR, stale_bells};

/// What `shm clean` takes.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A count as the table shows it: `?` where the OS cannot tell.
fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// One row of the table.
fn row(region: &NamedRegion) -> String {
    format!(
        "{:<40} {:<12} {:>8} {:<5} {:>10} {:>7} {:>4}",
        region.name,
        region.kind.as_str(),
        region.creator_pid,
        if region.holders.owner_alive { "yes" } else { "no" },
        region.len,
        count(region.holders.handles),
        count(region.holders.ends),
    )
}

/// Prints every named mmapkit-shm region: name, kind, creator pid, whether
/// the creator's handle is open, size in bytes, handles attached, ends
/// attached.
pub fn list() -> anyhow::Result<()> {
    let regions = list_named().context("cannot list the shared-memory regions")?;
    println!(
        "{:<40} {:<12} {:>8} {:<5} {:>10} {:>7} {:>4}",
        "NAME", "KIND", "OWNER", "ALIVE", "BYTES", "HANDLES", "ENDS"
    );
    for region in &regions {
        println!("{}", row(region));
    }
    Ok(())
}

/// Removes (or, with `--dry-run`, names) every region nobody holds (its
/// creator gone and nobody attached), and every readiness bell whose owner
/// process is gone.
pub fn clean(args: &CleanArgs) -> anyhow::Result<()> {
    let regions = list_named().context("cannot list the shared-memory regions")?;
    let mut removed = 0;
    for region in regions.iter().filter(|r| r.holders.stale()) {
        let what = format!("{} ({}, creator pid {})", region.name, region.kind.as_str(), region.creator_pid);
        if args.dry_run {
            println!("would remove {what}");
            removed += 1;
        } else if remove_if_stale(&region.name).with_context(|| format!("cannot remove {}", region.name))? {
            println!("removed {what}");
            removed += 1;
        }
    }
    let verb = if args.dry_run { "would be removed" } else { "removed" };
    println!("{removed} of {} regions {verb}", regions.len());
    // Readiness bells left by processes that were killed.
    let bells = stale_bells().with_context(|| format!("cannot list the readiness bells in {BELL_DIR}"))?;
    for bell in &bells {
        if args.dry_run {
            println!("would remove the bell {}", bell.display());
        } else {
            match std::fs::remove_file(bell) {
                Ok(()) => println!("removed the bell {}", bell.display()),
                // Removed by someone else since the listing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", bell.display())),
            }
        }
    }
    if !bells.is_empty() {
        println!("{} bells of processes that are gone {verb}", bells.len());
    }
    Ok(())
}

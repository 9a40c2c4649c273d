//! `residency`, `touch` and `evict`: the page cache per file, in the manner of vmtouch.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use mmapkit::Residency;
use serde::Serialize;

use crate::common::page_cache::read_into_cache;
use crate::common::paths::regular_files;
use crate::common::units::format_bytes;

/// Width of the resident-map picture, in characters.
const PICTURE_WIDTH: usize = 50;

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

fn file_residency(path: &Path) -> anyhow::Result<(u64, Residency)> {
    let file = open(path)?;
    let size = file.metadata().with_context(|| format!("cannot read {}", path.display()))?.len();
    let residency = mmapkit::page_cache::residency(&file)?;
    Ok((size, residency))
}

/// One character per slice of the file: `O` all resident, `o` some, ` ` none.
pub fn picture(residency: &Residency, width: usize) -> String {
    let pages: Vec<bool> = residency.pages().collect();
    if pages.is_empty() {
        return String::new();
    }
    let cells = width.min(pages.len());
    (0..cells)
        .map(|cell| {
            let slice = &pages[cell * pages.len() / cells..(cell + 1) * pages.len() / cells];
            let resident = slice.iter().filter(|&&r| r).count();
            match resident {
                0 => ' ',
                n if n == slice.len() => 'O',
                _ => 'o',
            }
        })
        .collect()
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 100.0 } else { part as f64 * 100.0 / whole as f64 }
}

#[derive(Serialize)]
struct FileReport {
    path: PathBuf,
    size_bytes: u64,
    pages: usize,
    resident_pages: usize,
}

#[derive(Serialize)]
struct Totals {
    pages: usize,
    resident_pages: usize,
}

#[derive(Serialize)]
struct ResidencyReport {
    files: Vec<FileReport>,
    total: Totals,
}

/// `mmapkit residency`: resident pages per file and in total.
pub fn residency(paths: &[PathBuf], recursive: bool, json: bool) -> anyhow::Result<()> {
    let mut report = ResidencyReport { files: Vec::new(), total: Totals { pages: 0, resident_pages: 0 } };
    let page = mmapkit::page_size() as u64;
    for path in regular_files(paths, recursive)? {
        let (size, residency) = file_residency(&path)?;
        let (pages, resident) = (residency.total_pages(), residency.resident_pages());
        if !json {
            println!(
                "{:<40} [{:<width$}] {resident:>9}/{pages:<9} {:>5.1}%  {}/{}",
                path.display(),
                picture(&residency, PICTURE_WIDTH),
                percent(resident, pages),
                format_bytes(resident as u64 * page),
                format_bytes(size),
                width = PICTURE_WIDTH.min(pages),
            );
        }
        report.total.pages += pages;
        report.total.resident_pages += resident;
        report.files.push(FileReport { path, size_bytes: size, pages, resident_pages: resident });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let Totals { pages, resident_pages } = report.total;
        println!(
            "total: {} files, {resident_pages}/{pages} pages resident ({:.1}%, {})",
            report.files.len(),
            percent(resident_pages, pages),
            format_bytes(resident_pages as u64 * page)
        );
    }
    Ok(())
}

fn progress(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `mmapkit touch`: reads every page of the files into the page cache.
pub fn touch(paths: &[PathBuf], recursive: bool, quiet: bool) -> anyhow::Result<()> {
    let files = regular_files(paths, recursive)?;
    let sizes = files
        .iter()
        .map(|p| Ok(std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?.len()))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let bar = progress(sizes.iter().sum(), quiet);
    let start = Instant::now();
    for path in &files {
        bar.set_message(path.display().to_string());
        read_into_cache(path, &open(path)?, |bytes| bar.inc(bytes))?;
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let total: u64 = sizes.iter().sum();
    println!(
        "touched {} files, {} in {seconds:.2} s ({}/s)",
        files.len(),
        format_bytes(total),
        format_bytes((total as f64 / seconds.max(1e-9)) as u64)
    );
    Ok(())
}

/// `mmapkit evict`: drops the files from the page cache and shows the effect.
pub fn evict(paths: &[PathBuf], recursive: bool) -> anyhow::Result<()> {
    for path in regular_files(paths, recursive)? {
        let (_, before) = file_residency(&path)?;
        mmapkit::page_cache::evict(&open(&path)?)?;
        let (_, after) = file_residency(&path)?;
        println!(
            "{}: {} -> {} of {} pages resident",
            path.display(),
            before.resident_pages(),
            after.resident_pages(),
            after.total_pages()
        );
    }
    Ok(())
}

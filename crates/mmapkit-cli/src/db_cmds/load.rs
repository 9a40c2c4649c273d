//! `mmapkit db load`: `key<TAB>value` lines from stdin, committed durably in batches.

use std::borrow::Cow;
use std::fmt::Display;
use std::io::{self, BufRead};
use std::path::PathBuf;

use anyhow::{anyhow, bail};

use super::codec::Encoding;
use super::{KeyOptions, flat, open_or_create, wait_for};

/// Options of `mmapkit db load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The database file.
    file: PathBuf,
    /// Commit (durably) after every N lines; the last, shorter batch is committed at the end of input.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = at_least_one)]
    batch: u64,
    /// Print `committed <lines so far>` on stderr after each commit.
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    options: KeyOptions,
}

/// Parses --batch: a whole number, at least 1.
fn at_least_one(text: &str) -> Result<u64, String> {
    match text.parse() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(err) => Err(format!("{err}")),
    }
}

/// Runs `mmapkit db load`.
pub fn load(args: &LoadArgs) -> anyhow::Result<()> {
    let encoding = args.options.encoding();
    // Opened before reading stdin; each batch holds the writer's turn from its first line to its commit.
    let db = open_or_create(&args.file, wait_for(args.options.wait)?).map_err(flat)?;
    let mut input = io::stdin().lock();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    // Lines 1..=committed are durable; the open transaction holds the rest of the batch.
    let mut committed = 0u64;
    let mut open = None;
    loop {
        line.clear();
        let read = input.read_until(b'\n', &mut line);
        match read {
            Ok(0) => break,
            Ok(_) => line_no += 1,
            Err(err) => return Err(stopped_at(line_no + 1, committed, format!("cannot read stdin: {err}"))),
        }
        let (key, value) = parse_line(encoding, &line).map_err(|err| stopped_at(line_no, committed, err))?;
        let mut txn = match open.take() {
            Some(txn) => txn,
            None => db.begin_write().map_err(|err| stopped_at(line_no, committed, err))?,
        };
        txn.open_table(&args.options.table)
            .and_then(|mut table| table.insert(&key, &value))
            .map_err(|err| stopped_at(line_no, committed, err))?;
        if line_no - committed < args.batch {
            open = Some(txn);
            continue;
        }
        txn.commit().map_err(|err| commit_failed(committed, line_no, err))?;
        committed = line_no;
        if args.verbose {
            eprintln!("committed {committed}");
        }
    }
    if let Some(txn) = open {
        txn.commit().map_err(|err| commit_failed(committed, line_no, err))?;
        if args.verbose {
            eprintln!("committed {line_no}");
        }
    }
    Ok(())
}

/// A key and its value: the bytes of the input line, or decoded from its hex.
type Entry<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// The key and value of one input line (its newline included or not).
fn parse_line(encoding: Encoding, line: &[u8]) -> anyhow::Result<Entry<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let Some(tab) = line.iter().position(|&b| b == b'\t') else {
        bail!("no tab between key and value (expected key<TAB>value)")
    };
    Ok((encoding.decode_bytes("key", &line[..tab])?, encoding.decode_bytes("value", &line[tab + 1..])?))
}

/// "line 3 is" or "lines 1-3 are".
fn lines(first: u64, last: u64) -> String {
    if first == last { format!("line {first} is") } else { format!("lines {first}-{last} are") }
}

/// What is committed when the load stopped after `committed` lines.
fn kept(committed: u64) -> String {
    if committed == 0 { "nothing is committed".to_string() } else { format!("{} committed", lines(1, committed)) }
}

/// The error for a load stopped at `line`, saying which lines are committed and which are not.
fn stopped_at(line: u64, committed: u64, cause: impl Display) -> anyhow::Error {
    let lost = if line > committed + 1 { format!("; {} not", lines(committed + 1, line - 1)) } else { String::new() };
    anyhow!("stdin line {line}: {cause} ({}{lost})", kept(committed))
}

/// The error for a failed commit of the lines after `committed` up to `last`.
fn commit_failed(committed: u64, last: u64, cause: impl Display) -> anyhow::Error {
    let batch = if committed + 1 == last { format!("line {last}") } else { format!("lines {}-{last}", committed + 1) };
    anyhow!("committing stdin {batch} failed: {cause} ({})", kept(committed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_splits_at_its_first_tab() {
        let (key, value) = parse_line(Encoding::Text, b"k\tv\twith tab\n").unwrap();
        assert_eq!((&key[..], &value[..]), (&b"k"[..], &b"v\twith tab"[..]));
        let (key, value) = parse_line(Encoding::Hex, b"00ff\t\n").unwrap();
        assert_eq!((&key[..], &value[..]), (&[0, 0xff][..], &b""[..]));
        assert!(parse_line(Encoding::Text, b"no tab\n").unwrap_err().to_string().contains("no tab"));
        assert!(parse_line(Encoding::Hex, b"0g\t00").unwrap_err().to_string().contains("not hex"));
        assert!(parse_line(Encoding::Text, b"\xff\tv").unwrap_err().to_string().contains("not UTF-8"));
    }

    #[test]
    fn a_stop_says_what_is_committed_and_what_is_not() {
        assert_eq!(
            stopped_at(1500, 1000, "bad").to_string(),
            "stdin line 1500: bad (lines 1-1000 are committed; lines 1001-1499 are not)"
        );
        assert_eq!(stopped_at(1, 0, "bad").to_string(), "stdin line 1: bad (nothing is committed)");
        assert_eq!(stopped_at(3, 0, "bad").to_string(), "stdin line 3: bad (nothing is committed; lines 1-2 are not)");
        assert_eq!(stopped_at(2, 1, "bad").to_string(), "stdin line 2: bad (line 1 is committed)");
        assert_eq!(
            commit_failed(1000, 2000, "disk full").to_string(),
            "committing stdin lines 1001-2000 failed: disk full (lines 1-1000 are committed)"
        );
    }
}

//! The readahead of the device a file is on: how much a fault on a map with
//! default advice may read around the page it needs.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;

/// A line naming the file's device readahead (`read_ahead_kb`), where sysfs
/// says it; `None` elsewhere.
pub fn describe(file: &File) -> Option<String> {
    let dev = file.metadata().ok()?.dev();
    // Linux's encoding of a device number (glibc's gnu_dev_major and gnu_dev_minor).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let base = format!("/sys/dev/block/{major}:{minor}");
    // A partition has no queue of its own: its disk's is one level up.
    let path = [format!("{base}/queue/read_ahead_kb"), format!("{base}/../queue/read_ahead_kb")]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let kb = std::fs::read_to_string(&path).ok()?.trim().parse::<u64>().ok()?;
    Some(format!(
        "the file's device reads ahead {kb} KiB ({path}): a fault on a map with default advice may read that much \
         around the page it needs; MADV_RANDOM reads only the page"
    ))
}

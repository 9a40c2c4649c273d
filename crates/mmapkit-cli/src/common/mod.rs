//! What several commands share, in one place: numbers for people, order
//! statistics, the read checksum, reading a file into the page cache, and
//! the files a user's paths name.

pub mod checksum;
pub mod page_cache;
pub mod paths;
pub mod stats;
pub mod units;

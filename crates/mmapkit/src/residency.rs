//! Which pages of a mapping are in memory (`mincore`).

/// A snapshot of which pages of a mapping were resident in memory.
///
/// Pages are counted from the page that holds the mapping's first byte, so a
/// map made at an unaligned offset counts that whole first page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Residency {
    page_size: usize,
    pages: Vec<u8>,
}

impl Residency {
    pub(crate) fn new(page_size: usize, pages: Vec<u8>) -> Self {
        Residency { page_size, pages }
    }

    /// The page size the snapshot counts in.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// How many pages the mapping spans.
    pub fn total_pages(&self) -> usize {
        self.pages.len()
    }

    /// How many of them were resident.
    pub fn resident_pages(&self) -> usize {
        self.pages.iter().filter(|&&p| p & 1 == 1).count()
    }

    /// Whether page `index` was resident (`false` past the end).
    pub fn is_resident(&self, index: usize) -> bool {
        self.pages.get(index).is_some_and(|&p| p & 1 == 1)
    }

    /// Each page in order: `true` where it was resident.
    pub fn pages(&self) -> impl ExactSizeIterator<Item = bool> + '_ {
        self.pages.iter().map(|&p| p & 1 == 1)
    }
}

//! Offset and length arithmetic between what a caller asks for (any byte
//! offset, any length) and what the kernel takes (page-aligned addresses and
//! file offsets). Every sum is checked: a request that overflows is an error,
//! never a wrapped value handed to `mmap`.

use crate::error::ErrorKind;

/// How a byte range of a file lands in a mapping.
///
/// The mapping starts at `file_offset` (the requested offset rounded down to a
/// page) and spans `map_len` bytes; the caller's bytes start `lead` bytes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// The page-aligned file offset the mapping starts at.
    pub file_offset: u64,
    /// Bytes between the mapping's start and the first requested byte.
    pub lead: usize,
    /// Bytes to map: `lead` plus the requested length.
    pub map_len: usize,
}

impl Span {
    /// The span for `len` bytes at `offset`, or `None` if it does not fit in the
    /// address space. `page` must be a power of two.
    pub(crate) fn new(offset: u64, len: usize, page: usize) -> Option<Span> {
        let lead = (offset & (page as u64 - 1)) as usize;
        offset.checked_add(len as u64)?;
        let map_len = lead.checked_add(len)?;
        // The kernel rounds the length up to whole pages; that must fit too.
        map_len.checked_next_multiple_of(page)?;
        Some(Span { file_offset: offset - lead as u64, lead, map_len })
    }
}

/// The number of bytes to map for a request of `len` bytes (or, with `None`,
/// the rest of the file) at `offset` into a file of `file_len` bytes.
pub(crate) fn resolve_len(offset: u64, len: Option<usize>, file_len: u64) -> Result<usize, ErrorKind> {
    match len {
        Some(len) => {
            let end = offset.checked_add(len as u64).ok_or(ErrorKind::TooLarge { offset, len: len as u64 })?;
            if end > file_len {
                return Err(ErrorKind::PastEndOfFile { offset, len: len as u64, file_len });
            }
            Ok(len)
        }
        None => {
            let rest = file_len.checked_sub(offset).ok_or(ErrorKind::PastEndOfFile { offset, len: 0, file_len })?;
            usize::try_from(rest).map_err(|_| ErrorKind::TooLarge { offset, len: rest })
        }
    }
}

/// The length of `range`, or, for a range that ends before it starts, an
/// error for `op` naming it.
pub(crate) fn range_len(range: &std::ops::Range<usize>, op: crate::Operation) -> crate::Result<usize> {
    range
        .end
        .checked_sub(range.start)
        .ok_or_else(|| crate::Error::new(op, ErrorKind::InvalidArgument("the range ends before it starts")))
}

/// Checks that `offset..offset+len` lies inside a mapping's `data_len` bytes.
fn check_inside(data_len: usize, offset: usize, len: usize) -> Result<usize, ErrorKind> {
    offset.checked_add(len).filter(|&end| end <= data_len).ok_or(ErrorKind::OutsideMapping {
        offset,
        len,
        map_len: data_len,
    })
}

/// The page-aligned range, as (start, length) from the mapping's base, that
/// covers bytes `offset..offset+len` of the data (which starts `lead` bytes
/// into the mapping). Rounded outwards: for msync, madvise and mlock, which
/// may safely touch whole pages around the range. The length is 0 when `len` is.
pub(crate) fn pages_covering(
    lead: usize,
    data_len: usize,
    offset: usize,
    len: usize,
    page: usize,
) -> Result<(usize, usize), ErrorKind> {
    let end = check_inside(data_len, offset, len)?;
    let start = (lead + offset) & !(page - 1);
    if len == 0 {
        return Ok((start, 0));
    }
    Ok((start, lead + end - start))
}

/// The page-aligned range, as (start, length) from the mapping's base, of the
/// whole pages that lie inside bytes `offset..offset+len` of the data. Rounded
/// inwards: for advice that changes contents, which must not reach bytes the
/// caller did not name: a partial page at either end is left alone, since its
/// other bytes may belong to the file outside this mapping (`MADV_REMOVE` would
/// punch them out of the file).
pub(crate) fn pages_within(
    lead: usize,
    data_len: usize,
    offset: usize,
    len: usize,
    page: usize,
) -> Result<(usize, usize), ErrorKind> {
    let end = check_inside(data_len, offset, len)?;
    let start = (lead + offset).next_multiple_of(page);
    let stop = (lead + end) & !(page - 1);
    Ok((start, stop.saturating_sub(start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAGE: usize = 4096;

    proptest! {
        #[test]
        fn span_starts_on_a_page_and_covers_the_request(offset in any::<u64>(), len in any::<usize>()) {
            match Span::new(offset, len, PAGE) {
                Some(span) => {
                    prop_assert_eq!(span.file_offset % PAGE as u64, 0);
                    prop_assert!(span.lead < PAGE);
                    prop_assert_eq!(span.file_offset + span.lead as u64, offset);
                    prop_assert_eq!(span.map_len, span.lead + len);
                }
                None => {
                    let lead = offset % PAGE as u64;
                    let fits = offset.checked_add(len as u64).is_some()
                        && (lead as usize).checked_add(len).and_then(|l| l.checked_next_multiple_of(PAGE)).is_some();
                    prop_assert!(!fits, "a request that fits was refused");
                }
            }
        }

        #[test]
        fn resolved_length_never_passes_the_file_end(
            offset in 0u64..1 << 40,
            len in proptest::option::of(0usize..1 << 40),
            file_len in 0u64..1 << 40,
        ) {
            match resolve_len(offset, len, file_len) {
                Ok(n) => {
                    prop_assert!(offset + n as u64 <= file_len);
                    match len {
                        Some(asked) => prop_assert_eq!(n, asked),
                        None => prop_assert_eq!(offset + n as u64, file_len),
                    }
                }
                Err(ErrorKind::PastEndOfFile { .. }) => {
                    prop_assert!(offset + len.unwrap_or(0) as u64 > file_len || offset > file_len);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        #[test]
        fn covering_pages_are_aligned_and_contain_the_range(
            lead in 0usize..PAGE,
            data_len in 0usize..1 << 30,
            offset in 0usize..1 << 30,
            len in 0usize..1 << 30,
        ) {
            match pages_covering(lead, data_len, offset, len, PAGE) {
                Ok((start, n)) => {
                    prop_assert!(offset + len <= data_len);
                    prop_assert_eq!(start % PAGE, 0);
                    if len > 0 {
                        prop_assert!(start <= lead + offset);
                        prop_assert_eq!(start + n, lead + offset + len);
                        prop_assert!(lead + offset - start < PAGE);
                    } else {
                        prop_assert_eq!(n, 0);
                    }
                }
                Err(_) => prop_assert!(offset + len > data_len),
            }
        }

        #[test]
        fn pages_within_never_leave_the_range(
            lead in 0usize..PAGE,
            data_len in 0usize..1 << 30,
            offset in 0usize..1 << 30,
            len in 0usize..1 << 30,
        ) {
            match pages_within(lead, data_len, offset, len, PAGE) {
                Ok((start, n)) => {
                    prop_assert!(offset + len <= data_len);
                    prop_assert_eq!(start % PAGE, 0);
                    if n > 0 {
                        prop_assert!(start >= lead + offset);
                        prop_assert!(start + n <= lead + offset + len);
                        prop_assert_eq!(n % PAGE, 0);
                    }
                }
                Err(_) => prop_assert!(offset + len > data_len),
            }
        }
    }
}

//! Property test: any (offset, length) against any file size maps exactly the
//! file's bytes, or is refused at map time when it does not fit.

mod common;

use common::{TestFile, pattern_byte};
use mmapkit::{ErrorKind, MapOptions};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn maps_hold_exactly_the_requested_bytes(
        file_len in 0usize..40_000,
        offset in 0u64..45_000,
        len in proptest::option::of(0usize..45_000),
    ) {
        let tf = TestFile::new(file_len);
        let mut options = MapOptions::new();
        options.offset(offset);
        if let Some(len) = len {
            options.len(len);
        }
        // SAFETY: the test owns the file.
        let result = unsafe { options.map(&tf.open()) };
        let end = offset + len.unwrap_or(file_len.saturating_sub(offset as usize)) as u64;
        if offset > file_len as u64 || end > file_len as u64 {
            let err = result.unwrap_err();
            prop_assert!(matches!(err.kind(), ErrorKind::PastEndOfFile { .. }), "{}", err);
        } else {
            let map = result.unwrap();
            prop_assert_eq!(map.len() as u64, end - offset);
            for (i, &b) in map.iter().enumerate() {
                prop_assert_eq!(b, pattern_byte(offset + i as u64));
            }
        }
    }
}

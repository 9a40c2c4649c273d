//! The checksum that proves every byte was read: each bench folds what it
//! reads into it, and the methods or transports it compares must agree.

/// The wrapping sum of the little-endian 64-bit words of `bytes`, plus any
/// trailing bytes. The same for any split of the data into pieces whose
/// lengths are multiples of 8.
pub fn sum_words(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let sum = words.by_ref().fold(0u64, |acc, w| acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap())));
    words.remainder().iter().fold(sum, |acc, &b| acc.wrapping_add(u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_do_not_depend_on_how_the_data_is_split() {
        let data: Vec<u8> = (0..10_007u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = sum_words(&data);
        let pieces: u64 = data.chunks(4096).map(sum_words).fold(0, u64::wrapping_add);
        let small: u64 = data.chunks(8).map(sum_words).fold(0, u64::wrapping_add);
        assert_eq!(whole, pieces);
        assert_eq!(whole, small);
    }
}

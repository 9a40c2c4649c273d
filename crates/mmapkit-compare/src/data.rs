//! Deterministic keys and values: item `i` always has the same key and value, in every engine and every run.
//!
//! Keys and values come from SplitMix64 streams (Steele, Lea and Flood's generator, the one that starts
//! xoshiro's state). A SplitMix64 output depends only on its position in the stream, so item `i` is computed directly
//! from `i`, without generating the items before it: the reads can pick any existing item and know what its
//! value must be.

/// Length of every key, in bytes.
pub const KEY_LEN: usize = 24;
/// Length of every value, in bytes.
pub const VALUE_LEN: usize = 150;

/// A key.
pub type Key = [u8; KEY_LEN];
/// A value.
pub type Value = [u8; VALUE_LEN];

/// SplitMix64's increment: the golden ratio as a 64-bit fraction.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function for the stream position `state`.
fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` with the SplitMix64 stream that starts at `start`, from its word `first_word`.
fn fill_from(start: u64, first_word: u64, out: &mut [u8]) {
    for (n, chunk) in out.chunks_mut(8).enumerate() {
        let position = first_word + n as u64 + 1;
        let word = mix(start.wrapping_add(position.wrapping_mul(GAMMA))).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The items of one benchmark run: item `i` has key [`Items::key`]`(i)` and value [`Items::value`]`(i)`.
#[derive(Debug, Clone, Copy)]
pub struct Items {
    key_start: u64,
    value_start: u64,
}

impl Items {
    /// Words of the key stream used by one key.
    const KEY_WORDS: u64 = KEY_LEN.div_ceil(8) as u64;
    /// Words of the value stream used by one value.
    const VALUE_WORDS: u64 = VALUE_LEN.div_ceil(8) as u64;

    /// The items of stream number `stream`.
    pub fn new(stream: u64) -> Self {
        Self { key_start: mix(stream ^ 0x6B65_7973), value_start: mix(stream ^ 0x7661_6C75_6573) }
    }

    /// The key of item `i`: random bytes.
    pub fn key(&self, i: u64) -> Key {
        let mut key = [0; KEY_LEN];
        fill_from(self.key_start, i * Self::KEY_WORDS, &mut key);
        key
    }

    /// The value of item `i`: random bytes.
    pub fn value(&self, i: u64) -> Value {
        let mut value = [0; VALUE_LEN];
        fill_from(self.value_start, i * Self::VALUE_WORDS, &mut value);
        value
    }
}

/// A sequential SplitMix64 generator, for choosing which items to read.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator that starts at `start`.
    pub fn new(start: u64) -> Self {
        Self { state: start }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A number in `0..bound` (multiply-shift; the bias is below 2^-40 for the bounds used here).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The sum of `bytes`, the checksum that proves a value or key was read.
pub fn byte_sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_deterministic_and_distinct() {
        let items = Items::new(7);
        assert_eq!(items.key(3), Items::new(7).key(3));
        assert_eq!(items.value(3), Items::new(7).value(3));
        assert_ne!(items.key(3), items.key(4));
        assert_ne!(items.key(3), Items::new(8).key(3));
        assert_ne!(items.value(3)[..], items.value(4)[..]);
    }

    #[test]
    fn random_access_matches_the_sequential_stream() {
        let items = Items::new(1);
        let mut rng = Rng::new(items.key_start);
        let mut stream = Vec::new();
        for _ in 0..(3 * Items::KEY_WORDS) {
            stream.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        assert_eq!(stream[..KEY_LEN], items.key(0));
        assert_eq!(stream[2 * KEY_LEN..3 * KEY_LEN], items.key(2));
    }

    #[test]
    fn below_stays_in_bounds() {
        let mut rng = Rng::new(5);
        assert!((0..10_000).all(|_| rng.below(17) < 17));
    }
}

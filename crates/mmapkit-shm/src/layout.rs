//! The layout fingerprint a region's header carries: the size, alignment and
//! name of the type it holds, so that a process opening it with another type
//! (or another version of the type) is refused.

use std::fmt;

/// Size, alignment and a hash of a name for the type a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// `size_of` the type.
    pub size: u64,
    /// `align_of` the type.
    pub align: u64,
    /// FNV-1a hash of the name given (a type name with a version, say).
    pub name_hash: u64,
}

impl Layout {
    /// The layout of `T` under `name`. Change the name when the type's meaning
    /// changes without its size changing.
    pub fn of<T>(name: &str) -> Layout {
        Layout { size: size_of::<T>() as u64, align: align_of::<T>() as u64, name_hash: fnv1a(name.as_bytes()) }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a type of {} bytes, alignment {}, name hash {:#018x}", self.size, self.align, self.name_hash)
    }
}

/// The 64-bit FNV-1a hash: stable across builds and platforms.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_differ_by_size_alignment_and_name() {
        assert_eq!(Layout::of::<u64>("a"), Layout::of::<u64>("a"));
        assert_ne!(Layout::of::<u64>("a"), Layout::of::<u32>("a"));
        assert_ne!(Layout::of::<[u8; 8]>("a"), Layout::of::<u64>("a"));
        assert_ne!(Layout::of::<u64>("a"), Layout::of::<u64>("b"));
        // Known FNV-1a vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

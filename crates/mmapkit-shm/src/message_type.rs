//! The message type a board or channel carries, as its header records it:
//! size, alignment, `std::any::type_name` and a fingerprint of the three, so
//! that a typed end attaching with another type is refused with both names.
//!
//! The tag is 24 bytes of numbers, a 4-byte name length and up to 192 bytes
//! of name (longer names are cut, on a character boundary, in the header;
//! the fingerprint covers the whole name). A zeroed tag means raw bytes.

use std::sync::atomic::Ordering;

use crate::error::{Result, ShmError};
use crate::layout::fnv1a;
use crate::pubsub::layout::{TYPE_NAME_LEN, TypeTag};

/// What an end expects to find: raw bytes (anything goes), or one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageType {
    /// Untyped: attaches to a board of any message type, and makes one
    /// with a zeroed tag.
    Bytes,
    /// A type, with its name and the fingerprint of size, alignment and name.
    Typed { name: &'static str, size: usize, align: usize, fingerprint: u64 },
}

impl MessageType {
    /// The tag of `T`.
    pub(crate) fn of<T>() -> MessageType {
        let name = std::any::type_name::<T>();
        let (size, align) = (size_of::<T>(), align_of::<T>());
        MessageType::Typed { name, size, align, fingerprint: fingerprint(name, size as u64, align as u64) }
    }

    /// Writes the tag into a header being made.
    pub(crate) fn write(&self, tag: &TypeTag) {
        let MessageType::Typed { name, size, align, fingerprint } = *self else { return };
        tag.size.store(size as u64, Ordering::Relaxed);
        tag.align.store(align as u64, Ordering::Relaxed);
        tag.fingerprint.store(fingerprint, Ordering::Relaxed);
        let mut cut = name.len().min(TYPE_NAME_LEN);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        tag.name_len.store(cut as u32, Ordering::Relaxed);
        let name_ptr = tag.name.as_ptr().cast_mut();
        // SAFETY: the header is not yet published (its maker alone touches it), and `cut` bytes fit the name field.
        unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), name_ptr, cut) };
    }

    /// Checks a header's tag against this end's type; a typed end also
    /// checks that its type fits a message of `room` bytes aligned to `room_align`.
    pub(crate) fn check(&self, tag: &TypeTag, region: &str, room: usize, room_align: usize) -> Result<()> {
        let MessageType::Typed { name, size, align, fingerprint: ours } = *self else { return Ok(()) };
        if size > room || align > room_align {
            return Err(ShmError::TypeDoesNotFit { ty: name, size, align, room, room_align });
        }
        let found = read(tag);
        if found.fingerprint != ours || found.size != size as u64 || found.align != align as u64 {
            return Err(ShmError::WrongMessageType {
                region: region.to_owned(),
                ours: describe(name, size as u64, align as u64, ours),
                theirs: if found.fingerprint == 0 && found.size == 0 {
                    "raw bytes (no message type)".to_owned()
                } else {
                    describe(&found.name, found.size, found.align, found.fingerprint)
                },
            });
        }
        Ok(())
    }
}

/// A tag as read once from a header.
struct Found {
    name: String,
    size: u64,
    align: u64,
    fingerprint: u64,
}

fn read(tag: &TypeTag) -> Found {
    let len = (tag.name_len.load(Ordering::Acquire) as usize).min(TYPE_NAME_LEN);
    let mut name = vec![0u8; len];
    // SAFETY: `len` bytes of the name field lie in the mapping; a volatile copy because a peer may write them
    // (any bytes are then read, never out of bounds).
    unsafe {
        for (i, byte) in name.iter_mut().enumerate() {
            *byte = std::ptr::read_volatile(tag.name.as_ptr().add(i));
        }
    }
    Found {
        name: String::from_utf8_lossy(&name).into_owned(),
        size: tag.size.load(Ordering::Acquire),
        align: tag.align.load(Ordering::Acquire),
        fingerprint: tag.fingerprint.load(Ordering::Acquire),
    }
}

fn describe(name: &str, size: u64, align: u64, fingerprint: u64) -> String {
    format!("{name} ({size} bytes, alignment {align}, fingerprint {fingerprint:#018x})")
}

/// The fingerprint of a type: FNV-1a over its name, size and alignment.
fn fingerprint(name: &str, size: u64, align: u64) -> u64 {
    let mut bytes = name.as_bytes().to_vec();
    bytes.extend_from_slice(&size.to_le_bytes());
    bytes.extend_from_slice(&align.to_le_bytes());
    // Never zero, which marks raw bytes.
    fnv1a(&bytes).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_differ_by_name_size_and_alignment() {
        let a = MessageType::of::<u64>();
        assert_eq!(a, MessageType::of::<u64>());
        assert_ne!(a, MessageType::of::<i64>());
        assert_ne!(a, MessageType::of::<[u8; 8]>());
        assert_ne!(fingerprint("x", 8, 8), fingerprint("x", 8, 4));
        assert_ne!(fingerprint("x", 8, 8), fingerprint("x", 16, 8));
    }
}

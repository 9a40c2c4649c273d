//! A `Map` as a `bytes::Bytes`, without a copy (feature `bytes`).

use bytes::Bytes;

use crate::map::Map;

impl Map {
    /// Turns the map into a [`Bytes`] over the same memory, without copying:
    /// the map becomes the `Bytes`' owner and is unmapped when the last clone
    /// (or slice) of it is dropped.
    ///
    /// A `Bytes` hands out `&[u8]` safely, for as long as any clone lives, so
    /// the contract the map was made under carries over to every clone: no
    /// one may modify the mapped part of the file while any of them is alive.
    /// The fault guard stays on the map, but a `Bytes` has no way to ask it:
    /// check [`Map::checked`] or [`Map::fault`] before converting where a
    /// truncation matters.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("frame.bin");
    /// std::fs::write(&path, b"header:payload")?;
    /// // SAFETY: no one modifies the file while the map, or any Bytes made from it, lives.
    /// let bytes = unsafe { mmapkit::Map::open(&path)? }.into_bytes();
    /// let payload = bytes.slice(7..);
    /// drop(bytes);
    /// assert_eq!(&payload[..], b"payload");
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl From<Map> for Bytes {
    /// See [`Map::into_bytes`].
    fn from(map: Map) -> Bytes {
        map.into_bytes()
    }
}

//! `RemapOptions`: how a map may be resized.

/// How [`remap`](crate::MapMut::remap) may resize a map.
///
/// ```
/// # fn main() -> mmapkit::Result<()> {
/// let mut map = mmapkit::MapMut::anon(4096)?;
/// map[0] = 7;
/// // SAFETY: an anonymous map, and no pointer into it is kept.
/// unsafe { map.remap(1 << 20, *mmapkit::RemapOptions::new().may_move(true))? };
/// assert_eq!((map.len(), map[0]), (1 << 20, 7));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemapOptions {
    may_move: bool,
}

impl RemapOptions {
    /// In place only (the default).
    pub fn new() -> RemapOptions {
        RemapOptions::default()
    }

    /// Whether the map may move to a new address when it cannot grow where
    /// it is (`MREMAP_MAYMOVE`). Its bytes move with it; pointers into it do not.
    pub fn may_move(&mut self, may_move: bool) -> &mut Self {
        self.may_move = may_move;
        self
    }

    pub(crate) fn moves(self) -> bool {
        self.may_move
    }
}

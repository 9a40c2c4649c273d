//! `StableDeref` for the maps that dereference to bytes (feature `stable_deref_trait`).

use crate::map::Map;
use crate::map_mut::MapMut;

// SAFETY: a `Map` dereferences to its mapping's bytes, which live in memory the kernel mapped, not inside the `Map`
// value: moving the value does not move them, every `deref` returns the same address while the map lives (an empty
// map's is one fixed, page-aligned address), and no `&self` method unmaps or moves the mapping (only `remap` and
// `refresh`, which take `&mut self`, and `drop` do).
unsafe impl stable_deref_trait::StableDeref for Map {}

// SAFETY: as for `Map`; `deref_mut` returns the same address as `deref`, and writing through it changes bytes, never
// the mapping.
unsafe impl stable_deref_trait::StableDeref for MapMut {}

//! What makes a type storable: [`Value`] (how it is written as bytes and read
//! back, borrowing the mapping where it can), [`Key`] (a value whose bytes
//! sort as the values do, so the tree's byte order is the type's order), and
//! [`TupleElement`] (a key that can be followed by more bytes: every element
//! of a tuple key but the last).

/// A type a table can store. Its bytes are written by [`encode`](Self::encode)
/// and read back by [`decode`](Self::decode), which returns a
/// [`SelfType`](Self::SelfType) that may borrow the bytes: `&str` and `&[u8]`
/// values are slices of the mapped file, no copy.
///
/// `decode` must accept whatever `encode` wrote and give back an equal value,
/// and both must be deterministic.
pub trait Value {
    /// The type as read: `Self`, or `Self` with its lifetime set to the
    /// bytes' (for `&str` and `&[u8]`).
    type SelfType<'a>
    where
        Self: 'a;
    /// An owned copy, for values that outlive the bytes they came from
    /// (what an insert replaced, what a remove took out).
    type Owned;

    /// Appends `value`'s bytes to `out`; an error says why it cannot be stored.
    fn encode(value: &Self::SelfType<'_>, out: &mut Vec<u8>) -> Result<(), String>;

    /// The value `bytes` hold; an error says why they are not one.
    fn decode<'a>(bytes: &'a [u8]) -> Result<Self::SelfType<'a>, String>
    where
        Self: 'a;

    /// An owned copy of `value`.
    fn to_owned(value: &Self::SelfType<'_>) -> Self::Owned;

    /// Writes `value`'s encoding at the start of `out` and returns its
    /// length, without allocating: for types whose encodings have a width
    /// known up front (integers, `bool`, byte arrays, and `Option`s and tuples
    /// of them), which then look tables up with no heap allocation. `None`
    /// (the default) when the type cannot or `out` is too short; then
    /// [`encode`](Self::encode) is used. What it writes must be exactly what
    /// `encode` appends.
    fn encode_inline(value: &Self::SelfType<'_>, out: &mut [u8]) -> Option<usize> {
        let _ = (value, out);
        None
    }

    /// `value`'s encoding where it is the value's own bytes (`&[u8]`,
    /// `Vec<u8>`, `&str`, `String`, byte arrays), so that a table looks it up
    /// or stores it in place, with no copy and no allocation. `None` (the
    /// default) for other types; what it returns must be exactly what
    /// [`encode`](Self::encode) appends.
    fn as_bytes<'v>(value: &'v Self::SelfType<'_>) -> Option<&'v [u8]> {
        let _ = value;
        None
    }

    /// The type's name as a table records it: opening a table with a type
    /// of another name is an error. Types with one encoding share a name
    /// (`&str` and `String` are `"str"`).
    fn type_name() -> String;
}

/// A [`Value`] whose encodings sort, as bytes, in the order of the values:
/// `a < b` exactly when `encode(a) < encode(b)` (byte-wise, a prefix first).
/// The tree orders keys by their bytes, so this is what makes ranges,
/// `first` and `last` follow the type's order.
pub trait Key: Value {}

/// A [`Key`] that can be followed by other bytes and still sort right: its
/// element encoding ends where it ends (fixed width, or a terminator), and
/// `x < y` exactly when `element(x) ++ rest_x < element(y) ++ rest_y` for any
/// rests whenever `x != y`. Every element of a tuple key but the last is one.
pub trait TupleElement: Key {
    /// Appends `value`'s element encoding to `out`.
    fn encode_element(value: &Self::SelfType<'_>, out: &mut Vec<u8>) -> Result<(), String>;

    /// [`Value::encode_inline`] for the element encoding: exactly what
    /// [`encode_element`](Self::encode_element) appends, or `None` (the default).
    fn encode_element_inline(value: &Self::SelfType<'_>, out: &mut [u8]) -> Option<usize> {
        let _ = (value, out);
        None
    }

    /// The value at the start of `bytes` and the bytes after its encoding.
    fn decode_element<'a>(bytes: &'a [u8]) -> Result<(Self::SelfType<'a>, &'a [u8]), String>
    where
        Self: 'a;
}

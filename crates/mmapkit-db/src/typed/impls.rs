//! [`Value`], [`Key`] and [`TupleElement`] for the standard types: integers
//! (big-endian, the sign bit flipped for signed ones, so the bytes sort as
//! the numbers), `bool`, strings and byte strings (their bytes), byte arrays,
//! `Option` (`None` first) and tuples of two and three elements (element by
//! element).
//!
//! As a tuple element, a string is its bytes and a zero byte (so it cannot
//! hold one), and a byte string escapes each zero byte as `00 ff` and ends
//! with `00 00`; a borrowed `&[u8]` is not an element (its escaped bytes are
//! not the value's), `Vec<u8>` is.

use super::traits::{Key, TupleElement, Value};

/// `bytes` as exactly `N` bytes, or why not.
fn exact<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    bytes.try_into().map_err(|_| format!("{} bytes where a {what} takes {N}", bytes.len()))
}

/// Copies `bytes` to the start of `out`; their length, or `None` if it is too short.
fn put(bytes: &[u8], out: &mut [u8]) -> Option<usize> {
    out.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(bytes.len())
}

/// The first `n` bytes of `bytes` and the rest, or why not.
fn split<'a>(bytes: &'a [u8], n: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    if bytes.len() < n {
        return Err(format!("{} bytes where a {what} takes {n}", bytes.len()));
    }
    Ok(bytes.split_at(n))
}

macro_rules! integers {
    ($($t:ty, $flip:expr);* $(;)?) => {$(
        impl Value for $t {
            type SelfType<'a> = $t;
            type Owned = $t;

            fn encode(value: &$t, out: &mut Vec<u8>) -> Result<(), String> {
                out.extend_from_slice(&(*value ^ $flip).to_be_bytes());
                Ok(())
            }

            fn decode<'a>(bytes: &'a [u8]) -> Result<$t, String>
    where
        Self: 'a,
    {
                Ok(<$t>::from_be_bytes(exact(bytes, stringify!($t))?) ^ $flip)
            }

            fn encode_inline(value: &$t, out: &mut [u8]) -> Option<usize> {
                put(&(*value ^ $flip).to_be_bytes(), out)
            }

            fn to_owned(value: &$t) -> $t {
                *value
            }

            fn type_name() -> String {
                stringify!($t).to_string()
            }
        }

        impl Key for $t {}

        impl TupleElement for $t {
            fn encode_element(value: &$t, out: &mut Vec<u8>) -> Result<(), String> {
                Self::encode(value, out)
            }

            fn encode_element_inline(value: &$t, out: &mut [u8]) -> Option<usize> {
                Self::encode_inline(value, out)
            }

            fn decode_element<'a>(bytes: &'a [u8]) -> Result<($t, &'a [u8]), String>
    where
        Self: 'a,
    {
                let (this, rest) = split(bytes, size_of::<$t>(), stringify!($t))?;
                Ok((Self::decode(this)?, rest))
            }
        }
    )*};
}

integers! {
    u8, 0; u16, 0; u32, 0; u64, 0; u128, 0;
    i8, i8::MIN; i16, i16::MIN; i32, i32::MIN; i64, i64::MIN; i128, i128::MIN;
}

impl Value for bool {
    type SelfType<'a> = bool;
    type Owned = bool;

    fn encode(value: &bool, out: &mut Vec<u8>) -> Result<(), String> {
        out.push(u8::from(*value));
        Ok(())
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<bool, String>
    where
        Self: 'a,
    {
        match bytes {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(format!("{bytes:?} is not a bool (one byte, 0 or 1)")),
        }
    }

    fn encode_inline(value: &bool, out: &mut [u8]) -> Option<usize> {
        put(&[u8::from(*value)], out)
    }

    fn to_owned(value: &bool) -> bool {
        *value
    }

    fn type_name() -> String {
        "bool".to_string()
    }
}

impl Key for bool {}

impl TupleElement for bool {
    fn encode_element(value: &bool, out: &mut Vec<u8>) -> Result<(), String> {
        Self::encode(value, out)
    }

    fn encode_element_inline(value: &bool, out: &mut [u8]) -> Option<usize> {
        Self::encode_inline(value, out)
    }

    fn decode_element<'a>(bytes: &'a [u8]) -> Result<(bool, &'a [u8]), String>
    where
        Self: 'a,
    {
        let (this, rest) = split(bytes, 1, "bool")?;
        Ok((Self::decode(this)?, rest))
    }
}

/// A string element: its bytes and a zero byte.
fn encode_str_element(value: &str, out: &mut Vec<u8>) -> Result<(), String> {
    if let Some(at) = value.bytes().position(|b| b == 0) {
        return Err(format!("a string in a tuple key cannot hold a zero byte (one is at byte {at})"));
    }
    out.extend_from_slice(value.as_bytes());
    out.push(0);
    Ok(())
}

fn decode_str_element(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    let end = bytes.iter().position(|&b| b == 0).ok_or("a string element without its ending zero byte")?;
    Ok((decode_str(&bytes[..end])?, &bytes[end + 1..]))
}

fn decode_str(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

impl Value for &str {
    type SelfType<'a>
        = &'a str
    where
        Self: 'a;
    type Owned = String;

    fn encode(value: &&str, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn as_bytes<'v>(value: &'v &str) -> Option<&'v [u8]> {
        Some(value.as_bytes())
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<&'a str, String>
    where
        Self: 'a,
    {
        decode_str(bytes)
    }

    fn to_owned(value: &&str) -> String {
        value.to_string()
    }

    fn type_name() -> String {
        "str".to_string()
    }
}

impl Key for &str {}

impl TupleElement for &str {
    fn encode_element(value: &&str, out: &mut Vec<u8>) -> Result<(), String> {
        encode_str_element(value, out)
    }

    fn decode_element<'a>(bytes: &'a [u8]) -> Result<(&'a str, &'a [u8]), String>
    where
        Self: 'a,
    {
        decode_str_element(bytes)
    }
}

impl Value for String {
    type SelfType<'a> = String;
    type Owned = String;

    fn encode(value: &String, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn as_bytes(value: &String) -> Option<&[u8]> {
        Some(value.as_bytes())
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<String, String>
    where
        Self: 'a,
    {
        decode_str(bytes).map(str::to_string)
    }

    fn to_owned(value: &String) -> String {
        value.clone()
    }

    fn type_name() -> String {
        "str".to_string()
    }
}

impl Key for String {}

impl TupleElement for String {
    fn encode_element(value: &String, out: &mut Vec<u8>) -> Result<(), String> {
        encode_str_element(value, out)
    }

    fn decode_element<'a>(bytes: &'a [u8]) -> Result<(String, &'a [u8]), String>
    where
        Self: 'a,
    {
        decode_str_element(bytes).map(|(s, rest)| (s.to_string(), rest))
    }
}

impl Value for &[u8] {
    type SelfType<'a>
        = &'a [u8]
    where
        Self: 'a;
    type Owned = Vec<u8>;

    fn encode(value: &&[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn as_bytes<'v>(value: &'v &[u8]) -> Option<&'v [u8]> {
        Some(value)
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<&'a [u8], String>
    where
        Self: 'a,
    {
        Ok(bytes)
    }

    fn to_owned(value: &&[u8]) -> Vec<u8> {
        value.to_vec()
    }

    fn type_name() -> String {
        "bytes".to_string()
    }
}

impl Key for &[u8] {}

impl Value for Vec<u8> {
    type SelfType<'a> = Vec<u8>;
    type Owned = Vec<u8>;

    fn encode(value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn as_bytes(value: &Vec<u8>) -> Option<&[u8]> {
        Some(value)
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<Vec<u8>, String>
    where
        Self: 'a,
    {
        Ok(bytes.to_vec())
    }

    fn to_owned(value: &Vec<u8>) -> Vec<u8> {
        value.clone()
    }

    fn type_name() -> String {
        "bytes".to_string()
    }
}

impl Key for Vec<u8> {}

impl TupleElement for Vec<u8> {
    /// Each zero byte as `00 ff`, then `00 00`: a shorter string's end sorts
    /// before any byte a longer one continues with.
    fn encode_element(value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        for &b in value {
            out.push(b);
            if b == 0 {
                out.push(0xff);
            }
        }
        out.extend_from_slice(&[0, 0]);
        Ok(())
    }

    fn decode_element<'a>(bytes: &'a [u8]) -> Result<(Vec<u8>, &'a [u8]), String>
    where
        Self: 'a,
    {
        let mut value = Vec::new();
        let mut i = 0;
        loop {
            match (bytes.get(i), bytes.get(i + 1)) {
                (Some(0), Some(0)) => return Ok((value, &bytes[i + 2..])),
                (Some(0), Some(0xff)) => {
                    value.push(0);
                    i += 2;
                }
                (Some(0), other) => return Err(format!("byte string element: zero byte followed by {other:?}")),
                (Some(&b), _) => {
                    value.push(b);
                    i += 1;
                }
                (None, _) => return Err("a byte string element without its ending 00 00".to_string()),
            }
        }
    }
}

impl<const N: usize> Value for [u8; N] {
    type SelfType<'a> = [u8; N];
    type Owned = [u8; N];

    fn encode(value: &[u8; N], out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn as_bytes(value: &[u8; N]) -> Option<&[u8]> {
        Some(value)
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<[u8; N], String>
    where
        Self: 'a,
    {
        exact(bytes, "byte array")
    }

    fn encode_inline(value: &[u8; N], out: &mut [u8]) -> Option<usize> {
        put(value, out)
    }

    fn to_owned(value: &[u8; N]) -> [u8; N] {
        *value
    }

    fn type_name() -> String {
        format!("[u8; {N}]")
    }
}

impl<const N: usize> Key for [u8; N] {}

impl<const N: usize> TupleElement for [u8; N] {
    fn encode_element(value: &[u8; N], out: &mut Vec<u8>) -> Result<(), String> {
        Self::encode(value, out)
    }

    fn encode_element_inline(value: &[u8; N], out: &mut [u8]) -> Option<usize> {
        Self::encode_inline(value, out)
    }

    fn decode_element<'a>(bytes: &'a [u8]) -> Result<([u8; N], &'a [u8]), String>
    where
        Self: 'a,
    {
        let (this, rest) = split(bytes, N, "byte array")?;
        Ok((Self::decode(this)?, rest))
    }
}

/// `None` is a zero byte, `Some(x)` a one byte and `x`: `None` sorts first.
impl<T: Value> Value for Option<T> {
    type SelfType<'a>
        = Option<T::SelfType<'a>>
    where
        Self: 'a;
    type Owned = Option<T::Owned>;

    fn encode(value: &Self::SelfType<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        match value {
            None => out.push(0),
            Some(x) => {
                out.push(1);
                T::encode(x, out)?;
            }
        }
        Ok(())
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<Self::SelfType<'a>, String>
    where
        Self: 'a,
    {
        match bytes.split_first() {
            Some((0, [])) => Ok(None),
            Some((1, rest)) => T::decode(rest).map(Some),
            _ => Err(format!("{} bytes that are not an Option (00, or 01 and the value)", bytes.len())),
        }
    }

    fn encode_inline(value: &Self::SelfType<'_>, out: &mut [u8]) -> Option<usize> {
        let (tag, rest) = out.split_first_mut()?;
        *tag = u8::from(value.is_some());
        Some(1 + value.as_ref().map_or(Some(0), |x| T::encode_inline(x, rest))?)
    }

    fn to_owned(value: &Self::SelfType<'_>) -> Self::Owned {
        value.as_ref().map(T::to_owned)
    }

    fn type_name() -> String {
        format!("Option<{}>", T::type_name())
    }
}

impl<T: Key> Key for Option<T> {}

impl<T: TupleElement> TupleElement for Option<T> {
    fn encode_element(value: &Self::SelfType<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        match value {
            None => out.push(0),
            Some(x) => {
                out.push(1);
                T::encode_element(x, out)?;
            }
        }
        Ok(())
    }

    fn decode_element<'a>(bytes: &'a [u8]) -> Result<(Self::SelfType<'a>, &'a [u8]), String>
    where
        Self: 'a,
    {
        match bytes.split_first() {
            Some((0, rest)) => Ok((None, rest)),
            Some((1, rest)) => T::decode_element(rest).map(|(x, rest)| (Some(x), rest)),
            _ => Err("an Option element that is neither 00 nor 01 and the value".to_string()),
        }
    }

    fn encode_element_inline(value: &Self::SelfType<'_>, out: &mut [u8]) -> Option<usize> {
        let (tag, rest) = out.split_first_mut()?;
        *tag = u8::from(value.is_some());
        Some(1 + value.as_ref().map_or(Some(0), |x| T::encode_element_inline(x, rest))?)
    }
}

/// Tuples: each element but the last as a [`TupleElement`], then the last
/// as itself; as a tuple element, every element as one.
macro_rules! tuples {
    ($(($($e:ident $v:ident),+; $last:ident $lv:ident)),* $(,)?) => {$(
        impl<$($e: TupleElement,)+ $last: Value> Value for ($($e,)+ $last) {
            type SelfType<'a>
                = ($($e::SelfType<'a>,)+ $last::SelfType<'a>)
            where
                Self: 'a;
            type Owned = ($($e::Owned,)+ $last::Owned);

            fn encode(value: &Self::SelfType<'_>, out: &mut Vec<u8>) -> Result<(), String> {
                let ($($v,)+ $lv) = value;
                $($e::encode_element($v, out)?;)+
                $last::encode($lv, out)
            }

            fn decode<'a>(bytes: &'a [u8]) -> Result<Self::SelfType<'a>, String>
            where
                Self: 'a,
            {
                let rest = bytes;
                $(let ($v, rest) = $e::decode_element(rest)?;)+
                Ok(($($v,)+ $last::decode(rest)?))
            }

            fn encode_inline(value: &Self::SelfType<'_>, out: &mut [u8]) -> Option<usize> {
                let ($($v,)+ $lv) = value;
                let mut at = 0;
                $(at += $e::encode_element_inline($v, out.get_mut(at..)?)?;)+
                Some(at + $last::encode_inline($lv, out.get_mut(at..)?)?)
            }

            fn to_owned(value: &Self::SelfType<'_>) -> Self::Owned {
                let ($($v,)+ $lv) = value;
                ($($e::to_owned($v),)+ $last::to_owned($lv))
            }

            fn type_name() -> String {
                let names = [$($e::type_name(),)+ $last::type_name()];
                format!("({})", names.join(", "))
            }
        }

        impl<$($e: TupleElement,)+ $last: Key> Key for ($($e,)+ $last) {}

        impl<$($e: TupleElement,)+ $last: TupleElement> TupleElement for ($($e,)+ $last) {
            fn encode_element(value: &Self::SelfType<'_>, out: &mut Vec<u8>) -> Result<(), String> {
                let ($($v,)+ $lv) = value;
                $($e::encode_element($v, out)?;)+
                $last::encode_element($lv, out)
            }

            fn encode_element_inline(value: &Self::SelfType<'_>, out: &mut [u8]) -> Option<usize> {
                let ($($v,)+ $lv) = value;
                let mut at = 0;
                $(at += $e::encode_element_inline($v, out.get_mut(at..)?)?;)+
                Some(at + $last::encode_element_inline($lv, out.get_mut(at..)?)?)
            }

            fn decode_element<'a>(bytes: &'a [u8]) -> Result<(Self::SelfType<'a>, &'a [u8]), String>
            where
                Self: 'a,
            {
                let rest = bytes;
                $(let ($v, rest) = $e::decode_element(rest)?;)+
                let ($lv, rest) = $last::decode_element(rest)?;
                Ok((($($v,)+ $lv), rest))
            }
        }
    )*};
}

tuples! {
    (A a; B b),
    (A a, B b; C c),
    (A a, B b, C c; D d),
}

//! Keys and values as the user types and reads them: UTF-8 text, or hex with `--hex`.

use std::borrow::Cow;
use std::fmt::Write as _;

use anyhow::bail;

/// How keys and values appear on the command line, on stdin and on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text, stored as its bytes.
    Text,
    /// Two hex digits per byte (either case on input, lowercase on output).
    Hex,
}

impl Encoding {
    /// `Hex` when `hex`, else `Text`.
    pub fn new(hex: bool) -> Encoding {
        if hex { Encoding::Hex } else { Encoding::Text }
    }

    /// The bytes `text` stands for; `what` ("key", "value") names it in errors.
    pub fn decode<'a>(self, what: &str, text: &'a str) -> anyhow::Result<Cow<'a, [u8]>> {
        match self {
            Encoding::Text => Ok(Cow::Borrowed(text.as_bytes())),
            Encoding::Hex => Ok(Cow::Owned(decode_hex(what, text)?)),
        }
    }

    /// The bytes of one field read from stdin; `what` names it in errors.
    pub fn decode_bytes<'a>(self, what: &str, bytes: &'a [u8]) -> anyhow::Result<Cow<'a, [u8]>> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.decode(what, text),
            Err(_) if self == Encoding::Hex => bail!("{what} is not hex: it has bytes that are not ASCII"),
            Err(_) => bail!("{what} is not UTF-8 text (use --hex for binary keys and values)"),
        }
    }

    /// `bytes` as this encoding shows them, or `None` in text mode when they are not UTF-8.
    pub fn encode(self, bytes: &[u8]) -> Option<Cow<'_, str>> {
        match self {
            Encoding::Text => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            Encoding::Hex => Some(Cow::Owned(hex(bytes))),
        }
    }

    /// A key for an error message: as the user would type it, or in hex
    /// (saying so) when it is not text.
    pub fn describe_key(self, key: &[u8]) -> String {
        match self.encode(key) {
            Some(shown) => shown.into_owned(),
            None => format!("{} (hex)", hex(key)),
        }
    }
}

/// Lowercase hex, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The bytes of hex `text`; `what` names it in errors.
pub fn decode_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        bail!("{what} {} is not hex: it has an odd number of digits", quoted(text));
    }
    let digit = |at: usize| -> anyhow::Result<u8> {
        let c = text.as_bytes()[at];
        match (c as char).to_digit(16) {
            Some(d) => Ok(d as u8),
            None => {
                bail!("{what} {} is not hex: {:?} at position {} is not a hex digit", quoted(text), c as char, at + 1)
            }
        }
    };
    (0..text.len()).step_by(2).map(|at| Ok((digit(at)? << 4) | digit(at + 1)?)).collect()
}

/// `text` quoted for an error message, cut short when long (a value can be megabytes).
fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = hex(&all);
        assert_eq!(&text[..8], "00010203");
        assert_eq!(decode_hex("key", &text).unwrap(), all);
        assert_eq!(decode_hex("key", "FFfe").unwrap(), [0xff, 0xfe]);
        assert_eq!(decode_hex("key", "").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_hex_says_where() {
        let odd = decode_hex("key", "abc").unwrap_err().to_string();
        assert!(odd.contains("odd number of digits"), "{odd}");
        let bad = decode_hex("value", "00zz").unwrap_err().to_string();
        assert!(bad.contains("'z' at position 3"), "{bad}");
        // A multi-byte character is rejected, not split.
        assert!(decode_hex("key", "é0").is_err());
        let long = decode_hex("value", &"x".repeat(1000)).unwrap_err().to_string();
        assert!(long.len() < 200, "{long}");
    }

    #[test]
    fn text_mode_refuses_to_show_bytes_that_are_not_utf8() {
        assert_eq!(Encoding::Text.encode(b"plain").as_deref(), Some("plain"));
        assert_eq!(Encoding::Text.encode(&[0xff, 0x00]), None);
        assert_eq!(Encoding::Hex.encode(&[0xff, 0x00]).as_deref(), Some("ff00"));
        assert_eq!(Encoding::Text.describe_key(&[0xff]), "ff (hex)");
    }
}

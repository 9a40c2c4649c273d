//! Numbers for people: byte counts (`64MiB` in, `1.5 GiB` out), durations
//! (`1.5 µs`) and counts with thousands separators (`1,234,567`).

use anyhow::bail;

/// Formats a byte count with a binary unit ("512 B", "1.5 GiB").
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if (value * 10.0).round() % 10.0 == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a size such as `4096`, `64KiB`, `64MiB`, `2GiB`, `1G` or `10MB`.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        "t" | "tib" => 1 << 40,
        "tb" => 1_000_000_000_000,
        other => bail!("invalid size {text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB or TiB)"),
    };
    let value: f64 = match number.parse() {
        Ok(v) => v,
        Err(_) => bail!("invalid size {text:?}: expected a number followed by a unit, like 64MiB"),
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        bail!("invalid size {text:?}: must be at least 1 byte");
    }
    Ok(bytes as u64)
}

/// `parse_size` for clap: a malformed value is a usage error naming it.
pub fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

/// Formats a duration in nanoseconds with a fitting unit.
pub fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

/// Formats a count with thousands separators.
pub fn format_count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        assert!(parse_size("12 parsecs").unwrap_err().to_string().contains("unknown unit"));
        assert!(parse_size("MiB").unwrap_err().to_string().contains("expected a number"));
        assert!(parse_size("0").unwrap_err().to_string().contains("at least 1 byte"));
    }

    #[test]
    fn bytes_format_with_the_largest_fitting_unit() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 << 30), "3 GiB");
        assert_eq!(format_bytes(4096), "4 KiB");
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(format_ns(999), "999 ns");
        assert_eq!(format_ns(1_500), "1.5 µs");
        assert_eq!(format_ns(2_500_000), "2.50 ms");
        assert_eq!(format_count(1234567.4), "1,234,567");
        assert_eq!(format_count(12.0), "12");
    }
}

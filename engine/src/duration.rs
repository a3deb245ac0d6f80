//! Durations in job files: `"250ms"`, `"10s"`, `"1m"`, `"2h"`, `"1d"` or a plain integer of ms.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A non-negative span of event or processing time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationMs(pub i64);

impl DurationMs {
    /// Parses `"<integer><unit>"` with unit `ms`, `s`, `m`, `h` or `d`, or a bare integer of ms.
    pub fn parse(text: &str) -> Result<DurationMs, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(format!(
                "`{text}` is not a duration (expected e.g. \"500ms\", \"10s\", \"1m\")"
            ));
        }
        let value: i64 = digits
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        let scale = match unit.trim() {
            "" | "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (use ms, s, m, h or d)"
                ));
            }
        };
        value
            .checked_mul(scale)
            .map(DurationMs)
            .ok_or_else(|| format!("`{text}`: duration too large"))
    }

    /// The duration in milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The duration as a std duration (negative values clamp to zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }
}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, scale) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms != 0 && ms % scale == 0 {
                return write!(f, "{}{unit}", ms / scale);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for DurationMs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationMs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"10s\", \"1m\" or an integer of ms")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationMs, E> {
                if v < 0 {
                    return Err(E::custom(format!("duration must not be negative, got {v}")));
                }
                Ok(DurationMs(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationMs, E> {
                i64::try_from(v)
                    .map(DurationMs)
                    .map_err(|_| E::custom("duration too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationMs, E> {
                DurationMs::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_integers() {
        assert_eq!(DurationMs::parse("250ms"), Ok(DurationMs(250)));
        assert_eq!(DurationMs::parse("10s"), Ok(DurationMs(10_000)));
        assert_eq!(DurationMs::parse("1m"), Ok(DurationMs(60_000)));
        assert_eq!(DurationMs::parse("2h"), Ok(DurationMs(7_200_000)));
        assert_eq!(DurationMs::parse("1d"), Ok(DurationMs(86_400_000)));
        assert_eq!(DurationMs::parse("42"), Ok(DurationMs(42)));
    }

    #[test]
    fn rejects_bad_text_with_the_text_in_the_message() {
        let err = DurationMs::parse("10 parsecs").expect_err("bad unit");
        assert!(
            err.contains("10 parsecs") && err.contains("unknown unit"),
            "{err}"
        );
        assert!(
            DurationMs::parse("fast")
                .expect_err("no digits")
                .contains("fast")
        );
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(DurationMs(60_000).to_string(), "1m");
        assert_eq!(DurationMs(1_500).to_string(), "1500ms");
        assert_eq!(DurationMs(0).to_string(), "0ms");
    }
}

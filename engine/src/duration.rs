//! Durations in job files: `"250ms"`, `"10s"`, `"1m"`, `"2h"`, `"1d"` or an integer of ms;
//! signed ones (interval-join bounds) may also be negative, `"-1s"` or `-1000`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A non-negative span of event or processing time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationMs(pub i64);

/// A span of event time that may be negative (an interval join's bound), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SignedDurationMs(pub i64);

/// Parses `"<integer><unit>"`, with an optional leading `-` when `signed`. A string needs its
/// unit: a bare number is written as a TOML integer (`5`, not `"5"`), so that `"5"` meant as
/// seconds is not silently read as milliseconds.
fn parse(text: &str, signed: bool) -> Result<i64, String> {
    let text = text.trim();
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) if signed => (true, rest.trim_start()),
        Some(_) => return Err(format!("`{text}`: a duration must not be negative")),
        None => (false, text),
    };
    let split = magnitude
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(magnitude.len());
    let (digits, unit) = magnitude.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not a duration (expected e.g. \"500ms\", \"10s\", \"1m\")"
        ));
    }
    let value: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}`: number too large"))?;
    let scale = match unit.trim() {
        "" => {
            return Err(format!(
                "`{text}` has no unit: write \"{digits}ms\", \"{digits}s\", ... or the integer \
                 {digits} (milliseconds)"
            ));
        }
        "ms" => 1,
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
    let ms = value
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}`: duration too large"))?;
    Ok(if negative { -ms } else { ms })
}

impl DurationMs {
    /// Parses `"<integer><unit>"` with unit `ms`, `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<DurationMs, String> {
        parse(text, false).map(DurationMs)
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

impl SignedDurationMs {
    /// Parses `"<integer><unit>"` as [`DurationMs::parse`] does, or `"-<integer><unit>"`.
    pub fn parse(text: &str) -> Result<SignedDurationMs, String> {
        parse(text, true).map(SignedDurationMs)
    }

    /// The duration in milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SignedDurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            write!(f, "-{}", DurationMs(self.0.saturating_neg()))
        } else {
            DurationMs(self.0).fmt(f)
        }
    }
}

impl Serialize for SignedDurationMs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// Reads a duration from a TOML string or integer; `signed` admits negative values.
struct DurationVisitor {
    signed: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"500ms\", \"10s\", \"1m\" or an integer of ms")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        if v < 0 && !self.signed {
            return Err(E::custom(format!("duration must not be negative, got {v}")));
        }
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("duration too large"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse(v, self.signed).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { signed: false })
            .map(DurationMs)
    }
}

impl<'de> Deserialize<'de> for SignedDurationMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { signed: true })
            .map(SignedDurationMs)
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
    }

    #[test]
    fn a_string_needs_its_unit() {
        let err = DurationMs::parse("5").expect_err("no unit");
        assert!(err.contains("`5` has no unit"), "{err}");
        let parsed: DurationMs = toml::from_str::<Holder>("d = 42").expect("integer").d;
        assert_eq!(parsed, DurationMs(42), "a TOML integer is milliseconds");
    }

    #[test]
    fn signed_durations_take_a_minus_and_plain_ones_refuse_it() {
        assert_eq!(SignedDurationMs::parse("-1s"), Ok(SignedDurationMs(-1_000)));
        assert_eq!(SignedDurationMs::parse("250ms"), Ok(SignedDurationMs(250)));
        assert_eq!(
            SignedDurationMs::parse("- 2m"),
            Ok(SignedDurationMs(-120_000))
        );
        assert_eq!(SignedDurationMs(-1_000).to_string(), "-1s");
        let err = DurationMs::parse("-1s").expect_err("negative");
        assert!(err.contains("must not be negative"), "{err}");
        let signed: SignedHolder = toml::from_str("d = -1000").expect("negative integer");
        assert_eq!(signed.d, SignedDurationMs(-1_000));
        let signed: SignedHolder = toml::from_str("d = \"-5s\"").expect("negative text");
        assert_eq!(signed.d, SignedDurationMs(-5_000));
        assert!(toml::from_str::<Holder>("d = -1000").is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    struct Holder {
        d: DurationMs,
    }

    #[derive(Debug, serde::Deserialize)]
    struct SignedHolder {
        d: SignedDurationMs,
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

//! `date_format` and `to_timestamp`: timestamps to and from text with Flink's (Java's) patterns.
//!
//! Flink takes `java.text.SimpleDateFormat` patterns (`'yyyy-MM-dd HH:mm:ss'`); they are
//! translated once, when the expression is parsed, to the `strftime` items arrow's formatter
//! and chrono's parser read. A letter with no translation is an error naming it, not text
//! printed verbatim.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::compute::kernels::arity::{binary, unary};
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use arrow::datatypes::TimestampMillisecondType;
use arrow::error::ArrowError;
use arrow::util::display::FormatOptions;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Flink's default pattern for `date_format` and `to_timestamp`.
pub(super) const DEFAULT_PATTERN: &str = "yyyy-MM-dd HH:mm:ss";

/// The `strftime` form of the Java pattern `java`, or why it has none.
pub(super) fn strftime(java: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // `'T'` is literal text; `''` is one quote, inside quotes or out.
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            out.push('\'');
                        }
                        Some('\'') => break,
                        Some('%') => out.push_str("%%"),
                        Some(text) => out.push(text),
                        None => return Err(format!("unclosed quote in date pattern '{java}'")),
                    }
                }
            }
            'a'..='z' | 'A'..='Z' => {
                let mut run = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    run += 1;
                }
                out.push_str(item(c, run).ok_or_else(|| {
                    format!(
                        "date pattern '{java}': `{}` is not supported (use y M d H h m s S a E D u Z X, \
                         text in single quotes)",
                        c.to_string().repeat(run)
                    )
                })?);
            }
            '%' => out.push_str("%%"),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The `strftime` item for `run` repeats of the Java pattern letter `letter`.
fn item(letter: char, run: usize) -> Option<&'static str> {
    let item = match (letter, run) {
        ('y', 2) => "%y",
        ('y', _) => "%Y",
        ('M', 1) => "%-m",
        ('M', 2) => "%m",
        ('M', 3) => "%b",
        ('M', _) => "%B",
        ('d', 1) => "%-d",
        ('d', 2) => "%d",
        ('H', 1) => "%-H",
        ('H', 2) => "%H",
        ('h', 1) => "%-I",
        ('h', 2) => "%I",
        ('m', 1) => "%-M",
        ('m', 2) => "%M",
        ('s', 1) => "%-S",
        ('s', 2) => "%S",
        ('S', 3) => "%3f",
        ('S', 6) => "%6f",
        ('S', 9) => "%9f",
        ('a', 1) => "%p",
        ('E', 1..=3) => "%a",
        ('E', _) => "%A",
        ('D', 1) => "%-j",
        ('D', 3) => "%j",
        ('u', 1) => "%u",
        ('Z', 1) => "%z",
        ('X', 1 | 2) => "%z",
        ('X', 3) => "%:z",
        _ => return None,
    };
    Some(item)
}

/// `date_format(ts, pattern)`: arrow's cast to text with the translated pattern, in each value's
/// time zone (UTC for a timestamp without one).
pub(super) fn format(times: &ArrayRef, pattern: &str) -> Result<ArrayRef, ArrowError> {
    let items = strftime(pattern).map_err(ArrowError::InvalidArgumentError)?;
    let options = CastOptions {
        safe: true,
        format_options: FormatOptions::new()
            .with_timestamp_format(Some(&items))
            .with_timestamp_tz_format(Some(&items)),
    };
    cast_with_options(times, &DataType::Utf8, &options)
}

/// `to_timestamp(s, pattern)`: each text read with the translated pattern as UTC wall time (or
/// at its offset when the pattern has one), null when it does not parse. Row by row: arrow's
/// own text-to-timestamp cast reads ISO 8601 forms only.
pub(super) fn parse(strings: &StringArray, pattern: &str) -> Result<ArrayRef, ArrowError> {
    let items = strftime(pattern).map_err(ArrowError::InvalidArgumentError)?;
    let millis = strings.iter().map(|text| {
        let text = text?;
        if let Ok(time) = DateTime::parse_from_str(text, &items) {
            return Some(time.timestamp_millis());
        }
        if let Ok(time) = NaiveDateTime::parse_from_str(text, &items) {
            return Some(time.and_utc().timestamp_millis());
        }
        let date = NaiveDate::parse_from_str(text, &items).ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
    });
    let times = TimestampMillisecondArray::from_iter(millis).with_timezone("UTC");
    debug_assert_eq!(times.len(), strings.len());
    Ok(Arc::new(times))
}

/// `floor(ts to unit)` (or `ceil` when `up`): epoch milliseconds rounded to a multiple of `unit`
/// (a positive length), in the input's type.
pub(super) fn round(times: &ArrayRef, unit: i64, up: bool) -> Result<ArrayRef, ArrowError> {
    let millis = times.as_primitive::<TimestampMillisecondType>();
    let rounded: TimestampMillisecondArray = unary(millis, |ms| {
        let down = ms - ms.rem_euclid(unit);
        if up && down != ms {
            down.saturating_add(unit)
        } else {
            down
        }
    });
    Ok(Arc::new(rounded.with_timezone_opt(millis.timezone())))
}

/// `timestampdiff(unit, from, to)`: whole `unit`s from `from` to `to`, truncated towards zero.
pub(super) fn difference(
    from: &ArrayRef,
    to: &ArrayRef,
    unit: i64,
) -> Result<ArrayRef, ArrowError> {
    let from = from.as_primitive::<TimestampMillisecondType>();
    let to = to.as_primitive::<TimestampMillisecondType>();
    let units: Int64Array = binary(from, to, |a, b| b.wrapping_sub(a) / unit)?;
    Ok(Arc::new(units))
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::{TimeUnit, TimestampMillisecondType};

    use super::super::{Expr, ExprError};
    use super::*;

    /// 2024-05-01T12:00:00.123Z, 1999-12-31T23:59:59Z and null, in UTC (`ts`) and labelled
    /// `+02:00` (`local`); texts in `s`.
    fn batch() -> Result<RecordBatch, ExprError> {
        let millis = vec![Some(1_714_564_800_123), Some(946_684_799_000), None];
        RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(millis.clone()).with_timezone("UTC"))
                    as ArrayRef,
            ),
            (
                "local",
                Arc::new(TimestampMillisecondArray::from(millis).with_timezone("+02:00")),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("01/05/2024 12:30"),
                    Some("2024-05-01"),
                    Some("garbage"),
                ])),
            ),
        ])
        .map_err(|source| ExprError::Evaluate {
            expr: "batch".into(),
            source,
        })
    }

    fn eval(text: &str) -> Result<ArrayRef, ExprError> {
        let batch = batch()?;
        let expr = Expr::parse(text)?;
        let result = expr.evaluate(&batch)?;
        assert_eq!(
            result.data_type(),
            &expr.data_type(batch.schema_ref())?,
            "{text}"
        );
        Ok(result)
    }

    fn texts(text: &str) -> Result<Vec<Option<String>>, ExprError> {
        let result = eval(text)?;
        Ok(result
            .as_string::<i32>()
            .iter()
            .map(|text| text.map(str::to_string))
            .collect())
    }

    fn millis(text: &str) -> Result<Vec<Option<i64>>, ExprError> {
        let result = eval(text)?;
        assert!(
            matches!(
                result.data_type(),
                DataType::Timestamp(TimeUnit::Millisecond, _)
            ),
            "{text}: {}",
            result.data_type()
        );
        Ok(result
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect())
    }

    fn some(values: &[Option<&str>]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|value| value.map(str::to_string))
            .collect()
    }

    #[test]
    fn date_format_writes_the_pattern_in_the_values_zone() -> Result<(), ExprError> {
        assert_eq!(
            texts("date_format(ts)")?,
            some(&[
                Some("2024-05-01 12:00:00"),
                Some("1999-12-31 23:59:59"),
                None
            ])
        );
        assert_eq!(
            texts("date_format(ts, 'yyyy/MM/dd HH:mm:ss.SSS')")?,
            some(&[
                Some("2024/05/01 12:00:00.123"),
                Some("1999/12/31 23:59:59.000"),
                None
            ])
        );
        assert_eq!(
            texts("date_format(local, 'EEE d MMM, HH:mm XXX')")?,
            some(&[
                Some("Wed 1 May, 14:00 +02:00"),
                Some("Sat 1 Jan, 01:59 +02:00"),
                None
            ]),
            "a labelled zone's wall clock"
        );
        Ok(())
    }

    #[test]
    fn to_timestamp_reads_iso_text_or_a_pattern_and_nulls_what_does_not_parse()
    -> Result<(), ExprError> {
        assert_eq!(
            millis("to_timestamp(s, 'dd/MM/yyyy HH:mm')")?,
            vec![Some(1_714_566_600_000), None, None]
        );
        assert_eq!(
            millis("to_timestamp(s, 'yyyy-MM-dd')")?,
            vec![None, Some(1_714_521_600_000), None],
            "a date alone is midnight UTC"
        );
        assert_eq!(
            millis("to_timestamp('2024-05-01 12:00:00')")?,
            vec![Some(1_714_564_800_000); 3]
        );
        assert_eq!(
            millis("to_timestamp('2024-05-01T10:00:00+02:00')")?,
            vec![Some(1_714_550_400_000); 3],
            "ISO 8601 with an offset, as cast reads it"
        );
        Ok(())
    }

    #[test]
    fn floor_ceil_and_timestampdiff_count_whole_units() -> Result<(), ExprError> {
        assert_eq!(
            millis("FLOOR(ts TO HOUR)")?,
            vec![Some(1_714_564_800_000), Some(946_681_200_000), None]
        );
        assert_eq!(
            millis("CEIL(ts TO MINUTE)")?,
            vec![Some(1_714_564_860_000), Some(946_684_800_000), None]
        );
        assert_eq!(
            millis("CEIL(FLOOR(ts TO DAY) TO DAY)")?,
            vec![Some(1_714_521_600_000), Some(946_598_400_000), None],
            "a whole day stays itself"
        );
        let diff = |text: &str| -> Result<Vec<Option<i64>>, ExprError> {
            Ok(eval(text)?
                .as_primitive::<arrow::datatypes::Int64Type>()
                .iter()
                .collect())
        };
        assert_eq!(
            diff("TIMESTAMPDIFF(HOUR, ts, ts + INTERVAL '150' MINUTE)")?,
            vec![Some(2), Some(2), None]
        );
        assert_eq!(
            diff("TIMESTAMPDIFF(DAY, ts, to_timestamp('2000-01-01 00:00:00'))")?,
            vec![Some(-8_887), Some(0), None],
            "-8887.5 days: negative when the second is earlier, truncated towards zero"
        );
        let batch = batch()?;
        let err = Expr::parse("FLOOR(local TO HOUR)")?
            .data_type(batch.schema_ref())
            .expect_err("not UTC");
        assert!(err.to_string().contains("a timestamp in UTC"), "{err}");
        let err = Expr::parse("FLOOR(ts TO MONTH)").expect_err("no fixed length");
        assert!(err.to_string().contains("no fixed length"), "{err}");
        let err = Expr::parse("TIMESTAMPDIFF(WEEK, ts, ts)").expect_err("unit");
        assert!(err.to_string().contains("timestampdiff's unit"), "{err}");
        Ok(())
    }

    #[test]
    fn intervals_move_timestamps_and_scale() -> Result<(), ExprError> {
        assert_eq!(
            millis("ts + INTERVAL '1' HOUR")?,
            vec![Some(1_714_568_400_123), Some(946_688_399_000), None]
        );
        assert_eq!(
            millis("INTERVAL '90' SECOND + ts - INTERVAL '2' MINUTE * 2")?,
            vec![Some(1_714_564_650_123), Some(946_684_649_000), None]
        );
        assert_eq!(
            texts("date_format(local - -INTERVAL '1' DAY, 'yyyy-MM-dd')")?,
            some(&[Some("2024-05-02"), Some("2000-01-02"), None]),
            "the zone survives the arithmetic"
        );
        let same = eval("INTERVAL '1' MINUTE * 3 = INTERVAL '180' SECOND")?;
        assert_eq!(
            same.as_boolean().iter().collect::<Vec<_>>(),
            vec![Some(true); 3]
        );
        let batch = batch()?;
        for refused in [
            "ts + 1",
            "ts + ts",
            "INTERVAL '1' SECOND - ts",
            "INTERVAL '1' SECOND * 1.5",
        ] {
            let err = Expr::parse(refused)?
                .data_type(batch.schema_ref())
                .expect_err(refused);
            assert!(err.to_string().contains("type error"), "{refused}: {err}");
        }
        Ok(())
    }

    #[test]
    fn java_patterns_translate_letter_runs_and_quoted_text() {
        assert_eq!(
            strftime(DEFAULT_PATTERN).as_deref(),
            Ok("%Y-%m-%d %H:%M:%S")
        );
        assert_eq!(
            strftime("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").as_deref(),
            Ok("%Y-%m-%dT%H:%M:%S.%3f%:z")
        );
        assert_eq!(
            strftime("EEE, d MMM yy h:mm a").as_deref(),
            Ok("%a, %-d %b %y %-I:%M %p")
        );
        assert_eq!(strftime("'it''s' 100% D").as_deref(), Ok("it's 100%% %-j"));
        assert_eq!(strftime("yyyyMMdd''HH").as_deref(), Ok("%Y%m%d'%H"));
        let err = strftime("yyyy-ww").expect_err("week of year");
        assert!(err.contains("`ww`") && err.contains("yyyy-ww"), "{err}");
        assert!(strftime("'open").is_err_and(|err| err.contains("unclosed quote")));
    }
}

//! Parses text columns into their target types, reporting each value that does not parse.
//!
//! CSV is decoded as text first and typed here, column by column, so that one bad value
//! rejects its row with the column named, instead of failing the batch. A timestamp is parsed
//! from RFC 3339 text or from integer milliseconds since the epoch, and must lie in the valid
//! event-time range: a value no sink could print is rejected here, at the source.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use sluice_engine::event_time::{EVENT_TIME_RANGE, in_range, parse_timestamp_ms};
use sluice_engine::{Error, Result};

/// Converts `text` (every column `Utf8`) to `target`, column by column. Returns the converted
/// batch, with nulls where a value did not parse, and per row the first failure's reason.
pub fn parse_columns(
    text: &RecordBatch,
    target: &SchemaRef,
) -> Result<(RecordBatch, Vec<Option<String>>)> {
    let mut reasons: Vec<Option<String>> = vec![None; text.num_rows()];
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for (column, field) in text.columns().iter().zip(target.fields()) {
        let strings = column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| {
                Error::Internal(format!("column `{}` was not decoded as text", field.name()))
            })?;
        let parsed = parse_column(strings, field.data_type())
            .map_err(Error::arrow(format!("parsing column `{}`", field.name())))?;
        if let Some(millis) = parsed.as_primitive_opt::<TimestampMillisecondType>() {
            // Parsed, but out of range: said so rather than "cannot parse".
            for (row, reason) in reasons.iter_mut().enumerate() {
                if reason.is_none() && millis.is_valid(row) && !in_range(millis.value(row)) {
                    *reason = Some(out_of_range(field.name(), strings.value(row)));
                }
            }
        }
        // A value that was present but came out null did not parse.
        if parsed.null_count() > strings.null_count() {
            for (row, reason) in reasons.iter_mut().enumerate() {
                if reason.is_none() && strings.is_valid(row) && parsed.is_null(row) {
                    let what = type_name(field.data_type());
                    *reason = Some(format!(
                        "column `{}`: cannot parse `{}` as {what}",
                        field.name(),
                        strings.value(row)
                    ));
                }
            }
        }
        columns.push(parsed);
    }
    let batch = RecordBatch::try_new(target.clone(), columns)
        .map_err(Error::arrow("assembling parsed columns"))?;
    Ok((batch, reasons))
}

/// One column, with null where a value does not parse.
pub fn parse_column(
    strings: &StringArray,
    data_type: &DataType,
) -> Result<ArrayRef, arrow::error::ArrowError> {
    match data_type {
        DataType::Utf8 => Ok(Arc::new(strings.clone())),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            let millis: TimestampMillisecondArray = strings
                .iter()
                .map(|s| s.and_then(parse_timestamp_ms))
                .collect();
            Ok(Arc::new(millis.with_timezone_opt(tz.clone())))
        }
        // Safe casting turns unparsable values into nulls, which `parse_columns` reports.
        other => cast_with_options(
            strings,
            other,
            &CastOptions {
                safe: true,
                ..CastOptions::default()
            },
        ),
    }
}

/// Why a time `value` in `column` is rejected although it parsed.
pub fn out_of_range(column: &str, value: &str) -> String {
    format!("column `{column}`: `{value}` is outside the valid time range {EVENT_TIME_RANGE}")
}

/// Per row of `batch`, the reason it is rejected for a timestamp column outside the valid
/// range (decoders that type values themselves, such as JSON, check their output here).
pub fn check_time_ranges(batch: &RecordBatch) -> Vec<Option<String>> {
    let mut reasons = vec![None; batch.num_rows()];
    for (column, field) in batch.columns().iter().zip(batch.schema().fields()) {
        let Some(millis) = column.as_primitive_opt::<TimestampMillisecondType>() else {
            continue;
        };
        for (row, reason) in reasons.iter_mut().enumerate() {
            if reason.is_none() && millis.is_valid(row) && !in_range(millis.value(row)) {
                *reason = Some(out_of_range(field.name(), &millis.value(row).to_string()));
            }
        }
    }
    reasons
}

/// How a type is named in a dead letter's reason.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Timestamp(..) => "a timestamp (RFC 3339 or integer ms)".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn bad_values_are_reported_by_row_and_column() {
        let text = RecordBatch::try_from_iter([
            (
                "n",
                Arc::new(StringArray::from(vec![
                    Some("1"),
                    Some("x"),
                    None,
                    Some("4"),
                ])) as ArrayRef,
            ),
            (
                "v",
                Arc::new(StringArray::from(vec![
                    Some("1.5"),
                    Some("2"),
                    Some("fast"),
                    Some("-0.25"),
                ])),
            ),
        ])
        .expect("text batch");
        let target = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("v", DataType::Float64, true),
        ]));
        let (batch, reasons) = parse_columns(&text, &target).expect("parse");
        assert_eq!(
            reasons,
            vec![
                None,
                Some("column `n`: cannot parse `x` as Int64".to_string()),
                Some("column `v`: cannot parse `fast` as Float64".to_string()),
                None,
            ]
        );
        let n = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            vec![Some(1), None, None, Some(4)]
        );
        let v = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("f64");
        assert_eq!(v.value(3), -0.25);
    }

    #[test]
    fn times_no_sink_could_print_are_rejected_at_the_source() {
        // Issue 12: nanoseconds read as ms (year 53 million) failed the CSV sink on every
        // restart; the smallest i64 wrapped window bounds.
        let text = RecordBatch::try_from_iter([(
            "t",
            Arc::new(StringArray::from(vec![
                "1700000000000",
                "1700000000000000000",
                "-9223372036854775808",
                "9999-12-31T23:59:59.999Z",
            ])) as ArrayRef,
        )])
        .expect("text batch");
        let target = Arc::new(Schema::new(vec![Field::new(
            "t",
            crate::spec::timestamp_type(),
            true,
        )]));
        let (_, reasons) = parse_columns(&text, &target).expect("parse");
        let range = "0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z";
        assert_eq!(
            reasons,
            vec![
                None,
                Some(format!(
                    "column `t`: `1700000000000000000` is outside the valid time range {range}"
                )),
                Some(format!(
                    "column `t`: `-9223372036854775808` is outside the valid time range {range}"
                )),
                None,
            ]
        );
        let decoded = RecordBatch::try_from_iter([(
            "t",
            Arc::new(TimestampMillisecondArray::from(vec![5, i64::MAX])) as ArrayRef,
        )])
        .expect("decoded");
        assert_eq!(
            check_time_ranges(&decoded),
            vec![
                None,
                Some(format!(
                    "column `t`: `9223372036854775807` is outside the valid time range {range}"
                ))
            ]
        );
    }

    #[test]
    fn timestamps_parse_from_rfc3339_and_integer_millis() {
        // 2026-01-01T00:00:00Z is 1 767 225 600 000 ms; +01:00 is an hour earlier in UTC.
        assert_eq!(
            parse_timestamp_ms("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            parse_timestamp_ms("2026-01-01T00:00:00.250+01:00"),
            Some(1_767_222_000_250)
        );
        assert_eq!(parse_timestamp_ms("1767225600123"), Some(1_767_225_600_123));
        assert_eq!(parse_timestamp_ms("soon"), None);
    }
}

//! Event time: which column holds it, how far it may be out of order, how it is normalised, and
//! which times are valid.
//!
//! Sources may give event time as integer epoch milliseconds, an Arrow timestamp of any unit,
//! or text (RFC 3339, or integer milliseconds). On ingestion the runtime turns the column into
//! `Timestamp(Millisecond, "UTC")`; rows whose event time is null, unparsable or outside
//! [`EVENT_TIME_MIN`]`..=`[`EVENT_TIME_MAX`] become dead letters, so every row past ingestion
//! has a valid event time, and every window bound computed from one fits an `i64` and prints.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, TimestampMillisecondArray,
};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};
use crate::source::{DeadLetter, Location, Locations, RawRows};

/// The earliest valid event time: `0000-01-01T00:00:00Z`, in ms since the epoch.
///
/// Valid event times are those RFC 3339 can write (four-digit years). Every sink can print
/// them, and window arithmetic on them cannot overflow: window sizes are limited to
/// [`EVENT_TIME_SPAN`] ([`crate::window::WindowSpec::validate`]), so every window bound stays
/// within a few times this range, far inside `i64` and inside what chrono can print.
pub const EVENT_TIME_MIN: i64 = -62_167_219_200_000;

/// The latest valid event time: `9999-12-31T23:59:59.999Z`, in ms since the epoch.
pub const EVENT_TIME_MAX: i64 = 253_402_300_799_999;

/// The length of the valid range, in ms: the longest window or gap there can be.
pub const EVENT_TIME_SPAN: i64 = EVENT_TIME_MAX - EVENT_TIME_MIN;

/// The valid range as people read it, for messages.
pub const EVENT_TIME_RANGE: &str = "0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z";

/// Whether `ms` (since the epoch) is a valid event time.
pub fn in_range(ms: i64) -> bool {
    (EVENT_TIME_MIN..=EVENT_TIME_MAX).contains(&ms)
}

/// Milliseconds since the epoch from text: integer milliseconds, or RFC 3339 (a date alone,
/// or no offset, means UTC). `None` if it is neither; the range is not checked.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let utc: Tz = "+00:00".parse().ok()?;
    // Through chrono rather than nanoseconds, which would stop at the year 2262.
    string_to_datetime(&utc, text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The normalised event-time type.
pub fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Where event time comes from and how watermarks are derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTimeSpec {
    /// The event-time column.
    pub column: String,
    /// Bounded out-of-orderness: a partition's watermark is its maximum event time minus this.
    pub watermark_delay: i64,
    /// A partition with no new rows for this long (wall clock, ms) stops holding the
    /// watermark back until it produces again. `None` waits forever.
    pub idle_timeout: Option<i64>,
}

impl EventTimeSpec {
    /// Event time in `column`, watermarks `watermark_delay` ms behind, no idle timeout.
    pub fn new(column: impl Into<String>, watermark_delay: i64) -> Self {
        EventTimeSpec {
            column: column.into(),
            watermark_delay,
            idle_timeout: None,
        }
    }

    /// Sets the idle timeout in ms.
    pub fn with_idle_timeout(mut self, idle_timeout: i64) -> Self {
        self.idle_timeout = Some(idle_timeout);
        self
    }

    /// The source schema with the event-time column normalised; fails if the column is
    /// missing or of a type that cannot hold a time.
    pub fn normalized_schema(&self, schema: &Schema) -> Result<SchemaRef> {
        let index = schema.index_of(&self.column).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::config(
                "event_time.column",
                format!(
                    "unknown column `{}` (available: {})",
                    self.column,
                    names.join(", ")
                ),
            )
        })?;
        let data_type = schema.field(index).data_type();
        use DataType::*;
        let ok = matches!(
            data_type,
            Int8 | Int16
                | Int32
                | Int64
                | UInt8
                | UInt16
                | UInt32
                | UInt64
                | Timestamp(_, _)
                | Date32
                | Date64
                | Utf8
                | LargeUtf8
                | Utf8View
        );
        if !ok {
            return Err(Error::config(
                "event_time.column",
                format!(
                    "`{}` is {data_type}; event time must be integer ms, a timestamp or an RFC 3339 string",
                    self.column
                ),
            ));
        }
        if self.watermark_delay < 0 {
            return Err(Error::config(
                "event_time.watermark_delay",
                "must not be negative",
            ));
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[index] = Field::new(&self.column, event_time_type(), false);
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }
}

/// A batch with normalised event time, the rows that were rejected, and its largest event time.
#[derive(Debug)]
pub struct Normalized {
    /// Rows with a valid event time.
    pub batch: RecordBatch,
    /// Rows whose event time was null, unparsable or out of range.
    pub rejected: Vec<DeadLetter>,
    /// The largest event time in `batch` (`None` if it is empty).
    pub max_ts: Option<i64>,
}

/// Where the rows of a batch came from, to name rejected ones.
#[derive(Debug, Clone, Copy)]
pub struct RowOrigin<'a> {
    /// The partition (usually a file path).
    pub source: &'a str,
    /// Per row: its line (text formats), offset (Kafka) or row number (others).
    pub locations: Option<&'a Locations>,
    /// Per row: its text as read; a rejected row's dead letter carries it as is.
    pub raw: Option<&'a RawRows>,
}

/// Normalises the event-time column of `batch` to the `schema` made by
/// [`EventTimeSpec::normalized_schema`]; rows without a valid event time are rejected, named
/// by `origin`.
pub fn normalize(
    spec: &EventTimeSpec,
    schema: &SchemaRef,
    batch: RecordBatch,
    origin: RowOrigin<'_>,
) -> Result<Normalized> {
    let index = schema
        .index_of(&spec.column)
        .map_err(|_| Error::Internal("event-time column vanished".into()))?;
    let raw = batch.column(index).clone();
    let normalized = to_event_time(&raw).map_err(Error::arrow(format!(
        "parsing event time `{}`",
        spec.column
    )))?;
    let ts = normalized.values();
    let bad = |r: usize| normalized.is_null(r) || !in_range(ts[r]);
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(normalized.clone());
    let mut rejected = Vec::new();
    let batch = if !(0..batch.num_rows()).any(bad) {
        RecordBatch::try_new(schema.clone(), columns)
            .map_err(Error::arrow("normalising event time"))?
    } else {
        let valid: BooleanArray = (0..batch.num_rows()).map(|r| Some(!bad(r))).collect();
        rejected = reject(&batch, &valid, &raw, &normalized, &spec.column, origin)?;
        let loose = RecordBatch::try_new(loosen(schema, index), columns)
            .map_err(Error::arrow("normalising event time"))?;
        let kept = filter_record_batch(&loose, &valid)
            .map_err(Error::arrow("dropping rows without event time"))?;
        // The kept rows have no null event time, so the non-nullable schema holds again.
        RecordBatch::try_new(schema.clone(), kept.columns().to_vec())
            .map_err(Error::arrow("normalising event time"))?
    };
    let ts = event_time_values(batch.column(index))?;
    let max_ts = ts.iter().copied().max();
    Ok(Normalized {
        batch,
        rejected,
        max_ts,
    })
}

/// The values of a normalised event-time column.
pub fn event_time_values(column: &ArrayRef) -> Result<&[i64]> {
    column
        .as_primitive_opt::<TimestampMillisecondType>()
        .map(|a| a.values().as_ref())
        .ok_or_else(|| {
            Error::Internal(format!(
                "event time is {}, not normalised",
                column.data_type()
            ))
        })
}

/// The column as UTC milliseconds, null where a value is missing or does not parse.
fn to_event_time(
    raw: &ArrayRef,
) -> std::result::Result<TimestampMillisecondArray, arrow::error::ArrowError> {
    let millis = match raw.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            // Text holds RFC 3339 or integer ms, as a declared `timestamp` column does.
            let text = cast(raw, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .map(|v| v.and_then(parse_timestamp_ms))
                .collect::<TimestampMillisecondArray>()
        }
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            cast(raw, &event_time_type())?
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        }
        _ => {
            let ms = cast(raw, &DataType::Int64)?;
            cast(&ms, &event_time_type())?
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        }
    };
    Ok(millis.with_timezone("UTC"))
}

fn loosen(schema: &SchemaRef, index: usize) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[index] = fields[index].clone().with_nullable(true);
    Arc::new(Schema::new(fields))
}

fn reject(
    batch: &RecordBatch,
    valid: &BooleanArray,
    raw: &ArrayRef,
    normalized: &TimestampMillisecondArray,
    column: &str,
    origin: RowOrigin<'_>,
) -> Result<Vec<DeadLetter>> {
    let options = FormatOptions::default().with_null("null");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::arrow("formatting a dead letter"))?;
    let raw_formatter = ArrayFormatter::try_new(raw.as_ref(), &options)
        .map_err(Error::arrow("formatting a dead letter"))?;
    let schema = batch.schema();
    let mut out = Vec::new();
    for row in (0..batch.num_rows()).filter(|&r| !valid.value(r)) {
        let reason = if raw.is_null(row) {
            format!("column `{column}`: event time is missing")
        } else if normalized.is_null(row) {
            format!(
                "column `{column}`: cannot parse `{}` as an event time",
                raw_formatter.value(row)
            )
        } else {
            let (value, ms) = (raw_formatter.value(row).to_string(), normalized.value(row));
            let ms = if value == ms.to_string() {
                String::new()
            } else {
                format!(" ({ms} ms)")
            };
            format!(
                "column `{column}`: event time `{value}`{ms} is outside the valid range \
                 {EVENT_TIME_RANGE}"
            )
        };
        let text = match origin.raw.and_then(|r| r.row(row)) {
            Some(line) => line,
            // No text as read (Parquet, generators): the row rebuilt from its values.
            None => schema
                .fields()
                .iter()
                .zip(&formatters)
                .map(|(f, fmt)| format!("{}={}", f.name(), fmt.value(row)))
                .collect::<Vec<_>>()
                .join(","),
        };
        let location = origin
            .locations
            .and_then(|l| l.get(row))
            .unwrap_or(Location::Row(row as u64));
        out.push(DeadLetter {
            source: origin.source.to_string(),
            location,
            reason,
            raw: text,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampNanosecondArray, TimestampSecondArray};

    fn spec() -> EventTimeSpec {
        EventTimeSpec::new("ts", 1_000)
    }

    /// Rows located by row number (as Parquet gives them), or not located.
    fn run(ts: ArrayRef, rows: Option<&[u64]>) -> Normalized {
        normalize_located(ts, rows.map(|r| Locations::rows(r.to_vec())), None)
    }

    /// Rows located by line, with their text (as a text source gives them).
    fn run_from(ts: ArrayRef, lines: Option<&[u64]>, raw: Option<&RawRows>) -> Normalized {
        normalize_located(ts, lines.map(|l| Locations::lines(l.to_vec())), raw)
    }

    fn normalize_located(
        ts: ArrayRef,
        locations: Option<Locations>,
        raw: Option<&RawRows>,
    ) -> Normalized {
        let locations = locations.as_ref();
        let v = Arc::new(Int64Array::from_iter_values(0..ts.len() as i64)) as ArrayRef;
        let batch = RecordBatch::try_from_iter(vec![("ts", ts), ("v", v)]).expect("batch");
        let schema = spec().normalized_schema(&batch.schema()).expect("schema");
        let origin = RowOrigin {
            source: "f.csv",
            locations,
            raw,
        };
        normalize(&spec(), &schema, batch, origin).expect("normalize")
    }

    #[test]
    fn integers_seconds_and_rfc3339_become_milliseconds() {
        let n = run(Arc::new(Int64Array::from(vec![1_500, 2_000])), None);
        assert_eq!(
            event_time_values(n.batch.column(0)).expect("ts"),
            &[1_500, 2_000]
        );
        assert_eq!(n.max_ts, Some(2_000));
        let n = run(Arc::new(TimestampSecondArray::from(vec![2])), None);
        assert_eq!(event_time_values(n.batch.column(0)).expect("ts"), &[2_000]);
        let n = run(
            Arc::new(StringArray::from(vec![
                "1970-01-01T00:00:01.250Z",
                "1970-01-01T01:00:00+01:00",
            ])),
            None,
        );
        assert_eq!(
            event_time_values(n.batch.column(0)).expect("ts"),
            &[1_250, 0]
        );
    }

    #[test]
    fn bad_and_missing_times_become_dead_letters_with_their_lines() {
        let ts = Arc::new(StringArray::from(vec![
            Some("1970-01-01T00:00:01Z"),
            Some("yesterday"),
            None,
        ]));
        // Row numbers (as a Parquet source gives them) locate by row.
        let n = run(ts.clone(), Some(&[2, 3, 4]));
        assert_eq!(n.rejected[0].location, Location::Row(3));
        let text = "1970-01-01T00:00:01Z,0\nyesterday,1\n,2\n"
            .as_bytes()
            .to_vec();
        let raw = RawRows::new(text, vec![0..22, 23..34, 35..37]);
        let n = run_from(ts, Some(&[2, 3, 4]), Some(&raw));
        assert_eq!(n.batch.num_rows(), 1);
        assert_eq!(n.rejected.len(), 2);
        assert_eq!(n.rejected[0].location, Location::Line(3));
        assert!(
            n.rejected[0].reason.contains("cannot parse `yesterday`"),
            "{}",
            n.rejected[0].reason
        );
        assert_eq!(n.rejected[0].raw, "yesterday,1", "the line as read");
        assert_eq!(n.rejected[1].reason, "column `ts`: event time is missing");
        assert!(!n.batch.schema().field(0).is_nullable());
    }

    #[test]
    fn text_holds_integer_milliseconds_or_rfc3339_in_any_year_of_the_range() {
        let ts = Arc::new(StringArray::from(vec![
            "1767225600123",
            " 2026-01-01T00:00:00Z ",
            "9999-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
            "2300-01-01",
        ]));
        let n = run(ts, None);
        assert!(n.rejected.is_empty(), "{:?}", n.rejected);
        // 2300-01-01 is 120 530 days after 1970-01-01: 330 years of 365 days and 80 leap
        // days (every fourth year from 1972 to 2296 is 82, less 2100 and 2200).
        assert_eq!(
            event_time_values(n.batch.column(0)).expect("ts"),
            &[
                1_767_225_600_123,
                1_767_225_600_000,
                EVENT_TIME_MAX,
                EVENT_TIME_MIN,
                120_530 * 86_400_000
            ]
        );
    }

    #[test]
    fn times_outside_the_valid_range_become_dead_letters() {
        // Nanoseconds given as ms, the smallest i64, and one ms past either end of the range.
        let values = vec![
            1_700_000_000_000_000_000,
            i64::MIN,
            EVENT_TIME_MAX + 1,
            EVENT_TIME_MIN - 1,
            EVENT_TIME_MAX,
            5,
        ];
        let n = run(Arc::new(Int64Array::from(values)), None);
        assert_eq!(
            event_time_values(n.batch.column(0)).expect("ts"),
            &[EVENT_TIME_MAX, 5]
        );
        assert_eq!(n.max_ts, Some(EVENT_TIME_MAX));
        let rows: Vec<Location> = n.rejected.iter().map(|d| d.location).collect();
        assert_eq!(rows, (0..4).map(Location::Row).collect::<Vec<_>>());
        assert_eq!(
            n.rejected[1].reason,
            "column `ts`: event time `-9223372036854775808` is outside the valid range \
             0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z"
        );
        // An Arrow timestamp in ns that is in range as ns is out of range as ms only when
        // the source says ms: here it says ns, so the time is fine.
        let ns = TimestampNanosecondArray::from(vec![1_700_000_000_000_000_000]);
        let n = run(Arc::new(ns), None);
        assert_eq!(
            event_time_values(n.batch.column(0)).expect("ts"),
            &[1_700_000_000_000]
        );
        // RFC 3339 text past the year 9999 does not parse at all.
        let n = run(
            Arc::new(StringArray::from(vec!["10000-01-01T00:00:00Z"])),
            None,
        );
        assert!(
            n.rejected[0].reason.contains("cannot parse"),
            "{:?}",
            n.rejected
        );
    }

    #[test]
    fn the_range_constants_are_the_rfc3339_years_0000_to_9999() {
        // Independently: 719 528 days from 0000-01-01 to 1970-01-01 (proleptic Gregorian),
        // and 2 932 897 days from 1970-01-01 to 10000-01-01.
        assert_eq!(EVENT_TIME_MIN, -719_528 * 86_400_000);
        assert_eq!(EVENT_TIME_MAX, 2_932_897 * 86_400_000 - 1);
        assert_eq!(
            parse_timestamp_ms("0000-01-01T00:00:00Z"),
            Some(EVENT_TIME_MIN)
        );
        assert_eq!(
            parse_timestamp_ms("9999-12-31T23:59:59.999Z"),
            Some(EVENT_TIME_MAX)
        );
    }

    #[test]
    fn a_missing_or_unsuitable_column_is_a_config_error() {
        let schema = Schema::new(vec![Field::new("t", DataType::Float64, true)]);
        let err = EventTimeSpec::new("ts", 0)
            .normalized_schema(&schema)
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "event_time.column: unknown column `ts` (available: t)"
        );
        let err = EventTimeSpec::new("t", 0)
            .normalized_schema(&schema)
            .expect_err("float");
        assert!(err.to_string().contains("must be integer ms"), "{err}");
    }
}

//! Event time: which column holds it, how far it may be out of order, and how it is normalised.
//!
//! Sources may give event time as integer epoch milliseconds, an Arrow timestamp of any unit,
//! or an RFC 3339 string. On ingestion the runtime turns the column into
//! `Timestamp(Millisecond, "UTC")`; rows whose event time is null or unparsable become dead
//! letters, so every row past ingestion has a valid event time.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch, is_not_null};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};
use crate::source::{DeadLetter, Location};

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
    /// Rows whose event time was null or unparsable.
    pub rejected: Vec<DeadLetter>,
    /// The largest event time in `batch` (`None` if it is empty).
    pub max_ts: Option<i64>,
}

/// Normalises the event-time column of `batch` to the `schema` made by
/// [`EventTimeSpec::normalized_schema`]. `source` and `locations` name rejected rows.
pub fn normalize(
    spec: &EventTimeSpec,
    schema: &SchemaRef,
    batch: RecordBatch,
    source: &str,
    locations: Option<&[u64]>,
) -> Result<Normalized> {
    let index = schema
        .index_of(&spec.column)
        .map_err(|_| Error::Internal("event-time column vanished".into()))?;
    let raw = batch.column(index).clone();
    let normalized = to_event_time(&raw).map_err(Error::arrow(format!(
        "parsing event time `{}`",
        spec.column
    )))?;
    let mut columns = batch.columns().to_vec();
    columns[index] = normalized.clone();
    let mut rejected = Vec::new();
    let batch = if normalized.null_count() == 0 {
        RecordBatch::try_new(schema.clone(), columns)
            .map_err(Error::arrow("normalising event time"))?
    } else {
        let valid = is_not_null(&normalized).map_err(Error::arrow("checking event time"))?;
        rejected = reject(&batch, &valid, &raw, &spec.column, source, locations)?;
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

fn to_event_time(raw: &ArrayRef) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
    let target = event_time_type();
    match raw.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => cast(raw, &target),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            // `safe` casting turns unparsable strings into nulls, which become dead letters.
            cast(raw, &target)
        }
        _ => {
            let ms = cast(raw, &DataType::Int64)?;
            cast(&ms, &target)
        }
    }
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
    column: &str,
    source: &str,
    locations: Option<&[u64]>,
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
        } else {
            format!(
                "column `{column}`: cannot parse `{}` as an event time",
                raw_formatter.value(row)
            )
        };
        let text: Vec<String> = schema
            .fields()
            .iter()
            .zip(&formatters)
            .map(|(f, fmt)| format!("{}={}", f.name(), fmt.value(row)))
            .collect();
        let location = match locations.and_then(|l| l.get(row)) {
            Some(&line) => Location::Line(line),
            None => Location::Row(row as u64),
        };
        out.push(DeadLetter {
            source: source.to_string(),
            location,
            reason,
            raw: text.join(","),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampSecondArray};

    fn spec() -> EventTimeSpec {
        EventTimeSpec::new("ts", 1_000)
    }

    fn run(ts: ArrayRef, locations: Option<&[u64]>) -> Normalized {
        let v = Arc::new(Int64Array::from_iter_values(0..ts.len() as i64)) as ArrayRef;
        let batch = RecordBatch::try_from_iter(vec![("ts", ts), ("v", v)]).expect("batch");
        let schema = spec().normalized_schema(&batch.schema()).expect("schema");
        normalize(&spec(), &schema, batch, "f.csv", locations).expect("normalize")
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
        let n = run(ts, Some(&[2, 3, 4]));
        assert_eq!(n.batch.num_rows(), 1);
        assert_eq!(n.rejected.len(), 2);
        assert_eq!(n.rejected[0].location, Location::Line(3));
        assert!(
            n.rejected[0].reason.contains("cannot parse `yesterday`"),
            "{}",
            n.rejected[0].reason
        );
        assert_eq!(n.rejected[0].raw, "ts=yesterday,v=1");
        assert_eq!(n.rejected[1].reason, "column `ts`: event time is missing");
        assert!(!n.batch.schema().field(0).is_nullable());
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

//! Late rows of a job with a stream join, in one schema for both streams: the stream's name,
//! the row's event time and the row itself as a JSON object.
//!
//! The two streams' rows have different columns, and a late sink has one schema; JSON keeps
//! every value readable without a union of both sides' columns.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::LineDelimitedWriter;

use crate::error::{Error, Result};
use crate::event_time::{event_time_type, event_time_values};

/// The schema of late rows in a job with a stream join.
pub fn late_row_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("stream", DataType::Utf8, false),
        Field::new("event_time", event_time_type(), false),
        Field::new("row", DataType::Utf8, false),
    ]))
}

/// `batch`'s rows, late in `stream`, as [`late_row_schema`] rows; `time` is the index of its
/// event-time column.
pub fn late_rows(stream: &str, batch: &RecordBatch, time: usize) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let ts = event_time_values(batch.column(time))?.to_vec();
    let mut text = Vec::new();
    {
        let mut writer = LineDelimitedWriter::new(&mut text);
        writer
            .write(batch)
            .map_err(Error::arrow("writing late rows as JSON"))?;
        writer
            .finish()
            .map_err(Error::arrow("writing late rows as JSON"))?;
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != rows {
        return Err(Error::Internal(format!(
            "{rows} late rows became {} JSON lines",
            lines.len()
        )));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![stream; rows])),
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(StringArray::from(lines)),
    ];
    RecordBatch::try_new(late_row_schema(), columns).map_err(Error::arrow("packing late rows"))
}

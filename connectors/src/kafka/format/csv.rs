//! `format = "csv"`: one CSV record per message, no header, the columns declared in field
//! order; decoded by arrow-csv as text, then typed as CSV files are (`file/convert.rs`), so that
//! a bad value rejects its own message with the column named.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Decoder;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use sluice_engine::{Error, Result};

use super::runs::MessageFormat;
use super::{CsvOptions, EMPTY_PAYLOAD, payload_text};
use crate::file::{Order, parse_columns, with_declared};
use crate::spec::ColumnSpec;

/// The declared columns, which a CSV message cannot name itself.
pub(super) fn fields(columns: &[ColumnSpec]) -> Result<Vec<Field>> {
    if columns.is_empty() {
        return Err(Error::config(
            "source.columns",
            "format \"csv\" needs the columns declared, in the order of the fields of a message: \
             columns = [{ name = \"ts\", type = \"timestamp\" }, ...]",
        ));
    }
    let declared = with_declared(&Schema::empty(), columns, Order::DeclaredFirst, "")?;
    Ok(declared
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect())
}

/// Decodes CSV messages as text, then types them.
#[derive(Debug)]
pub(super) struct CsvMessages {
    /// The payload's columns, all as `Utf8`.
    text_schema: SchemaRef,
    schema: SchemaRef,
    delimiter: u8,
}

impl CsvMessages {
    /// Fails naming `source.format.delimiter` when it cannot separate fields.
    pub(super) fn new(fields: &[Field], options: &CsvOptions) -> Result<Self> {
        let delimiter = options.delimiter;
        let delimiter = match u8::try_from(delimiter) {
            Ok(byte) if byte.is_ascii() && !matches!(byte, b'"' | b'\n' | b'\r') => byte,
            _ => {
                return Err(Error::config(
                    "source.format.delimiter",
                    format!(
                        "`{}` cannot separate fields: use one ASCII character other than a \
                         quote or a line end",
                        delimiter.escape_default()
                    ),
                ));
            }
        };
        let text_fields: Vec<Field> = fields
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect();
        Ok(CsvMessages {
            text_schema: Arc::new(Schema::new(text_fields)),
            schema: Arc::new(Schema::new(fields.to_vec())),
            delimiter,
        })
    }
}

impl MessageFormat for CsvMessages {
    type Decoder = Decoder;

    fn decoder(&self, messages: usize) -> Result<Decoder> {
        // One row more than messages, so that a message holding a second record is seen to.
        // Each message is fed with one `\n` after it: a CR inside a message is text.
        Ok(ReaderBuilder::new(self.text_schema.clone())
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_terminator(b'\n')
            .with_batch_size(messages + 1)
            .build_decoder())
    }

    fn push(&self, decoder: &mut Decoder, payload: &[u8]) -> Result<(), String> {
        let text = payload_text(payload)?;
        // Producers that write lines end each message with a line end; it is not a field.
        let record = text
            .strip_suffix('\n')
            .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
        let before = decoder.capacity();
        for bytes in [record.as_bytes(), b"\n"] {
            let used = decoder.decode(bytes).map_err(|e| self.reason(&e))?;
            if used < bytes.len() {
                return Err("expected one CSV record per message, found more".to_string());
            }
        }
        match before - decoder.capacity() {
            1 => Ok(()),
            0 if record.trim().is_empty() => Err(EMPTY_PAYLOAD.to_string()),
            0 => Err("a quoted field does not close before the end of the message".to_string()),
            n => Err(format!(
                "expected one CSV record per message, found {n} (a line break outside quotes)"
            )),
        }
    }

    fn flush(&self, mut decoder: Decoder) -> Result<RecordBatch, ArrowError> {
        Ok(decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.text_schema.clone())))
    }

    fn decoded_schema(&self) -> SchemaRef {
        self.text_schema.clone()
    }

    /// Rewrites arrow-csv's `incorrect number of fields for line 1, expected 3 got 2`, whose
    /// line is the decoder's and not the message's.
    fn reason(&self, error: &ArrowError) -> String {
        let text = match error {
            ArrowError::CsvError(text) | ArrowError::ParseError(text) => text.clone(),
            other => other.to_string(),
        };
        let counts = text
            .split_once(", expected ")
            .and_then(|(_, counts)| counts.split_once(" got "));
        match counts {
            Some((expected, found)) => format!("expected {expected} fields, found {found}"),
            None => format!("invalid CSV: {text}"),
        }
    }

    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        parse_columns(&batch, &self.schema)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};

    use super::super::testing::{decode_in_polls, messages};
    use super::super::{FormatSpec, PayloadDecoder};
    use super::*;
    use crate::spec::ColumnType;

    fn sensors() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("ts", ColumnType::Timestamp),
            ColumnSpec::new("segment", ColumnType::Int64),
            ColumnSpec::new("speed", ColumnType::Float64),
            ColumnSpec::new("label", ColumnType::String),
        ]
    }

    fn csv(delimiter: char) -> FormatSpec {
        FormatSpec::Csv(CsvOptions { delimiter })
    }

    const MIXED: [Option<&[u8]>; 14] = [
        Some(b"2026-01-01T00:00:00Z,1,50.5,a"),
        Some(b"1767225601000,2,fast,b"),
        Some(b"2026-01-01T00:00:02Z,3"),
        Some(b"2026-01-01T00:00:03Z,4,61,\"c,d\"\n"),
        Some(b"2026-01-01T00:00:04Z,5,1,\"open"),
        Some(b"2026-01-01T00:00:05Z,6,1,x\n2026-01-01T00:00:06Z,7,1,y"),
        Some(b""),
        Some(b"2026-01-01T00:00:07Z,8,,\"multi\nline\"\r\n"),
        Some(b"2026-01-01T00:00:08Z,9,1,2,3"),
        None,
        Some(b"1767225610000,10,1.25,\"say \"\"hi\"\"\""),
        Some(b"2026-01-01T00:00:11Z,11,1,caf\xe9"),
        Some(b"soon,12,1,z"),
        Some(b"1767225613000,13,-2,\xc3\xa9\r"),
    ];

    #[test]
    fn good_messages_decode_and_each_bad_one_is_one_dead_letter() {
        let decoder =
            PayloadDecoder::new(&csv(','), &sensors(), &[], &[], Path::new(".")).expect("decoder");
        let records = messages(&MIXED);
        for poll in [MIXED.len(), 1, 2, 4] {
            let read = decode_in_polls(&decoder, &records, poll);
            assert_eq!(read.offsets, [100, 103, 107, 110, 113], "poll {poll}");
            let batch = &read.batch;
            let ts = batch.column(0).as_primitive::<TimestampMillisecondType>();
            // 2026-01-01T00:00:00Z is 1 767 225 600 000 ms.
            let start = 1_767_225_600_000;
            assert_eq!(
                ts.values().to_vec(),
                [
                    start,
                    start + 3_000,
                    start + 7_000,
                    start + 10_000,
                    start + 13_000
                ]
            );
            let segments = batch.column(1).as_primitive::<Int64Type>();
            assert_eq!(segments.values().to_vec(), [1, 4, 8, 10, 13]);
            let speeds = batch.column(2).as_primitive::<Float64Type>();
            assert_eq!(
                speeds.iter().collect::<Vec<_>>(),
                [Some(50.5), Some(61.0), None, Some(1.25), Some(-2.0)],
                "an empty field is null"
            );
            let labels: Vec<Option<&str>> = batch.column(3).as_string::<i32>().iter().collect();
            assert_eq!(
                labels,
                [
                    Some("a"),
                    Some("c,d"),
                    Some("multi\nline"),
                    Some("say \"hi\""),
                    Some("é\r")
                ],
                "a line end ends a message once; a CR before the end stays text"
            );
            let reasons = read.reasons();
            let want: Vec<(u64, &str)> = vec![
                (101, "column `speed`: cannot parse `fast` as Float64"),
                (102, "expected 4 fields, found 2"),
                (
                    104,
                    "a quoted field does not close before the end of the message",
                ),
                (
                    105,
                    "expected one CSV record per message, found 2 (a line break outside quotes)",
                ),
                (106, "the payload is empty"),
                (108, "expected 4 fields, found 5"),
                (109, "the message has no payload (a tombstone)"),
                (
                    111,
                    "not valid UTF-8: byte 30 of the payload (after `2026-01-01T00:00:11Z,11,1,caf`) \
                     (raw: the payload as base64, it is not UTF-8)",
                ),
                (
                    112,
                    "column `ts`: cannot parse `soon` as a timestamp (RFC 3339 or integer ms)",
                ),
            ];
            assert_eq!(reasons, want, "poll {poll}");
            assert_eq!(read.dead_letters[2].raw, "2026-01-01T00:00:04Z,5,1,\"open");
        }
    }

    #[test]
    fn another_delimiter_and_bad_settings() {
        let columns = [
            ColumnSpec::new("a", ColumnType::Int64),
            ColumnSpec::new("b", ColumnType::String),
        ];
        let decoder =
            PayloadDecoder::new(&csv(';'), &columns, &[], &[], Path::new(".")).expect("decoder");
        let records = messages(&[Some(b"1;x,y"), Some(b"2,z")]);
        let read = decode_in_polls(&decoder, &records, 2);
        assert_eq!(read.offsets, [100]);
        assert_eq!(read.batch.column(1).as_string::<i32>().value(0), "x,y");
        assert_eq!(read.reasons(), [(101, "expected 2 fields, found 1")]);

        let err =
            PayloadDecoder::new(&csv(','), &[], &[], &[], Path::new(".")).expect_err("no columns");
        assert!(
            err.to_string()
                .starts_with("source.columns: format \"csv\" needs the columns declared"),
            "{err}"
        );
        for bad in ['"', '\n', 'é'] {
            let err = PayloadDecoder::new(&csv(bad), &columns, &[], &[], Path::new("."))
                .expect_err("bad delimiter");
            assert!(
                err.to_string().starts_with("source.format.delimiter: "),
                "{err}"
            );
        }
        assert!(!PayloadDecoder::needs_sample(&csv(','), &columns));
    }
}

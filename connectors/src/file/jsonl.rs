//! JSON-lines files (one object per line): schema inference and decoding with dead letters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use sluice_engine::source::{Source, SourceContext, SourcePartition};
use sluice_engine::{Error, Result};

use super::convert::check_time_ranges;
use super::infer::json_columns;
use super::records::RecordReader;
use super::schema::{Order, normalise, with_declared};
use super::text::{TextFormat, TextPartition};
use super::{INFER_RECORDS, paths};
use crate::spec::{ColumnSpec, FileSourceSpec};

/// A source over JSON-lines files; every file is one partition.
#[derive(Debug)]
pub struct JsonlSource {
    name: String,
    files: Vec<PathBuf>,
    schema: SchemaRef,
    batch_rows: Option<usize>,
}

impl JsonlSource {
    /// Resolves `spec.path` against `base_dir` and builds the source.
    pub fn from_spec(spec: &FileSourceSpec, base_dir: &Path) -> Result<Self> {
        let files = paths::resolve(base_dir, &spec.path, &["jsonl", "ndjson", "json"])?;
        Self::new(spec.path.clone(), files, &spec.columns, spec.batch_rows)
    }

    /// A source named `name` over `files`: the declared `columns` first, then the keys found in
    /// the first records of the first file, with inferred types. Keys not in the schema are
    /// ignored; missing keys read as null.
    pub fn new(
        name: impl Into<String>,
        files: Vec<PathBuf>,
        columns: &[ColumnSpec],
        batch_rows: Option<usize>,
    ) -> Result<Self> {
        let first = files
            .first()
            .ok_or_else(|| Error::config("source.path", "names no files"))?;
        let inferred = infer_schema(first)?;
        if inferred.fields().is_empty() && columns.is_empty() {
            let message = format!(
                "cannot infer the columns of {}: no JSON object in its first lines",
                first.display()
            );
            return Err(Error::config("source.path", message));
        }
        let schema = with_declared(
            &normalise(&inferred),
            columns,
            Order::DeclaredFirst,
            first.display(),
        )?;
        Ok(JsonlSource {
            name: name.into(),
            files,
            schema: Arc::new(schema),
            batch_rows,
        })
    }
}

impl Source for JsonlSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(self: Box<Self>, ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        let batch_rows = self.batch_rows.unwrap_or(ctx.batch_rows);
        let partitions = self
            .files
            .into_iter()
            .map(|file| {
                let format = JsonFormat {
                    schema: self.schema.clone(),
                };
                Box::new(TextPartition::new(file, format, batch_rows)) as Box<dyn SourcePartition>
            })
            .collect();
        Ok(partitions)
    }
}

/// Infers the columns of the first records of `file` by the rule of [`super::infer`], leaving
/// out lines that are not JSON objects; never fails on what the lines hold.
fn infer_schema(file: &Path) -> Result<Schema> {
    let mut reader = RecordReader::open(file, false)?;
    let Some(chunk) = reader.next_chunk(INFER_RECORDS)? else {
        return Ok(Schema::empty());
    };
    let lines: Vec<&[u8]> = (0..chunk.records.len())
        .map(|i| chunk.record_bytes(i))
        .collect();
    Ok(json_columns(&lines))
}

/// Decodes JSON lines straight into the source's schema.
struct JsonFormat {
    schema: SchemaRef,
}

impl TextFormat for JsonFormat {
    fn decode(&self, bytes: &[u8], rows: usize) -> Result<RecordBatch, ArrowError> {
        // One more than expected, so that a line holding two objects shows up as a wrong count.
        // A text column reads numbers and booleans as their text: inference makes a key text
        // when its values disagree, and then none of them should be lost.
        let mut decoder = ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows + 1)
            .with_coerce_primitive(true)
            .build_decoder()?;
        let mut offset = 0;
        while offset < bytes.len() {
            let used = decoder.decode(&bytes[offset..])?;
            if used == 0 {
                break;
            }
            offset += used;
        }
        if offset < bytes.len() {
            return Err(ArrowError::JsonError(format!(
                "more than {rows} records in {rows} lines"
            )));
        }
        Ok(decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())))
    }

    fn decoded_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn reason(&self, _raw: &str, error: &ArrowError) -> String {
        json_reason(error)
    }

    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        let reasons = check_time_ranges(&batch);
        Ok((batch, reasons))
    }

    fn quoted_newlines(&self) -> bool {
        false
    }

    fn has_header(&self) -> bool {
        false
    }
}

/// Rewrites Arrow's JSON error (`Json error: whilst decoding field 'a': failed to parse "x" as
/// Int64`) as a reason naming the column (`column `a`: cannot parse `x` as Int64`).
pub(crate) fn json_reason(error: &ArrowError) -> String {
    let text = match error {
        ArrowError::JsonError(text) | ArrowError::ParseError(text) => text.clone(),
        other => other.to_string(),
    };
    if text.starts_with("expected one record, found") {
        return text.replace("record", "JSON object per line");
    }
    let mut path = Vec::new();
    let mut rest = text.as_str();
    while let Some(after) = rest.strip_prefix("whilst decoding field '") {
        let Some((field, tail)) = after.split_once("': ") else {
            break;
        };
        path.push(field);
        rest = tail;
    }
    if path.is_empty() {
        return format!("invalid JSON: {rest}");
    }
    let problem = match rest
        .strip_prefix("failed to parse ")
        .and_then(|r| r.rsplit_once(" as "))
    {
        Some((value, data_type)) => {
            format!("cannot parse `{}` as {data_type}", value.trim_matches('"'))
        }
        None => rest.to_string(),
    };
    format!("column `{}`: {problem}", path.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::read_all;
    use crate::spec::{ColumnType, SourceSpec, timestamp_type};
    use arrow::array::{Float64Array, Int64Array, TimestampMillisecondArray};
    use arrow::compute::concat_batches;
    use arrow::datatypes::DataType;
    use sluice_engine::source::{DeadLetter, Location};

    const EVENTS: &str = "{\"ts\":\"2026-01-01T00:00:00Z\",\"id\":1,\"v\":1.5}\n\
        {\"ts\":\"2026-01-01T00:00:01Z\",\"id\":\"two\",\"v\":2.5}\n\
        \n\
        {\"ts\":1767225602000,\"id\":3,\"v\":3}\n\
        {\"ts\":\"2026-01-01T00:00:03Z\",\"id\":4,\"v\":\n\
        {\"ts\":\"2026-01-01T00:00:04+01:00\",\"id\":5,\"v\":5.5,\"extra\":true}";

    #[test]
    fn bad_lines_become_dead_letters_and_good_rows_keep_their_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, EVENTS).expect("write");
        let columns = [
            ColumnSpec::new("ts", ColumnType::Timestamp),
            ColumnSpec::new("id", ColumnType::Int64),
        ];
        for batch_rows in [100, 3] {
            let source = JsonlSource::new("events", vec![path.clone()], &columns, Some(batch_rows))
                .expect("source");
            let schema = source.schema();
            let types: Vec<(&str, DataType)> = schema
                .fields()
                .iter()
                .map(|f| (f.name().as_str(), f.data_type().clone()))
                .collect();
            let want = [
                ("ts", timestamp_type()),
                ("id", DataType::Int64),
                ("v", DataType::Float64),
                ("extra", DataType::Boolean),
            ];
            assert_eq!(types, want);
            let read = read_all(Box::new(source), 1_000);
            let batches = &read[0].1;
            let good = concat_batches(&schema, batches.iter().map(|b| &b.batch)).expect("concat");
            let lines: Vec<u64> = batches
                .iter()
                .flat_map(|b| b.locations.as_deref().unwrap_or(&[]).to_vec())
                .collect();
            assert_eq!(
                lines,
                vec![1, 4, 6],
                "batch_rows {batch_rows}: {:?}",
                batches.iter().map(|b| &b.dead_letters).collect::<Vec<_>>()
            );
            let letters: Vec<DeadLetter> = batches
                .iter()
                .flat_map(|b| b.dead_letters.clone())
                .collect();
            let got: Vec<(Location, &str)> = letters
                .iter()
                .map(|d| (d.location, d.raw.as_str()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (
                        Location::Line(2),
                        "{\"ts\":\"2026-01-01T00:00:01Z\",\"id\":\"two\",\"v\":2.5}"
                    ),
                    (
                        Location::Line(5),
                        "{\"ts\":\"2026-01-01T00:00:03Z\",\"id\":4,\"v\":"
                    ),
                ]
            );
            assert_eq!(
                letters[0].reason,
                "column `id`: cannot parse `two` as Int64"
            );
            assert!(
                letters[1].reason.starts_with("invalid JSON: "),
                "{}",
                letters[1].reason
            );
            assert!(
                letters
                    .iter()
                    .all(|d| d.source == path.display().to_string())
            );
            let ts = good
                .column(0)
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .expect("ts");
            // 00:00:04+01:00 is 23:00:04 the day before in UTC: 3 600 000 - 4 000 ms before start.
            assert_eq!(
                ts.values().to_vec(),
                vec![1_767_225_600_000, 1_767_225_602_000, 1_767_222_004_000]
            );
            let ids = good
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("id");
            assert_eq!(ids.values().to_vec(), vec![1, 3, 5]);
            let v = good
                .column(2)
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("v");
            assert_eq!(v.values().to_vec(), vec![1.5, 3.0, 5.5]);
            assert_eq!(
                good.column(3).null_count(),
                2,
                "`extra` is only on the last line"
            );
        }
    }

    #[test]
    fn two_objects_on_one_line_are_one_dead_letter() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"k\":1}\n{\"k\":2} {\"k\":3}\n{\"k\":4}\n",
        )
        .expect("write");
        let source = SourceSpec::Jsonl(FileSourceSpec::new("a.jsonl"))
            .build(dir.path())
            .expect("build");
        let read = read_all(source, 10);
        let batch = &read[0].1[0];
        assert_eq!(batch.locations.as_deref(), Some(&[1u64, 3][..]));
        assert_eq!(batch.dead_letters.len(), 1);
        assert_eq!(batch.dead_letters[0].location, Location::Line(2));
        assert_eq!(
            batch.dead_letters[0].reason,
            "expected one JSON object per line, found 2"
        );
    }

    #[test]
    fn arrow_errors_become_reasons_naming_the_column() {
        let nested = ArrowError::JsonError(
            "whilst decoding field 'a': failed to parse \"fast\" as Float64".into(),
        );
        assert_eq!(
            json_reason(&nested),
            "column `a`: cannot parse `fast` as Float64"
        );
        let kind = ArrowError::JsonError(
            "whilst decoding field 'r': whilst decoding field 'b': expected string got 1".into(),
        );
        assert_eq!(json_reason(&kind), "column `r.b`: expected string got 1");
        let syntax =
            ArrowError::JsonError("Encountered unexpected 'x' whilst parsing value".into());
        assert_eq!(
            json_reason(&syntax),
            "invalid JSON: Encountered unexpected 'x' whilst parsing value"
        );
        let two = ArrowError::ParseError("expected one record, found 2".into());
        assert_eq!(
            json_reason(&two),
            "expected one JSON object per line, found 2"
        );
    }

    #[test]
    fn json_lines_with_bad_lines_resume_at_every_batch_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        // Two more lines than EVENTS: a blank last line and, before it, two objects on one line.
        let text = format!("{EVENTS}\n{{\"id\":7}} {{\"id\":8}}\n\n");
        std::fs::write(&path, text).expect("write");
        let columns = [
            ColumnSpec::new("ts", ColumnType::Timestamp),
            ColumnSpec::new("id", ColumnType::Int64),
        ];
        for batch_rows in [1, 2, 3] {
            let open = || {
                let source =
                    JsonlSource::new("events", vec![path.clone()], &columns, None).expect("source");
                let ctx = SourceContext {
                    batch_rows,
                    projection: Some(vec![1]),
                };
                Box::new(source).open(&ctx).expect("open")
            };
            let read = crate::resume::assert_resumes_everywhere(&open);
            let flat = crate::resume::flatten(&read[0]);
            assert_eq!(flat.locations, vec![1, 4, 6], "batch_rows {batch_rows}");
            let bad: Vec<Location> = flat.dead_letters.iter().map(|d| d.location).collect();
            assert_eq!(
                bad,
                vec![Location::Line(2), Location::Line(5), Location::Line(7)]
            );
            let rows = flat.rows.expect("rows");
            let ids = rows
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("id");
            assert_eq!(ids.values().to_vec(), vec![1, 3, 5]);
        }
    }

    #[test]
    fn conflicts_and_invalid_utf8_among_the_first_lines_are_dead_letters() {
        // Issue 12: with declared columns, a type conflict or invalid UTF-8 within the first
        // 1 000 lines refused the whole job; the same line later was a dead letter.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.jsonl");
        let mut text = Vec::new();
        text.extend_from_slice(b"{\"ts\":1,\"id\":1,\"tags\":{\"a\":1}}\n");
        text.extend_from_slice(b"{\"ts\":2,\"id\":2,\"tags\":5}\n");
        text.extend_from_slice(b"{\"ts\":3,\"id\":3,\"name\":\"caf\xe9\"}\n");
        text.extend_from_slice(b"{\"ts\":4,\"id\":4,\"tags\":{\"b\":\"x\"},\"name\":\"ok\"}\n");
        text.extend_from_slice(b"{\"ts\":5,\"id\":5,\"tags\":{\"a\":2}}\n");
        std::fs::write(&path, &text).expect("write");
        let columns = [
            ColumnSpec::new("ts", ColumnType::Timestamp),
            ColumnSpec::new("id", ColumnType::Int64),
        ];
        let source = JsonlSource::new("e", vec![path.clone()], &columns, Some(2)).expect("source");
        let read = read_all(Box::new(source), 2);
        let flat = crate::resume::flatten(&read[0].1);
        assert_eq!(flat.locations, [1, 4, 5]);
        let bad: Vec<(Location, &str)> = flat
            .dead_letters
            .iter()
            .map(|d| (d.location, d.reason.as_str()))
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].0, Location::Line(2));
        assert!(bad[0].1.starts_with("column `tags`: "), "{}", bad[0].1);
        assert_eq!(
            bad[1],
            (
                Location::Line(3),
                "not valid UTF-8: byte 27 of the record (after `{\"ts\":3,\"id\":3,\"name\":\"caf`)"
            )
        );
        let rows = flat.rows.expect("rows");
        let ids = rows
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("id");
        assert_eq!(ids.values().to_vec(), vec![1, 4, 5]);
    }

    #[test]
    fn times_out_of_range_and_mixed_text_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.jsonl");
        // `k` is half numbers, half text: text, and no value of it is lost.
        let text = "{\"ts\":\"2026-01-01T00:00:00Z\",\"k\":1}\n\
                    {\"ts\":1700000000000000000,\"k\":\"a\"}\n\
                    {\"ts\":5,\"k\":true}\n\
                    {\"ts\":6,\"k\":\"b\"}\n";
        std::fs::write(&path, text).expect("write");
        let columns = [ColumnSpec::new("ts", ColumnType::Timestamp)];
        let source = JsonlSource::new("e", vec![path], &columns, None).expect("source");
        assert_eq!(source.schema().field(1).data_type(), &DataType::Utf8);
        let read = read_all(Box::new(source), 10);
        let batch = &read[0].1[0];
        assert_eq!(batch.locations.as_deref(), Some(&[1u64, 3, 4][..]));
        assert_eq!(batch.dead_letters.len(), 1);
        assert_eq!(batch.dead_letters[0].location, Location::Line(2));
        assert!(
            batch.dead_letters[0]
                .reason
                .starts_with("column `ts`: `1700000000000000000` is outside the valid time range"),
            "{}",
            batch.dead_letters[0].reason
        );
        let k = batch
            .batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("k");
        assert_eq!(
            k.iter().collect::<Vec<_>>(),
            [Some("1"), Some("true"), Some("b")]
        );
    }
}

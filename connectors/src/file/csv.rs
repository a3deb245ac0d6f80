//! CSV files with a header line: schema inference, text decoding, typed parsing per column.
//!
//! Records are decoded by Arrow as text and typed afterwards ([`parse_columns`]), so that a bad
//! value rejects its own row with the column named; Arrow's typed CSV decoder would reject the
//! whole chunk and name only a column index. Quotes follow [`super::quoting`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use sluice_engine::source::{Source, SourceContext, SourcePartition};
use sluice_engine::{Error, Result};

use super::convert::parse_columns;
use super::infer::text_column;
use super::quoting::split_fields;
use super::records::RecordReader;
use super::schema::{Order, normalise, with_declared};
use super::text::{TextFormat, TextPartition};
use super::{INFER_RECORDS, paths};
use crate::spec::{ColumnSpec, FileSourceSpec};

/// A source over CSV files with a header line; every file is one partition.
#[derive(Debug)]
pub struct CsvSource {
    name: String,
    files: Vec<PathBuf>,
    schema: SchemaRef,
    batch_rows: Option<usize>,
}

impl CsvSource {
    /// Resolves `spec.path` against `base_dir` and builds the source.
    pub fn from_spec(spec: &FileSourceSpec, base_dir: &Path) -> Result<Self> {
        let files = paths::resolve(base_dir, &spec.path, &["csv"])?;
        Self::new(spec.path.clone(), files, &spec.columns, spec.batch_rows)
    }

    /// A source named `name` over `files`: the columns come from the first file's header,
    /// typed as `columns` declares or as inferred from its first records. Every other file must
    /// have the same header (or be empty).
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
        let schema = with_declared(&normalise(&inferred), columns, Order::File, first.display())?;
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for file in &files[1..] {
            let header = read_header(file)?;
            if !header.is_empty() && header != names {
                let column = header
                    .iter()
                    .zip(&names)
                    .find(|(a, b)| a != b)
                    .map_or("", |(a, _)| a.as_str());
                let message = format!(
                    "{} has header [{}], unlike {} with [{}]",
                    file.display(),
                    header.join(", "),
                    first.display(),
                    names.join(", ")
                );
                return Err(Error::schema(column, message));
            }
        }
        Ok(CsvSource {
            name: name.into(),
            files,
            schema: Arc::new(schema),
            batch_rows,
        })
    }
}

impl Source for CsvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(self: Box<Self>, ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        let text_schema: SchemaRef = Arc::new(Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let batch_rows = self.batch_rows.unwrap_or(ctx.batch_rows);
        let partitions = self
            .files
            .into_iter()
            .map(|file| {
                let format = CsvFormat {
                    text_schema: text_schema.clone(),
                    schema: self.schema.clone(),
                };
                Box::new(TextPartition::new(file, format, batch_rows)) as Box<dyn SourcePartition>
            })
            .collect();
        Ok(partitions)
    }
}

/// The header names of `file`; empty for an empty file.
fn read_header(file: &Path) -> Result<Vec<String>> {
    let mut reader = RecordReader::open(file, true)?;
    match reader.next_chunk(1)? {
        Some(chunk) => header_names(file, chunk.record_bytes(0)),
        None => Ok(Vec::new()),
    }
}

/// The column names in a header line.
fn header_names(file: &Path, header: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(header).map_err(|e| {
        let message = format!(
            "the header line of {} is not valid UTF-8 (byte {})",
            file.display(),
            e.valid_up_to() + 1
        );
        Error::config("source.path", message)
    })?;
    Ok(split_fields(text))
}

/// Infers column types from the header and the first records of `file` by the rule of
/// [`super::infer`]. Records that cannot be read (a wrong number of fields, invalid UTF-8, an
/// unclosed quote) are left out: they will be dead letters when read.
fn infer_schema(file: &Path) -> Result<Schema> {
    let mut reader = RecordReader::open(file, true)?;
    let Some(chunk) = reader.next_chunk(INFER_RECORDS + 1)? else {
        return Err(Error::config(
            "source.path",
            format!(
                "{} is empty; a CSV file needs a header line",
                file.display()
            ),
        ));
    };
    let names = header_names(file, chunk.record_bytes(0))?;
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for (i, record) in chunk.records.iter().enumerate().skip(1) {
        let Ok(text) = std::str::from_utf8(chunk.record_bytes(i)) else {
            continue;
        };
        let fields = split_fields(text);
        if record.unclosed.is_some() || fields.len() != names.len() {
            continue;
        }
        // An empty field is null: it says nothing about the type.
        for (column, value) in columns.iter_mut().zip(fields) {
            if !value.is_empty() {
                column.push(value);
            }
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&columns)
        .map(|(name, values)| {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            Field::new(name, text_column(&values), true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// Decodes CSV records as text, then types them.
struct CsvFormat {
    /// The source's columns, all as `Utf8`.
    text_schema: SchemaRef,
    schema: SchemaRef,
}

impl TextFormat for CsvFormat {
    fn decode(&self, bytes: &[u8], rows: usize) -> Result<RecordBatch, ArrowError> {
        // One more than expected, so that extra records show up as a wrong count.
        // Every record ends with exactly one `\n` (the reader's line ends are gone), so a CR
        // left in a record is text, not a record end.
        let mut decoder = ReaderBuilder::new(self.text_schema.clone())
            .with_header(false)
            .with_terminator(b'\n')
            .with_batch_size(rows + 1)
            .build_decoder();
        let mut offset = 0;
        while offset < bytes.len() {
            let used = decoder.decode(&bytes[offset..])?;
            if used == 0 {
                break;
            }
            offset += used;
        }
        decoder.decode(&[])?;
        Ok(decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.text_schema.clone())))
    }

    fn decoded_schema(&self) -> SchemaRef {
        self.text_schema.clone()
    }

    fn reason(&self, raw: &str, error: &ArrowError) -> String {
        let (expected, found) = (self.schema.fields().len(), split_fields(raw).len());
        if expected != found {
            return format!("expected {expected} fields, found {found}");
        }
        error.to_string()
    }

    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        parse_columns(&batch, &self.schema)
    }

    fn quoted_newlines(&self) -> bool {
        true
    }

    fn has_header(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::read_all;
    use crate::spec::{ColumnType, SourceSpec};
    use arrow::array::{Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::compute::concat_batches;
    use sluice_engine::source::{DeadLetter, Location, SourceBatch};

    const SENSORS: &str = "ts,segment_id,speed_kmh,label\n\
        2026-01-01T00:00:00Z,1,50.5,a\n\
        2026-01-01T00:00:01Z,2,fast,b\n\
        \n\
        2026-01-01T00:00:02Z,3,61.0,\"c,d\"\n\
        2026-01-01T00:00:03Z,4\n\
        1767225604000,5,70.25,e";

    #[test]
    fn bad_lines_become_dead_letters_and_good_rows_keep_their_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sensors.csv");
        std::fs::write(&path, SENSORS).expect("write");
        let declared = [
            ColumnSpec::new("ts", ColumnType::Timestamp),
            ColumnSpec::new("segment_id", ColumnType::Int64),
            ColumnSpec::new("speed_kmh", ColumnType::Float64),
        ];
        for batch_rows in [100, 2] {
            let source = CsvSource::new("sensors", vec![path.clone()], &declared, Some(batch_rows))
                .expect("source");
            let schema = source.schema();
            let read = read_all(Box::new(source), 1_000);
            let batches: Vec<&SourceBatch> = read[0].1.iter().collect();
            let good = concat_batches(&schema, batches.iter().map(|b| &b.batch)).expect("concat");
            let lines: Vec<u64> = batches
                .iter()
                .flat_map(|b| b.locations.as_deref().unwrap_or(&[]).to_vec())
                .collect();
            let letters: Vec<DeadLetter> = batches
                .iter()
                .flat_map(|b| b.dead_letters.clone())
                .collect();
            assert_eq!(lines, vec![2, 5, 7], "batch_rows {batch_rows}");
            let source_name = path.display().to_string();
            assert_eq!(
                letters,
                vec![
                    DeadLetter {
                        source: source_name.clone(),
                        location: Location::Line(3),
                        reason: "column `speed_kmh`: cannot parse `fast` as Float64".into(),
                        raw: "2026-01-01T00:00:01Z,2,fast,b".into(),
                    },
                    DeadLetter {
                        source: source_name,
                        location: Location::Line(6),
                        reason: "expected 4 fields, found 2".into(),
                        raw: "2026-01-01T00:00:03Z,4".into(),
                    },
                ]
            );
            let ts = good
                .column(0)
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .expect("ts");
            // 2026-01-01T00:00:00Z = 1 767 225 600 000 ms; the last row gives integer ms.
            assert_eq!(
                ts.values().to_vec(),
                vec![1_767_225_600_000, 1_767_225_602_000, 1_767_225_604_000]
            );
            assert_eq!(ts.timezone(), Some("UTC"));
            let ids = good
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids");
            assert_eq!(ids.values().to_vec(), vec![1, 3, 5]);
            let speeds = good
                .column(2)
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("speeds");
            assert_eq!(speeds.values().to_vec(), vec![50.5, 61.0, 70.25]);
            let labels = good
                .column(3)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("labels");
            assert_eq!(
                labels.iter().collect::<Vec<_>>(),
                vec![Some("a"), Some("c,d"), Some("e")]
            );
        }
    }

    #[test]
    fn undeclared_columns_are_inferred_from_the_first_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "ts,n,x,s,flag\n2026-01-01T00:00:00.5Z,1,2.5,hi,true\n2026-01-01T00:00:01Z,2,3,,false\n")
            .expect("write");
        let source = CsvSource::new("t", vec![path], &[], None).expect("source");
        let types: Vec<DataType> = source
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let want = [
            crate::spec::timestamp_type(),
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Boolean,
        ];
        assert_eq!(types, want);
        let read = read_all(Box::new(source), 10);
        let batch = &read[0].1[0].batch;
        let ts = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .expect("ts");
        assert_eq!(
            ts.values().to_vec(),
            vec![1_767_225_600_500, 1_767_225_601_000]
        );
        assert!(batch.column(3).is_null(1), "an empty field is null");
    }

    #[test]
    fn globs_and_directories_read_every_file_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("data")).expect("mkdir");
        std::fs::write(dir.path().join("data/b.csv"), "k,v\n3,30\n").expect("write");
        std::fs::write(dir.path().join("data/a.csv"), "k,v\n1,10\n2,20\n").expect("write");
        std::fs::write(dir.path().join("data/skip.txt"), "not,csv\n").expect("write");
        for path in ["data/*.csv", "data"] {
            let spec = SourceSpec::Csv(FileSourceSpec::new(path));
            let source = spec.build(dir.path()).expect("build");
            assert_eq!(source.name(), path);
            let read = read_all(source, 10);
            let names: Vec<&str> = read
                .iter()
                .map(|(n, _)| n.rsplit('/').next().unwrap_or(""))
                .collect();
            assert_eq!(names, ["a.csv", "b.csv"]);
            let keys: Vec<i64> = read
                .iter()
                .flat_map(|(_, batches)| batches.iter())
                .flat_map(|b| {
                    b.batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .expect("k")
                        .values()
                        .to_vec()
                })
                .collect();
            assert_eq!(keys, vec![1, 2, 3]);
        }
    }

    #[test]
    fn files_with_another_header_are_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "k,v\n1,10\n").expect("write");
        std::fs::write(dir.path().join("b.csv"), "k,w\n1,10\n").expect("write");
        let err = SourceSpec::Csv(FileSourceSpec::new("*.csv"))
            .build(dir.path())
            .expect_err("headers differ");
        assert!(err.to_string().starts_with("column `w`: "), "{err}");
        assert!(err.to_string().contains("b.csv has header [k, w]"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = SourceSpec::Csv(FileSourceSpec::new("nope.csv"))
            .build(dir.path())
            .expect_err("missing");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", dir.path().join("nope.csv").display())),
            "{err}"
        );
    }

    #[test]
    fn the_csv_sink_output_reads_back_unchanged() {
        use crate::spec::{GeneratorKind, GeneratorSpec, SinkSpec};
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = GeneratorSpec {
            events: Some(300),
            event_time_rate: 7,
            ..GeneratorSpec::new(GeneratorKind::Transactions)
        };
        let generated = read_all(
            Box::new(crate::GeneratorSource::new(&spec).expect("generator")),
            1_000,
        );
        let original = generated[0].1[0].batch.clone();
        let sink_spec = SinkSpec::Csv {
            path: "out/tx.csv".into(),
            header: true,
        };
        let mut sink = sink_spec
            .build(original.schema(), dir.path())
            .expect("sink");
        sink.write(&original.slice(0, 100)).expect("write");
        sink.write(&original.slice(100, 200)).expect("write");
        sink.close().expect("close");

        let source = SourceSpec::Csv(FileSourceSpec::new("out/tx.csv"))
            .build(dir.path())
            .expect("source");
        let read = read_all(source, 64);
        let batches: Vec<&RecordBatch> = read[0].1.iter().map(|b| &b.batch).collect();
        assert!(read[0].1.iter().all(|b| b.dead_letters.is_empty()));
        let back = concat_batches(&batches[0].schema(), batches).expect("concat");
        // The text schema is nullable where the generator's is not; the values must be equal.
        assert_eq!(back.schema().fields().len(), 6);
        for (i, field) in original.schema().fields().iter().enumerate() {
            assert_eq!(
                back.column(i).as_ref(),
                original.column(i).as_ref(),
                "column {}",
                field.name()
            );
        }
    }

    /// Opens a fresh CSV source over `path` with declared `columns`.
    fn open_csv(
        path: &Path,
        columns: &[ColumnSpec],
        batch_rows: usize,
    ) -> Vec<Box<dyn SourcePartition>> {
        let source = CsvSource::new("t", vec![path.to_path_buf()], columns, Some(batch_rows))
            .expect("source");
        Box::new(source)
            .open(&SourceContext::default())
            .expect("open")
    }

    #[test]
    fn a_csv_file_with_a_header_resumes_at_every_batch_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sensors.csv");
        std::fs::write(&path, SENSORS).expect("write");
        let declared = [ColumnSpec::new("speed_kmh", ColumnType::Float64)];
        for batch_rows in [1, 2, 3] {
            let open = || open_csv(&path, &declared, batch_rows);
            let read = crate::resume::assert_resumes_everywhere(&open);
            // The same rows as the hand-checked read above: good lines 2, 5, 7; bad 3 and 6.
            let flat = crate::resume::flatten(&read[0]);
            assert_eq!(flat.locations, vec![2, 5, 7], "batch_rows {batch_rows}");
            let bad: Vec<Location> = flat.dead_letters.iter().map(|d| d.location).collect();
            assert_eq!(bad, vec![Location::Line(3), Location::Line(6)]);
        }
    }

    /// Quoted fields spanning lines, a doubled quote, CRLF endings, blank lines, a bad value
    /// (line 4), a record with too many fields (line 10) and no newline at the end.
    const NOTES: &str = "id,note,amount\n\
        1,\"multi\nline\",10\r\n\
        2,plain,x\n\
        3,\"a \"\"quoted\"\" one\",30\n\
        \n\
        4,\"another\r\ntwo\nlines\",40\n\
        5,too,many,fields\n\
        \"6\",\"x,y\",60";

    #[test]
    fn quoted_newlines_and_bad_records_resume_at_every_batch_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.csv");
        std::fs::write(&path, NOTES).expect("write");
        let declared = [
            ColumnSpec::new("id", ColumnType::Int64),
            ColumnSpec::new("note", ColumnType::String),
            ColumnSpec::new("amount", ColumnType::Int64),
        ];
        for batch_rows in [1, 2, 4] {
            let open = || open_csv(&path, &declared, batch_rows);
            let read = crate::resume::assert_resumes_everywhere(&open);
            let flat = crate::resume::flatten(&read[0]);
            assert_eq!(flat.locations, vec![2, 5, 7, 11], "batch_rows {batch_rows}");
            let bad: Vec<(Location, &str)> = flat
                .dead_letters
                .iter()
                .map(|d| (d.location, d.raw.as_str()))
                .collect();
            assert_eq!(
                bad,
                vec![
                    (Location::Line(4), "2,plain,x"),
                    (Location::Line(10), "5,too,many,fields")
                ]
            );
            let rows = flat.rows.expect("rows");
            let notes = rows
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("notes");
            assert_eq!(
                notes.iter().collect::<Vec<_>>(),
                [
                    Some("multi\nline"),
                    Some("a \"quoted\" one"),
                    Some("another\ntwo\nlines"),
                    Some("x,y")
                ]
            );
        }
    }

    #[test]
    fn a_projection_still_applies_after_a_seek() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.csv");
        std::fs::write(&path, NOTES).expect("write");
        let open = || {
            let source = CsvSource::new("t", vec![path.clone()], &[], Some(2)).expect("source");
            let ctx = SourceContext {
                batch_rows: 2,
                projection: Some(vec![0, 2]),
            };
            Box::new(source).open(&ctx).expect("open")
        };
        let read = crate::resume::assert_resumes_everywhere(&open);
        // CSV returns every column and leaves projecting to the runtime; the values must hold.
        // Undeclared, `amount` is inferred as int64: `x` is one bad value of the five sampled
        // (one is tolerated), so line 4 is a dead letter, as is line 10 (too many fields).
        let rows = crate::resume::flatten(&read[0]).rows.expect("rows");
        let ids = rows
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("id");
        assert_eq!(ids.values().to_vec(), vec![1, 3, 4, 6]);
    }

    #[test]
    fn a_position_inside_a_record_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.csv");
        std::fs::write(&path, NOTES).expect("write");
        let mut partition = open_csv(&path, &[], 10).remove(0);
        // Byte 16 is the comma after `1` on line 2: the 15-byte header ends before byte 15.
        let err = partition
            .seek(sluice_engine::source::Position {
                offset: 16,
                records: 1,
            })
            .expect_err("inside line 2");
        assert!(err.to_string().starts_with("source "), "{err}");
        assert!(err.to_string().contains("notes.csv"), "{err}");
    }

    /// Reads `text` as a CSV file with `declared` columns, resuming after every chunk of
    /// `batch_rows` records: the good rows, their lines, and the dead letters as (line, reason,
    /// raw).
    fn read_rows(
        text: &[u8],
        declared: &[ColumnSpec],
        batch_rows: usize,
    ) -> (RecordBatch, Vec<u64>, Vec<(u64, String, String)>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).expect("write");
        let open = || open_csv(&path, declared, batch_rows);
        let read = crate::resume::assert_resumes_everywhere(&open);
        let flat = crate::resume::flatten(&read[0]);
        let letters = flat
            .dead_letters
            .iter()
            .map(|d| match d.location {
                Location::Line(n) => (n, d.reason.clone(), d.raw.clone()),
                other => panic!("a text file locates by line, not {other}"),
            })
            .collect();
        (flat.rows.expect("rows"), flat.locations, letters)
    }

    fn read_text(
        text: &[u8],
        declared: &[ColumnSpec],
    ) -> (RecordBatch, Vec<u64>, Vec<(u64, String, String)>) {
        read_rows(text, declared, 2)
    }

    fn strings(batch: &RecordBatch, column: usize) -> Vec<Option<String>> {
        let column = batch.column(column).as_any().downcast_ref::<StringArray>();
        let column = column.expect("a text column");
        column.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn a_stray_quote_costs_only_its_own_line() {
        // Issue 12: `x"y` turned the rest of a file into one dead letter. A quote that is not
        // at the start of a field is text; one that opens a field and never closes properly is
        // one dead letter, its own line.
        let text = "id,ts,name\n\
            1,1700000000000,a\n\
            2,1700000000001,x\"y\n\
            3,1700000000002,\"never closed\n\
            4,1700000000003,\"q,r\"\n\
            5,1700000000004,b";
        let (rows, lines, letters) = read_text(text.as_bytes(), &[]);
        assert_eq!(lines, [2, 3, 5, 6]);
        let names = strings(&rows, 2);
        let want = ["a", "x\"y", "q,r", "b"].map(|s| Some(s.to_string()));
        assert_eq!(names, want);
        assert_eq!(
            letters,
            [(
                4,
                "a quoted field opened on this line does not close properly on the lines \
                 after it (a quote followed by text); the line is read alone"
                    .to_string(),
                "3,1700000000002,\"never closed".to_string()
            )]
        );
    }

    #[test]
    fn a_file_with_lone_cr_line_ends_reads_as_lines() {
        // Issue 12: such a file gave 0 rows and 0 dead letters.
        let text = "id,v\r1,a\r2,b\r\r3,\"c\rd\"\r4\r";
        let (rows, lines, letters) = read_text(text.as_bytes(), &[]);
        assert_eq!(lines, [2, 3, 5]);
        assert_eq!(
            strings(&rows, 1),
            ["a", "b", "c\nd"].map(|s| Some(s.to_string()))
        );
        assert_eq!(
            letters,
            [(7, "expected 2 fields, found 1".to_string(), "4".to_string())]
        );
    }

    #[test]
    fn bad_values_in_the_inference_sample_are_dead_letters_not_types() {
        // Issue 12: `2,oops,5` made `ts` text, and then no time parsed.
        let text = "id,ts,v\n1,1700000000000,5\n2,oops,5\n3,1700000000002,7.5\n";
        let (rows, lines, letters) = read_text(text.as_bytes(), &[]);
        let schema = rows.schema();
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [&DataType::Int64, &DataType::Int64, &DataType::Float64]
        );
        assert_eq!(lines, [2, 4]);
        assert_eq!(
            letters,
            [(
                3,
                "column `ts`: cannot parse `oops` as Int64".to_string(),
                "2,oops,5".to_string()
            )]
        );
    }

    #[test]
    fn invalid_utf8_among_the_first_lines_is_a_dead_letter_not_a_refused_job() {
        // Issue 12: with declared columns, invalid UTF-8 in the first 1 000 lines refused the
        // job, while the same line at 2 001 was a dead letter.
        let declared = [ColumnSpec::new("id", ColumnType::Int64)];
        let bad_line = b"2,caf\xe9\n";
        for at in [0usize, 1_500] {
            let mut text = b"id,name\n".to_vec();
            for i in 0..at {
                text.extend(format!("{},n{i}\n", 10 + i).as_bytes());
            }
            text.extend_from_slice(b"1,ok\n");
            text.extend_from_slice(bad_line);
            text.extend_from_slice(b"3,fine\n");
            let (rows, lines, letters) = read_rows(&text, &declared, 400);
            let first = at as u64 + 2;
            assert_eq!(lines.len(), at + 2, "at {at}");
            assert_eq!(lines[at..], [first, first + 2]);
            assert_eq!(rows.num_rows(), at + 2);
            assert_eq!(
                letters,
                [(
                    first + 1,
                    "not valid UTF-8: byte 6 of the record (after `2,caf`)".to_string(),
                    "2,caf\u{fffd}".to_string()
                )],
                "at {at}"
            );
        }
    }

    #[test]
    fn times_out_of_range_are_dead_letters_at_the_source() {
        // Issue 12: an event time in ns reached the CSV sink, which failed on every restart.
        let declared = [ColumnSpec::new("ts", ColumnType::Timestamp)];
        let text = "ts,v\n1700000000000,1\n1700000000000000000,2\n-9223372036854775808,3\n";
        let (rows, lines, letters) = read_text(text.as_bytes(), &declared);
        assert_eq!(rows.num_rows(), 1);
        assert_eq!(lines, [2]);
        let bad: Vec<u64> = letters.iter().map(|l| l.0).collect();
        assert_eq!(bad, [3, 4]);
        assert!(
            letters[0].1.contains("is outside the valid time range"),
            "{letters:?}"
        );
    }
}

//! Parquet files sharing one schema, each read as one partition with row-number locations.
//!
//! A partition's position is the rows it has returned; resuming skips whole row groups by the
//! footer's row counts and then rows inside the first group left, without decoding the skipped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use sluice_engine::source::{
    Locations, Position, Source, SourceBatch, SourceContext, SourcePartition,
};
use sluice_engine::{Error, Result};

use super::paths;
use super::schema::{Order, with_declared};
use crate::spec::{ColumnSpec, FileSourceSpec};

/// A source over Parquet files with the same columns; every file is one partition.
#[derive(Debug)]
pub struct ParquetSource {
    name: String,
    files: Vec<PathBuf>,
    schema: SchemaRef,
    batch_rows: Option<usize>,
}

impl ParquetSource {
    /// Resolves `spec.path` against `base_dir` and builds the source.
    pub fn from_spec(spec: &FileSourceSpec, base_dir: &Path) -> Result<Self> {
        let files = paths::resolve(base_dir, &spec.path, &["parquet"])?;
        Self::new(spec.path.clone(), files, &spec.columns, spec.batch_rows)
    }

    /// A source named `name` over `files`, whose footers must all describe the same columns and
    /// types; declared `columns` are cast to their declared type as they are read.
    pub fn new(
        name: impl Into<String>,
        files: Vec<PathBuf>,
        columns: &[ColumnSpec],
        batch_rows: Option<usize>,
    ) -> Result<Self> {
        let first = files
            .first()
            .ok_or_else(|| Error::config("source.path", "names no files"))?;
        let found = file_schema(first)?;
        for file in &files[1..] {
            let other = file_schema(file)?;
            check_same_columns(&found, first, &other, file)?;
        }
        let schema = with_declared(&found, columns, Order::File, first.display())?;
        Ok(ParquetSource {
            name: name.into(),
            files,
            schema: Arc::new(schema),
            batch_rows,
        })
    }
}

impl Source for ParquetSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(self: Box<Self>, ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        let batch_rows = self.batch_rows.unwrap_or(ctx.batch_rows).max(1);
        let partitions = self
            .files
            .into_iter()
            .map(|path| {
                Box::new(ParquetPartition {
                    path,
                    schema: self.schema.clone(),
                    batch_rows,
                    reader: None,
                    rows: 0,
                    done: false,
                }) as Box<dyn SourcePartition>
            })
            .collect();
        Ok(partitions)
    }
}

/// A Parquet failure is reported like an I/O failure on the file: the file cannot be read.
fn parquet_error(path: &Path) -> impl FnOnce(ParquetError) -> Error + '_ {
    move |e| Error::io(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The Arrow schema in `path`'s footer, without metadata.
fn file_schema(path: &Path) -> Result<Schema> {
    let file = File::open(path).map_err(Error::io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error(path))?;
    Ok(Schema::new(builder.schema().fields().clone()))
}

fn check_same_columns(
    first: &Schema,
    first_path: &Path,
    other: &Schema,
    other_path: &Path,
) -> Result<()> {
    let describe = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
    };
    let (a, b) = (describe(first), describe(other));
    if a == b {
        return Ok(());
    }
    let column = first
        .fields()
        .iter()
        .zip(other.fields())
        .find(|(x, y)| x.name() != y.name() || x.data_type() != y.data_type());
    let column = column.map_or_else(|| "*".to_string(), |(x, _)| x.name().clone());
    let message = format!(
        "{} has columns [{}], unlike {} with [{}]",
        other_path.display(),
        b.join(", "),
        first_path.display(),
        a.join(", ")
    );
    Err(Error::schema(column, message))
}

/// One Parquet file; locations are 0-based row numbers within it.
struct ParquetPartition {
    path: PathBuf,
    schema: SchemaRef,
    batch_rows: usize,
    /// Opened on the first `next_batch`.
    reader: Option<ParquetRecordBatchReader>,
    /// Rows read so far, in this run and before a `seek`: where the reader starts and the
    /// location of the next row.
    rows: u64,
    done: bool,
}

impl ParquetPartition {
    fn reader(&mut self) -> Result<&mut ParquetRecordBatchReader> {
        if self.reader.is_none() {
            let file = File::open(&self.path).map_err(Error::io(&self.path))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(parquet_error(&self.path))?;
            let group_rows = builder
                .metadata()
                .row_groups()
                .iter()
                .map(|g| u64::try_from(g.num_rows()).unwrap_or(0));
            let (groups, skip) = start_at(group_rows, self.rows).ok_or_else(|| Error::Source {
                name: self.name(),
                message: format!(
                    "cannot resume after row {}: the file has fewer rows; has it changed since \
                     the checkpoint?",
                    self.rows
                ),
            })?;
            let mut builder = builder
                .with_row_groups(groups)
                .with_batch_size(self.batch_rows);
            if skip > 0 {
                let skip = usize::try_from(skip)
                    .map_err(|_| Error::Internal("a row group's row count overflows".into()))?;
                builder = builder.with_offset(skip);
            }
            let reader = builder.build().map_err(parquet_error(&self.path))?;
            self.reader = Some(reader);
        }
        self.reader
            .as_mut()
            .ok_or_else(|| Error::Internal("parquet reader vanished".into()))
    }

    /// Casts declared columns and attaches the source schema (the file's may carry metadata).
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let context = || format!("reading {}", self.path.display());
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    cast(column, field.data_type()).map_err(|e| Error::Arrow {
                        context: format!("{}, column `{}`", context(), field.name()),
                        source: e,
                    })
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| Error::Arrow {
            context: context(),
            source: e,
        })
    }
}

impl SourcePartition for ParquetPartition {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if self.done {
            return Ok(None);
        }
        let path = self.path.clone();
        let Some(batch) = self.reader()?.next() else {
            self.done = true;
            self.reader = None;
            return Ok(None);
        };
        let batch = batch.map_err(|e| Error::Arrow {
            context: format!("reading {}", path.display()),
            source: e,
        })?;
        let batch = self.conform(batch)?;
        let first = self.rows;
        self.rows += batch.num_rows() as u64;
        let locations: Arc<[u64]> = (first..self.rows).collect();
        Ok(Some(SourceBatch {
            batch,
            dead_letters: Vec::new(),
            locations: Some(Locations::rows(locations)),
            raw: None,
            watermark: None,
        }))
    }

    /// Rows returned so far, in both fields.
    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.rows,
            records: self.rows,
        })
    }

    /// Starts the next batch at row `position.offset`; a position beyond the file's rows is
    /// refused when the first batch opens the file.
    fn seek(&mut self, position: Position) -> Result<()> {
        if position.offset != position.records {
            return Err(Error::Source {
                name: self.name(),
                message: format!(
                    "cannot resume at {position:?}: a Parquet position counts rows in both fields"
                ),
            });
        }
        self.rows = position.offset;
        self.reader = None;
        self.done = false;
        Ok(())
    }
}

/// The row groups left after skipping `rows` (given each group's row count), and the rows to
/// skip inside the first of them; `None` when there are fewer rows than that.
fn start_at(group_rows: impl Iterator<Item = u64>, rows: u64) -> Option<(Vec<usize>, u64)> {
    let mut skip = rows;
    let mut groups = Vec::new();
    for (i, count) in group_rows.enumerate() {
        if groups.is_empty() && skip >= count {
            skip -= count;
        } else {
            groups.push(i);
        }
    }
    // Rows left to skip with no group left to skip them in: the file is shorter than that.
    if groups.is_empty() && skip > 0 {
        return None;
    }
    Some((groups, skip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::read_all;
    use crate::sink::ParquetSink;
    use crate::spec::{GeneratorKind, GeneratorSpec, SourceSpec};
    use crate::{GeneratorSource, spec::ColumnType};
    use arrow::array::{Array, Int32Array, Int64Array};
    use arrow::compute::concat_batches;
    use sluice_engine::sink::Sink;

    fn telemetry(events: u64) -> RecordBatch {
        let spec = GeneratorSpec {
            events: Some(events),
            ..GeneratorSpec::new(GeneratorKind::Telemetry)
        };
        let source = GeneratorSource::new(&spec).expect("generator");
        let read = read_all(Box::new(source), 1_000);
        read[0].1[0].batch.clone()
    }

    #[test]
    fn rotated_parts_read_back_as_one_partition_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = telemetry(25);
        let mut sink =
            ParquetSink::create(dir.path().join("out"), original.schema(), Some(10)).expect("sink");
        // Two writes whose boundary (7) does not line up with the rotation (10).
        sink.write(&original.slice(0, 7)).expect("write");
        sink.write(&original.slice(7, 18)).expect("write");
        sink.close().expect("close");
        assert_eq!(sink.files(), 3);

        let source = SourceSpec::Parquet(FileSourceSpec::new("out"))
            .build(dir.path())
            .expect("source");
        assert_eq!(source.schema(), original.schema());
        let read = read_all(source, 4);
        let names: Vec<&str> = read
            .iter()
            .map(|(n, _)| n.rsplit('/').next().unwrap_or(""))
            .collect();
        assert_eq!(
            names,
            [
                "part-00000.parquet",
                "part-00001.parquet",
                "part-00002.parquet"
            ]
        );
        let rows: Vec<Vec<u64>> = read
            .iter()
            .map(|(_, batches)| {
                batches
                    .iter()
                    .flat_map(|b| b.locations.as_deref().unwrap_or(&[]).to_vec())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (0..10).collect::<Vec<u64>>(),
                (0..10).collect(),
                (0..5).collect()
            ]
        );
        let all = concat_batches(
            &original.schema(),
            read.iter().flat_map(|(_, b)| b.iter().map(|b| &b.batch)),
        )
        .expect("concat");
        assert_eq!(all, original);

        // Writing again with rotation replaces the old parts instead of mixing with them.
        let mut sink = ParquetSink::create(dir.path().join("out"), original.schema(), Some(100))
            .expect("sink");
        sink.write(&original).expect("write");
        sink.close().expect("close");
        let again = read_all(
            SourceSpec::Parquet(FileSourceSpec::new("out"))
                .build(dir.path())
                .expect("source"),
            100,
        );
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn declared_columns_are_cast_and_other_schemas_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = telemetry(5);
        let mut sink = ParquetSink::create(dir.path().join("a.parquet"), original.schema(), None)
            .expect("sink");
        sink.write(&original).expect("write");
        sink.close().expect("close");

        let declared = [ColumnSpec::new("vehicles", ColumnType::Int32)];
        let source = ParquetSource::new("a", vec![dir.path().join("a.parquet")], &declared, None)
            .expect("source");
        let read = read_all(Box::new(source), 10);
        let vehicles = read[0].1[0]
            .batch
            .column(4)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("cast to int32")
            .clone();
        let want = original
            .column(4)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(vehicles.len(), 5);
        assert!((0..5).all(|i| i64::from(vehicles.value(i)) == want.value(i)));

        let other = original.project(&[0, 1]).expect("project");
        let mut sink =
            ParquetSink::create(dir.path().join("b.parquet"), other.schema(), None).expect("sink");
        sink.write(&other).expect("write");
        sink.close().expect("close");
        let err = SourceSpec::Parquet(FileSourceSpec::new("*.parquet"))
            .build(dir.path())
            .expect_err("mismatch");
        assert!(matches!(err, Error::Schema { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("b.parquet has columns [ts: Timestamp(ms, \"UTC\"), segment_id: Int64]"),
            "{err}"
        );
    }

    /// Writes `batch` to `path` in row groups of at most `group_rows` rows.
    fn write_groups(path: &Path, batch: &RecordBatch, group_rows: usize) {
        use parquet::arrow::ArrowWriter;
        use parquet::file::properties::WriterProperties;
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let file = File::create(path).expect("create");
        let mut writer =
            ArrowWriter::try_new(file, batch.schema(), Some(properties)).expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
    }

    #[test]
    fn files_of_several_row_groups_resume_at_every_batch_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = telemetry(40);
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        // 40 rows as 7 + 7 + 7 + 7 + 7 + 5, and 9 rows as 4 + 4 + 1.
        write_groups(&a, &original, 7);
        write_groups(&b, &original.slice(10, 9), 4);
        let groups = |path: &Path| {
            let file = File::open(path).expect("open");
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("footer");
            builder.metadata().num_row_groups()
        };
        assert_eq!((groups(&a), groups(&b)), (6, 3));
        for batch_rows in [3, 7, 16] {
            let open = || {
                let files = vec![a.clone(), b.clone()];
                let source = ParquetSource::new("t", files, &[], None).expect("source");
                let ctx = SourceContext {
                    batch_rows,
                    projection: Some(vec![0, 4]),
                };
                Box::new(source).open(&ctx).expect("open")
            };
            let read = crate::resume::assert_resumes_everywhere(&open);
            let (first, second) = (
                crate::resume::flatten(&read[0]),
                crate::resume::flatten(&read[1]),
            );
            assert_eq!(
                first.rows.as_ref(),
                Some(&original),
                "batch_rows {batch_rows}"
            );
            assert_eq!(first.locations, (0..40).collect::<Vec<u64>>());
            assert_eq!(second.rows, Some(original.slice(10, 9)));
            assert_eq!(second.locations, (0..9).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn start_at_skips_whole_row_groups_then_rows() {
        let groups = || [7u64, 0, 7, 5].into_iter();
        assert_eq!(start_at(groups(), 0), Some((vec![0, 1, 2, 3], 0)));
        assert_eq!(start_at(groups(), 3), Some((vec![0, 1, 2, 3], 3)));
        // The empty group right after the first one is skipped with it.
        assert_eq!(start_at(groups(), 7), Some((vec![2, 3], 0)));
        assert_eq!(start_at(groups(), 10), Some((vec![2, 3], 3)));
        assert_eq!(start_at(groups(), 14), Some((vec![3], 0)));
        assert_eq!(start_at(groups(), 19), Some((vec![], 0)));
        assert_eq!(start_at(groups(), 20), None);
    }

    #[test]
    fn a_position_past_the_last_row_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.parquet");
        write_groups(&path, &telemetry(5), 2);
        let open = || {
            let source = ParquetSource::new("a", vec![path.clone()], &[], None).expect("source");
            Box::new(source)
                .open(&SourceContext::default())
                .expect("open")
                .remove(0)
        };
        let at = |offset, records| Position { offset, records };
        let mut end = open();
        end.seek(at(5, 5)).expect("the end is a position");
        assert!(end.next_batch().expect("no more rows").is_none());
        let mut past = open();
        past.seek(at(6, 6))
            .expect("checked when the file is opened");
        let err = past.next_batch().expect_err("past the end").to_string();
        assert!(err.contains("cannot resume after row 6"), "{err}");
        assert!(err.contains("a.parquet"), "{err}");
        assert!(open().seek(at(2, 3)).is_err());
    }
}

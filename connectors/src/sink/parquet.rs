//! The `parquet` sink: one Snappy-compressed file, or numbered part files of at most N rows (also
//! one part of exactly-once output).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sluice_engine::sink::Sink;
use sluice_engine::{Error, Result};

use super::parts::PartWriter;
use super::sink_error;

/// Writes batches to Parquet. With rotation, `path` is a folder of `part-00000.parquet`, ...
///
/// A Parquet file is readable only once its footer is written, so rows become visible when a
/// part is full or at `close`; `flush` hands finished row groups to the operating system but
/// does not cut small row groups, which would make the files slow to read.
pub struct ParquetSink {
    path: PathBuf,
    schema: SchemaRef,
    rotate_rows: Option<usize>,
    /// The file being written, opened when rows arrive for it.
    writer: Option<(PathBuf, ArrowWriter<File>)>,
    rows_in_file: usize,
    files: usize,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("path", &self.path)
            .field("rotate_rows", &self.rotate_rows)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ParquetSink {
    /// Creates the output for batches of `schema`: the file `path`, or with `rotate_rows = N`
    /// the folder `path` (old `part-*.parquet` files in it are removed, so no stale part is read
    /// back with the new ones).
    pub fn create(path: PathBuf, schema: SchemaRef, rotate_rows: Option<usize>) -> Result<Self> {
        let mut sink = ParquetSink {
            path,
            schema,
            rotate_rows,
            writer: None,
            rows_in_file: 0,
            files: 0,
        };
        match rotate_rows {
            Some(0) => return Err(Error::config("sink.rotate_rows", "must be at least 1")),
            Some(_) => {
                std::fs::create_dir_all(&sink.path).map_err(Error::io(&sink.path))?;
                remove_old_parts(&sink.path)?;
            }
            None => sink.open_next()?,
        }
        Ok(sink)
    }

    /// The files written or being written so far.
    pub fn files(&self) -> usize {
        self.files
    }

    fn open_next(&mut self) -> Result<()> {
        let path = match self.rotate_rows {
            Some(_) => self.path.join(format!("part-{:05}.parquet", self.files)),
            None => self.path.clone(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let file = File::create(&path).map_err(Error::io(&path))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(properties))
            .map_err(sink_error(&path))?;
        self.writer = Some((path, writer));
        self.rows_in_file = 0;
        self.files += 1;
        Ok(())
    }

    fn finish_file(&mut self) -> Result<()> {
        if let Some((path, mut writer)) = self.writer.take() {
            writer.finish().map_err(sink_error(&path))?;
            writer.sync().map_err(Error::io(&path))?;
        }
        Ok(())
    }
}

fn remove_old_parts(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let file = entry.map_err(Error::io(dir))?.path();
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("part-") && name.ends_with(".parquet") {
            std::fs::remove_file(&file).map_err(Error::io(&file))?;
        }
    }
    Ok(())
}

impl Sink for ParquetSink {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let limit = self.rotate_rows.unwrap_or(usize::MAX);
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.writer.is_none() {
                self.open_next()?;
            }
            let take = (limit - self.rows_in_file).min(batch.num_rows() - offset);
            if let Some((path, writer)) = &mut self.writer {
                writer
                    .write(&batch.slice(offset, take))
                    .map_err(sink_error(path))?;
            }
            self.rows_in_file += take;
            offset += take;
            if self.rows_in_file >= limit {
                self.finish_file()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        match &mut self.writer {
            Some((path, writer)) => writer.sync().map_err(Error::io(path.as_path())),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<()> {
        if self.files == 0 {
            // No rows at all: still leave one (empty) file that records the schema.
            self.open_next()?;
        }
        self.finish_file()
    }
}

/// As a part of exactly-once output, a single-file sink; `PartSink` does the rotation, so that
/// parts never span two epochs.
impl PartWriter for ParquetSink {
    const EXTENSION: &'static str = "parquet";
    type Options = SchemaRef;

    fn create_part(path: PathBuf, schema: &Self::Options) -> Result<Self> {
        ParquetSink::create(path, schema.clone(), None)
    }

    fn finish_part(&mut self) -> Result<()> {
        if let Some((path, mut writer)) = self.writer.take() {
            writer.finish().map_err(sink_error(&path))?;
            writer.inner().sync_all().map_err(Error::io(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::outputs::{Output, commit_epochs, on_every_output};
    use arrow::array::{ArrayRef, Int64Array};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
        let ids: Vec<i64> = ids.collect();
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(ids)) as ArrayRef)])
            .expect("batch")
    }

    /// The ids in a Parquet file; reading it needs its footer.
    fn read_ids(file: Bytes) -> Vec<i64> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("footer")
            .build()
            .expect("reader");
        let mut ids = Vec::new();
        for b in reader {
            let b = b.expect("batch");
            let id = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids");
            ids.extend(id.values().iter().copied());
        }
        ids
    }

    on_every_output!(
        exactly_once_parts_read_back_in_epoch_order,
        exactly_once_parts_rotate_within_an_epoch,
        an_unfinished_part_is_never_published,
    );

    fn exactly_once_parts_read_back_in_epoch_order(out: &Output) {
        let mut sink = out.sink::<ParquetSink>(batch(0..0).schema(), None);
        let rows = commit_epochs(
            &mut sink,
            &[vec![batch(0..3), batch(3..5)], vec![], vec![batch(5..9)]],
        );
        assert_eq!(rows, [vec![5], vec![4]]);
        let names = out.published();
        assert_eq!(names, ["part-00000001.parquet", "part-00000003.parquet"]);
        let ids: Vec<i64> = names.iter().flat_map(|n| read_ids(out.read(n))).collect();
        assert_eq!(ids, (0..9).collect::<Vec<_>>());
        assert_eq!(out.staged(), Vec::<String>::new());
    }

    fn exactly_once_parts_rotate_within_an_epoch(out: &Output) {
        let mut sink = out.sink::<ParquetSink>(batch(0..0).schema(), Some(2));
        let rows = commit_epochs(
            &mut sink,
            &[vec![batch(0..3), batch(3..5)], vec![batch(5..6)]],
        );
        assert_eq!(rows, [vec![2, 2, 1], vec![1]]);
        let names = out.published();
        assert_eq!(
            names,
            [
                "part-00000001-000.parquet",
                "part-00000001-001.parquet",
                "part-00000001-002.parquet",
                "part-00000002-000.parquet"
            ]
        );
        let parts: Vec<Vec<i64>> = names.iter().map(|n| read_ids(out.read(n))).collect();
        assert_eq!(parts, [vec![0, 1], vec![2, 3], vec![4], vec![5]]);
    }

    fn an_unfinished_part_is_never_published(out: &Output) {
        let schema = batch(0..0).schema();
        let mut first = out.sink::<ParquetSink>(schema.clone(), Some(2));
        first.write(&batch(0..3)).expect("write"); // one full part, one open: no footer yet
        drop(first);
        let mut second = out.sink::<ParquetSink>(schema, Some(2));
        second.recover(0, &[]).expect("recover");
        assert_eq!(out.published(), Vec::<String>::new());
        assert_eq!(out.staged(), Vec::<String>::new());
    }
}

//! The `parquet` sink: one Snappy-compressed file, or numbered part files of at most N rows.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sluice_engine::sink::Sink;
use sluice_engine::{Error, Result};

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

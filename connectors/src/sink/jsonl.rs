//! The `jsonl` sink: one JSON object per row in one file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::LineDelimitedWriter;
use sluice_engine::sink::Sink;
use sluice_engine::{Error, Result};

use super::{create_file, sink_error};

/// Writes batches as JSON lines to one file.
pub struct JsonlSink {
    path: PathBuf,
    writer: LineDelimitedWriter<BufWriter<File>>,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JsonlSink {
    /// Creates `path` (and its folders). Rows carry their own keys, so `schema` is not needed to
    /// write; it is taken for symmetry with the other file sinks.
    pub fn create(path: PathBuf, _schema: SchemaRef) -> Result<Self> {
        let writer = LineDelimitedWriter::new(create_file(&path)?);
        Ok(JsonlSink { path, writer })
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(sink_error(&self.path))
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.get_mut().flush().map_err(Error::io(&self.path))
    }

    fn close(&mut self) -> Result<()> {
        self.writer.finish().map_err(sink_error(&self.path))?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn writes_one_object_per_row_and_leaves_out_nulls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("o.jsonl");
        let batch = RecordBatch::try_from_iter([
            (
                "k",
                Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            ),
            (
                "v",
                Arc::new(Float64Array::from(vec![1.5, -2.0])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let mut sink = JsonlSink::create(path.clone(), batch.schema()).expect("create");
        sink.write(&batch).expect("write");
        sink.close().expect("close");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"k\":\"a\",\"v\":1.5}\n{\"v\":-2.0}\n");
    }
}

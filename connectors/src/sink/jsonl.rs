//! The `jsonl` sink: one JSON object per row in one file; also a part of exactly-once output.
//!
//! Every object has every column as a key, `null` when the value is null, so that each line
//! says what the output's columns are (a dead letter always has `line` and `row`) and a reader
//! inferring columns from the first lines sees them all.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::{LineDelimitedWriter, WriterBuilder};
use sluice_engine::sink::Sink;
use sluice_engine::{Error, Result};

use super::parts::PartWriter;
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
        let writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build(create_file(&path)?);
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

impl PartWriter for JsonlSink {
    const EXTENSION: &'static str = "jsonl";
    type Options = SchemaRef;

    fn create_part(path: PathBuf, schema: &Self::Options) -> Result<Self> {
        JsonlSink::create(path, schema.clone())
    }

    fn finish_part(&mut self) -> Result<()> {
        self.close()?;
        let file = self.writer.get_ref().get_ref();
        file.sync_all().map_err(Error::io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn writes_one_object_per_row_with_every_column() {
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
        assert_eq!(text, "{\"k\":\"a\",\"v\":1.5}\n{\"k\":null,\"v\":-2.0}\n");
    }

    crate::sink::outputs::on_every_output!(exactly_once_parts_read_back_in_epoch_order);

    fn exactly_once_parts_read_back_in_epoch_order(out: &crate::sink::outputs::Output) {
        use crate::sink::parts::PartSink;
        use arrow::array::Int64Array;
        use arrow::json::ReaderBuilder;

        let batch = |ids: Vec<i64>, names: Vec<Option<&str>>| {
            RecordBatch::try_from_iter([
                ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
                ("name", Arc::new(StringArray::from(names)) as ArrayRef),
            ])
            .expect("batch")
        };
        let epochs = [
            vec![batch(vec![1, 2], vec![Some("a"), None])],
            vec![],
            vec![
                batch(vec![3], vec![Some("c")]),
                batch(vec![4], vec![Some("d")]),
            ],
        ];
        // The first batch has a null name, so its schema says the column is nullable.
        let schema = epochs[0][0].schema();
        let mut sink: PartSink<JsonlSink> = out.sink(schema.clone(), None);
        crate::sink::outputs::commit_epochs(&mut sink, &epochs);

        let names = out.published();
        assert_eq!(names, ["part-00000001.jsonl", "part-00000003.jsonl"]);
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        for name in &names {
            let reader = ReaderBuilder::new(schema.clone())
                .build(std::io::Cursor::new(out.read(name)))
                .expect("reader");
            for b in reader {
                let b = b.expect("batch");
                let id = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("ids");
                let text = b
                    .column(1)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("names");
                ids.extend(id.values().iter().copied());
                texts.extend(text.iter().map(|t| t.map(str::to_string)));
            }
        }
        assert_eq!(ids, [1, 2, 3, 4]);
        let expected = [Some("a"), None, Some("c"), Some("d")].map(|t| t.map(str::to_string));
        assert_eq!(texts, expected);
    }
}

//! The `csv` sink: one CSV file, header written once; also a part of exactly-once output.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::csv::WriterBuilder;
use arrow::datatypes::SchemaRef;
use sluice_engine::sink::Sink;
use sluice_engine::{Error, Result};

use super::parts::PartWriter;
use super::{create_file, sink_error};

/// Writes batches to one CSV file.
#[derive(Debug)]
pub struct CsvSink {
    path: PathBuf,
    schema: SchemaRef,
    out: BufWriter<File>,
    /// Whether a header is still to be written before the next rows.
    header_due: bool,
}

impl CsvSink {
    /// Creates `path` (and its folders) for batches of `schema`, with a header line if `header`.
    pub fn create(path: PathBuf, schema: SchemaRef, header: bool) -> Result<Self> {
        let out = create_file(&path)?;
        Ok(CsvSink {
            path,
            schema,
            out,
            header_due: header,
        })
    }
}

impl Sink for CsvSink {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        // A writer per batch keeps the buffered file in our hands, so `flush` can reach it; the
        // Arrow writer itself holds nothing between batches.
        let mut writer = WriterBuilder::new()
            .with_header(self.header_due)
            .build(&mut self.out);
        writer.write(batch).map_err(sink_error(&self.path))?;
        self.header_due = false;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(Error::io(&self.path))
    }

    fn close(&mut self) -> Result<()> {
        if self.header_due {
            // Nothing was written: still leave a header so the file says what it would hold.
            self.write(&RecordBatch::new_empty(self.schema.clone()))?;
        }
        self.flush()
    }
}

/// As a part of exactly-once output, each part is a CSV file of its own, with its own header.
impl PartWriter for CsvSink {
    const EXTENSION: &'static str = "csv";
    /// The schema, and whether each part starts with a header line.
    type Options = (SchemaRef, bool);

    fn create_part(path: PathBuf, (schema, header): &Self::Options) -> Result<Self> {
        CsvSink::create(path, schema.clone(), *header)
    }

    fn finish_part(&mut self) -> Result<()> {
        self.close()?;
        self.out.get_ref().sync_all().map_err(Error::io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch(ids: Vec<i64>, names: Vec<&str>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
            ("name", Arc::new(StringArray::from(names)) as ArrayRef),
        ])
        .expect("batch")
    }

    #[test]
    fn writes_the_header_once_and_quotes_when_needed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out/nested/o.csv");
        let first = batch(vec![1, 2], vec!["a", "b,c"]);
        let mut sink = CsvSink::create(path.clone(), first.schema(), true).expect("create");
        sink.write(&first).expect("write");
        sink.flush().expect("flush");
        sink.write(&batch(vec![3], vec!["d"])).expect("write");
        sink.close().expect("close");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "id,name\n1,a\n2,\"b,c\"\n3,d\n");
    }

    #[test]
    fn an_empty_output_still_has_its_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("o.csv");
        let mut sink =
            CsvSink::create(path.clone(), batch(vec![], vec![]).schema(), true).expect("create");
        sink.close().expect("close");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "id,name\n");
    }

    #[test]
    fn an_unwritable_path_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("file"), "x").expect("write");
        let path = dir.path().join("file/o.csv");
        let err =
            CsvSink::create(path, batch(vec![], vec![]).schema(), true).expect_err("under a file");
        assert!(
            err.to_string()
                .starts_with(&dir.path().join("file").display().to_string()),
            "{err}"
        );
    }

    crate::sink::outputs::on_every_output!(exactly_once_parts_read_back_in_epoch_order);

    fn exactly_once_parts_read_back_in_epoch_order(out: &crate::sink::outputs::Output) {
        use crate::sink::parts::PartSink;
        use arrow::csv::ReaderBuilder;

        let schema = batch(vec![], vec![]).schema();
        let mut sink: PartSink<CsvSink> = out.sink((schema.clone(), true), None);
        let epochs = [
            vec![
                batch(vec![1, 2], vec!["a", "b,c"]),
                batch(vec![3], vec!["d"]),
            ],
            vec![],
            vec![batch(vec![4, 5], vec!["e", "f"])],
        ];
        crate::sink::outputs::commit_epochs(&mut sink, &epochs);

        let names = out.published();
        assert_eq!(names, ["part-00000001.csv", "part-00000003.csv"]);
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        for name in &names {
            let reader = ReaderBuilder::new(schema.clone())
                .with_header(true)
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
                texts.extend(text.iter().map(|t| t.expect("no nulls").to_string()));
            }
        }
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert_eq!(texts, ["a", "b,c", "d", "e", "f"]);
        // Each part is a CSV file of its own: it starts with the header.
        assert_eq!(out.text(&names[1]), "id,name\n4,e\n5,f\n");
    }
}

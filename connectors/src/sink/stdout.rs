//! The `stdout` sink: aligned tables or JSON lines on standard output.

use std::io::{ErrorKind, Write};

use arrow::array::RecordBatch;
use arrow::json::WriterBuilder;
use arrow::util::pretty::pretty_format_batches;
use sluice_engine::sink::Sink;
use sluice_engine::{Error, Result};

use crate::spec::StdoutFormat;

/// Prints batches for people (tables) or tools (JSON lines).
///
/// Each batch is formatted in memory and written with one `write_all`, which holds the stdout
/// lock for the whole batch, so log lines from other threads cannot split a table. When the
/// reader goes away (`sluice run ... | head`), output stops quietly instead of failing the job.
pub struct StdoutSink {
    format: StdoutFormat,
    out: Box<dyn Write + Send>,
    /// Set once the reader has closed the pipe.
    closed: bool,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink")
            .field("format", &self.format)
            .field("closed", &self.closed)
            .finish()
    }
}

impl StdoutSink {
    /// Prints to standard output.
    pub fn new(format: StdoutFormat) -> Self {
        Self::with_writer(format, Box::new(std::io::stdout()))
    }

    /// Prints to `out` instead (tests, embedding).
    pub fn with_writer(format: StdoutFormat, out: Box<dyn Write + Send>) -> Self {
        StdoutSink {
            format,
            out,
            closed: false,
        }
    }

    fn format(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        match self.format {
            StdoutFormat::Table => {
                let table =
                    pretty_format_batches(std::slice::from_ref(batch)).map_err(stdout_error)?;
                Ok(format!("{table}\n").into_bytes())
            }
            StdoutFormat::Jsonl => {
                // Every column on every line, as the `jsonl` sink writes them.
                let mut writer = WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
                writer.write(batch).map_err(stdout_error)?;
                writer.finish().map_err(stdout_error)?;
                Ok(writer.into_inner())
            }
        }
    }

    /// Runs an output step, turning a closed pipe into a quiet stop.
    fn guard(&mut self, step: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match step(&mut *self.out) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(stdout_error),
        }
    }
}

fn stdout_error<E: std::fmt::Display>(e: E) -> Error {
    Error::Sink {
        name: "stdout".to_string(),
        message: e.to_string(),
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> String {
        "stdout".to_string()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.closed || batch.num_rows() == 0 {
            return Ok(());
        }
        let bytes = self.format(batch)?;
        self.guard(|out| out.write_all(&bytes))
    }

    fn flush(&mut self) -> Result<()> {
        self.guard(|out| out.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read back, or that fails like a closed pipe.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>, bool);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.1 {
                return Err(std::io::Error::from(ErrorKind::BrokenPipe));
            }
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 20])) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "bb"])) as ArrayRef,
            ),
        ])
        .expect("batch")
    }

    fn printed(format: StdoutFormat) -> String {
        let shared = Shared::default();
        let mut sink = StdoutSink::with_writer(format, Box::new(shared.clone()));
        sink.write(&batch()).expect("write");
        sink.write(&batch().slice(0, 0))
            .expect("empty batches print nothing");
        sink.close().expect("close");
        let bytes = shared.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf8")
    }

    #[test]
    fn tables_are_aligned() {
        let want = "+----+------+\n| id | name |\n+----+------+\n| 1  | a    |\n| 20 | bb   |\n+----+------+\n";
        assert_eq!(printed(StdoutFormat::Table), want);
    }

    #[test]
    fn jsonl_prints_one_object_per_row() {
        assert_eq!(
            printed(StdoutFormat::Jsonl),
            "{\"id\":1,\"name\":\"a\"}\n{\"id\":20,\"name\":\"bb\"}\n"
        );
    }

    #[test]
    fn utc_timestamps_print_in_rfc3339() {
        let ts = arrow::array::TimestampMillisecondArray::from(vec![1_767_225_600_250])
            .with_timezone("UTC");
        let batch = RecordBatch::try_from_iter([("ts", Arc::new(ts) as ArrayRef)]).expect("batch");
        let shared = Shared::default();
        let mut sink = StdoutSink::with_writer(StdoutFormat::Jsonl, Box::new(shared.clone()));
        sink.write(&batch).expect("write");
        let text = String::from_utf8(shared.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(text, "{\"ts\":\"2026-01-01T00:00:00.250Z\"}\n");
    }

    #[test]
    fn a_closed_pipe_stops_output_quietly() {
        let mut sink =
            StdoutSink::with_writer(StdoutFormat::Table, Box::new(Shared(Arc::default(), true)));
        sink.write(&batch()).expect("broken pipe is not an error");
        sink.write(&batch()).expect("and stays quiet");
        sink.close().expect("close");
    }
}

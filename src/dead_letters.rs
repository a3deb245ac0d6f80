//! The default dead-letter output: one JSON object per malformed record on standard error.
//!
//! Used when a job names no `[dead_letter]` sink, so malformed records are never silently lost.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::json::WriterBuilder;
use arrow::json::writer::LineDelimited;
use sluice_engine::error::{Error, Result};
use sluice_engine::sink::Sink;

/// Writes dead letters as JSON lines to stderr.
#[derive(Debug, Default)]
pub struct StderrDeadLetters;

impl Sink for StderrDeadLetters {
    fn name(&self) -> String {
        "stderr".into()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut buffer = Vec::new();
        // Every column on every line: `line` and `row` are both there, one of them null.
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(&mut buffer);
        writer
            .write(batch)
            .map_err(Error::arrow("writing dead letters"))?;
        writer
            .finish()
            .map_err(Error::arrow("writing dead letters"))?;
        let mut stderr = std::io::stderr().lock();
        for line in buffer.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            stderr
                .write_all(b"dead letter: ")
                .map_err(Error::io("stderr"))?;
            stderr.write_all(line).map_err(Error::io("stderr"))?;
            stderr.write_all(b"\n").map_err(Error::io("stderr"))?;
        }
        Ok(())
    }
}

//! The `discard` sink: counts rows and writes nothing, for benchmarks.

use arrow::array::RecordBatch;
use sluice_engine::Result;
use sluice_engine::sink::Sink;

/// Counts what it receives and drops it.
#[derive(Debug, Default)]
pub struct DiscardSink {
    rows: u64,
    batches: u64,
}

impl DiscardSink {
    /// A sink that has seen nothing yet.
    pub fn new() -> Self {
        DiscardSink::default()
    }

    /// Rows received so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Batches received so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

impl Sink for DiscardSink {
    fn name(&self) -> String {
        "discard".to_string()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.batches += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    #[test]
    fn counts_rows_and_batches() {
        let batch = RecordBatch::try_from_iter([(
            "n",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        )])
        .expect("batch");
        let mut sink = DiscardSink::new();
        sink.write(&batch).expect("write");
        sink.write(&batch.slice(0, 1)).expect("write");
        sink.close().expect("close");
        assert_eq!((sink.rows(), sink.batches()), (4, 2));
    }
}

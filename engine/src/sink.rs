//! What a sink is: a place that receives the job's output batches in order.
//!
//! Sinks are synchronous and run on their own thread behind a bounded channel, so a slow sink
//! slows the whole pipeline down (backpressure) instead of letting memory grow.

use std::fmt::Debug;

use arrow::array::RecordBatch;

use crate::error::Result;

/// Receives output batches. Built for one schema, known before any data moves.
pub trait Sink: Send + Debug {
    /// A short name for logs and errors (`stdout`, `out/traffic.csv`).
    fn name(&self) -> String;

    /// Writes one batch. Batches arrive in emission order.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Makes everything written so far durable or visible (called after each watermark step
    /// that emitted rows, and before `close`).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Finishes the output (footers, file renames). Called once at the end of the job.
    fn close(&mut self) -> Result<()> {
        self.flush()
    }
}

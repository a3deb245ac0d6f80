//! What a sink is: a place that receives the job's output batches in order.
//!
//! Sinks are synchronous and run on their own thread behind a bounded channel, so a slow sink
//! slows the whole pipeline down (backpressure) instead of letting memory grow.

use std::fmt::Debug;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

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

    /// Whether the sink wants to hear the job's watermark ([`Sink::watermark`]).
    fn wants_watermarks(&self) -> bool {
        false
    }

    /// The job's watermark moved to `watermark` (after the rows it closed were written), for
    /// a sink that said it [wants](Sink::wants_watermarks) it: a repartition topic passes it
    /// on to the readers downstream.
    fn watermark(&mut self, watermark: i64) -> Result<()> {
        let _ = watermark;
        Ok(())
    }

    /// Finishes the output (footers, file renames). Called once at the end of the job.
    fn close(&mut self) -> Result<()> {
        self.flush()
    }

    /// Whether the sink takes part in checkpoints with a two-phase commit (exactly-once
    /// output). Sinks that do not (stdout, discard) write through: after a restart they may
    /// repeat what they wrote since the last checkpoint.
    fn transactional(&self) -> bool {
        false
    }

    /// Phase one, at the checkpoint of `epoch`: makes everything written since the previous
    /// `prepare` durable in a staging place that readers do not see, and says what it staged
    /// (`None`: nothing). The runtime stores the answer in the checkpoint.
    fn prepare(&mut self, epoch: u64) -> Result<Option<Staged>> {
        let _ = epoch;
        self.flush()?;
        Ok(None)
    }

    /// Phase two: publishes what `prepare` staged, once the checkpoint holding `staged` has
    /// committed. Must be idempotent: after a crash it runs again for the same `staged`.
    fn commit(&mut self, staged: &Staged) -> Result<()> {
        let _ = staged;
        Ok(())
    }

    /// On restart from the checkpoint of `epoch`, before any write: `staged` is what that
    /// checkpoint recorded and may not have been published yet. Publishes those (as
    /// `commit`), discards every other staged leftover, and removes output published for
    /// epochs after `epoch` (an older checkpoint was chosen): all of it will be produced
    /// again.
    fn recover(&mut self, epoch: u64, staged: &[Staged]) -> Result<()> {
        let _ = epoch;
        staged.iter().try_for_each(|s| self.commit(s))
    }
}

/// What a transactional sink staged for one epoch: files to move into place on commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// The epoch (checkpoint) this output belongs to.
    pub epoch: u64,
    /// The staged parts.
    pub parts: Vec<StagedPart>,
}

/// One staged file and where it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedPart {
    /// Where it is now (invisible to readers of the output).
    pub staged: String,
    /// Where `commit` puts it.
    pub target: String,
    /// Rows in it.
    pub rows: u64,
}

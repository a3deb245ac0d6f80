//! The messages between the runtime's stages: what readers send the driver, what the driver
//! applies to the watermark, and what it tells each sink writer.
//!
//! Watermarks are event-time milliseconds (`i64`; [`crate::watermark::END_OF_INPUT`] once
//! every partition finished) and epochs are checkpoint ids (`u64`, one per checkpoint, in
//! order): one page to read to know what flows where.

use arrow::array::RecordBatch;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::sink::Staged;
use crate::source::{DeadLetter, Position};

/// What reader threads send to the driver.
pub(super) enum FromSource {
    /// A batch of a partition, its latest event time and the rows that could not be read.
    Data {
        partition: usize,
        batch: RecordBatch,
        max_ts: Option<i64>,
        dead: Vec<DeadLetter>,
        /// Where the partition stands after this batch (checkpoints only).
        position: Option<Position>,
    },
    /// The partition has no more rows.
    End {
        partition: usize,
        position: Option<Position>,
    },
    /// A reader opened a partition that waited for room (it was deferred: see
    /// [`super::reader::ReaderPool::deferred`]); from now on it may turn idle.
    Opened { partition: usize },
    /// The source's partitions changed (see `SourcePartition::partitions_changed`).
    PartitionsChanged(String),
    /// Reading failed; the job stops with this error.
    Failed(Error),
}

/// A watermark-relevant fact, applied once the rows before it have been processed.
pub(super) enum Progress {
    /// Partition `.0` has sent rows up to event time `.1` (`None`: its batch carried no event time).
    Observe(usize, Option<i64>),
    /// Partition `.0` ended: it no longer holds the watermark back.
    Finish(usize),
}

/// What the driver tells a sink writer, in order.
pub(super) enum SinkCommand {
    /// Rows to write.
    Write(RecordBatch),
    /// The end of a micro-batch: write out what is buffered.
    Flush,
    /// The job's watermark moved (only to sinks that want it).
    Watermark(i64),
    /// Phase one of the checkpoint of an epoch; the answer is what was staged. A failure is
    /// the checkpoint's, not the sink's: the sink keeps what it could not stage for the next.
    Prepare(u64, oneshot::Sender<Result<Option<Staged>>>),
    /// Phase two: the checkpoint holding this is complete. A failure leaves it for a later
    /// commit (commits are idempotent).
    Commit(Staged, oneshot::Sender<Result<()>>),
    /// Resuming from the checkpoint of an epoch, which staged these.
    Recover(u64, Vec<Staged>, oneshot::Sender<()>),
}

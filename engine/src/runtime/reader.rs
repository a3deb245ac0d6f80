//! Reader threads: a bounded pool that reads every source partition, projecting and
//! normalising each batch before sending it to the driver through the bounded source channel.
//!
//! A job may have far more partitions than a machine has threads (a folder of 33 000 files, a
//! generator with 100 000 partitions): a thread each would abort the process. So a pool of at
//! most [`reader_threads`] threads shares them: each thread takes every n-th partition, keeps
//! up to [`OPEN_PER_THREAD`] of them open and reads one batch from each in turn, so that
//! partitions advance together (the watermark waits for the slowest); a finished partition
//! makes room for the next. With no more partitions than threads, each has a thread, as before.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;

use super::messages::FromSource;
use crate::error::{Error, Result};
use crate::event_time::{EventTimeSpec, RowOrigin, normalize};
use crate::metrics::Metrics;
use crate::source::{Position, SourceBatch, SourcePartition};

/// What a reader thread does to each batch before sending it: project, normalise event time.
pub(super) struct Reader {
    pub(super) event_time: Arc<EventTimeSpec>,
    pub(super) schema: SchemaRef,
    pub(super) projection: Option<Vec<usize>>,
}

impl Reader {
    fn prepare(
        &self,
        read: SourceBatch,
        partition: usize,
        name: &str,
        position: Option<Position>,
        watermarks_from_source: bool,
    ) -> FromSource {
        let SourceBatch {
            batch,
            mut dead_letters,
            locations,
            raw,
            watermark,
        } = read;
        // Sources may ignore the projection hint; drop the columns the job does not read.
        let batch = match &self.projection {
            Some(indices) if batch.num_columns() != indices.len() => match batch.project(indices) {
                Ok(b) => b,
                Err(e) => {
                    return FromSource::Failed(Error::arrow(format!(
                        "projecting batches of {name}"
                    ))(e));
                }
            },
            _ => batch,
        };
        let origin = RowOrigin {
            source: name,
            locations: locations.as_ref(),
            raw: raw.as_ref(),
        };
        match normalize(&self.event_time, &self.schema, batch, origin) {
            Ok(n) => {
                dead_letters.extend(n.rejected);
                // The tracker takes a partition's watermark as its largest time minus the
                // delay; a watermark the source gives is that largest time less the delay.
                let max_ts = if watermarks_from_source {
                    watermark.map(|w| w.saturating_add(self.event_time.watermark_delay))
                } else {
                    n.max_ts
                };
                FromSource::Data {
                    partition,
                    batch: n.batch,
                    max_ts,
                    dead: dead_letters,
                    position,
                }
            }
            Err(e) => FromSource::Failed(e),
        }
    }
}

/// The most reader threads a job starts: twice the cores, at least 4. Reading is mostly
/// decoding, so more threads than that only contend; fewer would leave cores idle.
pub(super) fn reader_threads(partitions: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
    partitions.min((2 * cores).max(4)).max(1)
}

/// Partitions one reader thread keeps open at once (each may hold a file descriptor and a
/// read buffer); the others wait their turn.
pub(super) const OPEN_PER_THREAD: usize = 32;

/// A partition with what is done to its batches and its index in the job.
pub(super) struct ReaderTask {
    pub(super) partition: usize,
    pub(super) source: Box<dyn SourcePartition>,
    pub(super) reader: Reader,
}

/// The reader threads of a job.
pub(super) struct ReaderPool {
    pub(super) threads: Vec<std::thread::JoinHandle<()>>,
    /// Partitions that wait for room in their thread before they are opened: they send
    /// [`FromSource::Opened`] first, and until then count as neither active nor idle.
    pub(super) deferred: Vec<usize>,
}

/// Starts the pool reading `tasks` (in order: partition `i` of `tasks` goes to thread
/// `i % threads`).
pub(super) fn spawn_readers(
    tasks: Vec<ReaderTask>,
    tx: &mpsc::Sender<FromSource>,
    stop: &Arc<AtomicBool>,
    metrics: &Arc<Metrics>,
) -> Result<ReaderPool> {
    let threads = reader_threads(tasks.len());
    let mut lanes: Vec<VecDeque<ReaderTask>> = (0..threads).map(|_| VecDeque::new()).collect();
    let mut deferred = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let lane = &mut lanes[i % threads];
        if lane.len() >= OPEN_PER_THREAD {
            deferred.push(task.partition);
        }
        lane.push_back(task);
    }
    let handles = lanes
        .into_iter()
        .enumerate()
        .map(|(t, lane)| {
            let (tx, stop, metrics) = (tx.clone(), stop.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("sluice-source-{t}"))
                .spawn(move || read_lane(lane, &tx, &stop, &metrics))
                .map_err(|e| Error::Internal(format!("cannot start a source thread: {e}")))
        })
        .collect::<Result<_>>()?;
    Ok(ReaderPool {
        threads: handles,
        deferred,
    })
}

/// How long a reader thread rests when every partition it has open said "nothing yet" in a
/// row (each already waited a little inside `next_batch`): short enough to add no noticeable
/// latency, long enough not to spin.
const QUIET_REST: std::time::Duration = std::time::Duration::from_millis(5);

/// One reader thread: one batch from each open partition in turn until all have ended.
fn read_lane(
    mut waiting: VecDeque<ReaderTask>,
    tx: &mpsc::Sender<FromSource>,
    stop: &AtomicBool,
    metrics: &Metrics,
) {
    let mut open: VecDeque<(ReaderTask, String)> = VecDeque::new();
    let mut first_round = true;
    // Partitions in a row that had nothing to give.
    let mut quiet = 0;
    while !stop.load(Ordering::Relaxed) {
        while open.len() < OPEN_PER_THREAD
            && let Some(task) = waiting.pop_front()
        {
            // Partitions opened at the start were never deferred; later ones say they opened.
            if !first_round
                && tx
                    .blocking_send(FromSource::Opened {
                        partition: task.partition,
                    })
                    .is_err()
            {
                return;
            }
            let name = task.source.name();
            open.push_back((task, name));
        }
        first_round = false;
        let Some((mut task, name)) = open.pop_front() else {
            return;
        };
        let partition = task.partition;
        let read = task.source.next_batch();
        if let Some(records) = task.source.backlog() {
            metrics.set_backlog(partition, &name, records);
        }
        if let Some(why) = task.source.partitions_changed()
            && tx
                .blocking_send(FromSource::PartitionsChanged(why))
                .is_err()
        {
            return;
        }
        let message = match read {
            // "Nothing yet": not sent, so it is no sign of activity; ask again next round.
            Ok(Some(read))
                if read.batch.num_rows() == 0
                    && read.dead_letters.is_empty()
                    && read.watermark.is_none() =>
            {
                open.push_back((task, name));
                quiet += 1;
                if quiet >= open.len() {
                    quiet = 0;
                    std::thread::sleep(QUIET_REST);
                }
                continue;
            }
            Ok(Some(read)) => {
                let from_source = task.source.watermarks_from_source();
                task.reader
                    .prepare(read, partition, &name, task.source.position(), from_source)
            }
            Ok(None) => FromSource::End {
                partition,
                position: task.source.position(),
            },
            Err(e) => FromSource::Failed(e),
        };
        quiet = 0;
        let more = matches!(message, FromSource::Data { .. });
        let failed = matches!(message, FromSource::Failed(_));
        if tx.blocking_send(message).is_err() || failed {
            return;
        }
        if more {
            open.push_back((task, name));
        }
    }
}

//! Reader threads: one per source partition, projecting and normalising each batch before
//! sending it to the driver through the bounded source channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::event_time::{EventTimeSpec, normalize};
use crate::source::{DeadLetter, Position, SourceBatch, SourcePartition};

/// What reader threads send to the driver.
pub(super) enum FromSource {
    Data {
        partition: usize,
        batch: RecordBatch,
        max_ts: Option<i64>,
        dead: Vec<DeadLetter>,
        /// Where the partition stands after this batch (checkpoints only).
        position: Option<Position>,
    },
    End {
        partition: usize,
        position: Option<Position>,
    },
    Failed(Error),
}

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
    ) -> FromSource {
        let SourceBatch {
            batch,
            mut dead_letters,
            locations,
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
        match normalize(
            &self.event_time,
            &self.schema,
            batch,
            name,
            locations.as_deref(),
        ) {
            Ok(n) => {
                dead_letters.extend(n.rejected);
                FromSource::Data {
                    partition,
                    batch: n.batch,
                    max_ts: n.max_ts,
                    dead: dead_letters,
                    position,
                }
            }
            Err(e) => FromSource::Failed(e),
        }
    }
}

pub(super) fn spawn_reader(
    partition: usize,
    mut part: Box<dyn SourcePartition>,
    tx: mpsc::Sender<FromSource>,
    reader: Reader,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("sluice-source-{partition}"))
        .spawn(move || {
            let name = part.name();
            while !stop.load(Ordering::Relaxed) {
                let message = match part.next_batch() {
                    Ok(Some(read)) => reader.prepare(read, partition, &name, part.position()),
                    Ok(None) => FromSource::End {
                        partition,
                        position: part.position(),
                    },
                    Err(e) => FromSource::Failed(e),
                };
                let last = !matches!(message, FromSource::Data { .. });
                if tx.blocking_send(message).is_err() || last {
                    return;
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start a source thread: {e}")))
}

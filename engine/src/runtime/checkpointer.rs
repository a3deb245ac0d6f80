//! Checkpoints of a running job: resuming from one, writing each new one in the background,
//! and saying when its sinks' staged output may be published.
//!
//! The driver takes a checkpoint at an epoch boundary (every row it received processed, the
//! watermark advanced, the sinks' output of the epoch staged); this file turns that into
//! Arrow IPC files plus a manifest and writes them while processing goes on. At most one
//! write is in flight, so sinks publish epochs in order; a write that fails fails the job.

use std::time::Instant;

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::checkpoint::redact::redact;
use crate::checkpoint::{
    CheckpointSpec, CheckpointStore, JobState, Manifest, NewCheckpoint, OperatorState, Resume,
    SinkStates,
};
use crate::error::{Error, Result};
use crate::state::{StateSnapshot, batch_from_ipc, batch_to_ipc};

/// A checkpoint to resume from, read and verified.
#[derive(Debug)]
pub(super) struct Restored {
    pub id: u64,
    pub epoch: u64,
    pub job: JobState,
    pub states: Vec<(usize, StateSnapshot)>,
}

/// The checkpoints of one running job.
#[derive(Debug)]
pub(super) struct Checkpointer {
    store: CheckpointStore,
    spec: CheckpointSpec,
    next_id: u64,
    /// The epoch of the next checkpoint.
    epoch: u64,
    /// When the next periodic checkpoint is due.
    pub due: Instant,
    in_flight: Option<InFlight>,
    /// The id of the last checkpoint known complete.
    pub last: Option<u64>,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    task: JoinHandle<Result<Manifest>>,
    staged: SinkStates,
}

impl Checkpointer {
    /// Opens the store and reads the checkpoint to resume from, if any.
    pub async fn open(spec: &CheckpointSpec) -> Result<(Self, Option<Restored>)> {
        spec.validate()?;
        let store = CheckpointStore::open(&spec.location)?;
        let loaded = match spec.resume {
            Resume::Latest => store.load_latest().await?,
            Resume::Id(id) => Some(store.load(id).await?),
        };
        let restored =
            match loaded {
                None => None,
                Some(loaded) => {
                    for why in &loaded.skipped {
                        warn(&format!("skipping a damaged checkpoint: {why}"));
                    }
                    let job: JobState = serde_json::from_value(loaded.manifest.info.clone())
                        .map_err(|e| Error::Checkpoint {
                            location: spec.location.clone(),
                            message: format!(
                                "checkpoint {} does not describe a job: {e}",
                                loaded.manifest.id
                            ),
                        })?;
                    let mut states = Vec::with_capacity(job.operators.len());
                    for op in &job.operators {
                        let batches = op
                            .files
                            .iter()
                            .map(|name| {
                                let bytes =
                                    loaded.files.get(name).ok_or_else(|| Error::Checkpoint {
                                        location: spec.location.clone(),
                                        message: format!("checkpoint lacks {name}"),
                                    })?;
                                batch_from_ipc(bytes)
                            })
                            .collect::<Result<Vec<_>>>()?;
                        states.push((
                            op.index,
                            StateSnapshot::from_parts(op.header.clone(), batches)?,
                        ));
                    }
                    Some(Restored {
                        id: loaded.manifest.id,
                        epoch: loaded.manifest.epoch,
                        job,
                        states,
                    })
                }
            };
        let checkpointer = Checkpointer {
            next_id: store.next_id().await?,
            epoch: restored.as_ref().map_or(1, |r| r.epoch + 1),
            store,
            due: Instant::now() + spec.interval,
            spec: spec.clone(),
            in_flight: None,
            last: restored.as_ref().map(|r| r.id),
        };
        Ok((checkpointer, restored))
    }

    /// Time between checkpoints.
    pub fn interval(&self) -> std::time::Duration {
        self.spec.interval
    }

    /// The epoch the next checkpoint closes.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the write in flight has ended (its outcome is ready for [`Self::complete`]).
    pub fn write_done(&self) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f.task.is_finished())
    }

    /// Starts writing the checkpoint of the current epoch: `job` with `states` as files.
    /// The previous write must be complete.
    pub fn start(&mut self, mut job: JobState, states: Vec<(usize, StateSnapshot)>) -> Result<()> {
        if self.in_flight.is_some() {
            return Err(Error::Internal(
                "a checkpoint write is still in flight".into(),
            ));
        }
        let (id, epoch) = (self.next_id, self.epoch);
        self.next_id += 1;
        self.epoch += 1;
        self.due = Instant::now() + self.spec.interval;
        let mut batches = Vec::new();
        for (index, state) in states {
            let mut files = Vec::with_capacity(state.batches.len());
            for (name, batch) in &state.batches {
                let file = format!("op{index}.{name}.arrow");
                files.push(file.clone());
                batches.push((file, batch.clone()));
            }
            job.operators.push(OperatorState {
                index,
                header: state.header(),
                files,
            });
        }
        let staged = job.sinks.clone();
        let info = serde_json::to_value(&job)
            .map_err(|e| Error::Internal(format!("encoding checkpoint metadata: {e}")))?;
        let store = self.store.clone();
        let retain = self.spec.retain;
        let task = tokio::spawn(async move {
            // Encoding is CPU work: keep it off the async workers.
            let files = tokio::task::spawn_blocking(move || {
                batches
                    .into_iter()
                    .map(|(name, batch)| Ok((name, Bytes::from(batch_to_ipc(&batch)?))))
                    .collect::<Result<Vec<_>>>()
            })
            .await
            .map_err(|e| Error::Internal(format!("encoding a checkpoint: {e}")))??;
            let manifest = store
                .write(NewCheckpoint {
                    id,
                    epoch,
                    files,
                    info,
                })
                .await?;
            store.retain(retain).await?;
            Ok(manifest)
        });
        self.in_flight = Some(InFlight { id, task, staged });
        Ok(())
    }

    /// Waits for the write in flight (if any); returns what its sinks may now publish.
    pub async fn complete(&mut self) -> Result<Option<SinkStates>> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(None);
        };
        flight
            .task
            .await
            .map_err(|e| Error::Internal(format!("writing a checkpoint: {e}")))??;
        self.last = Some(flight.id);
        Ok(Some(flight.staged))
    }
}

/// Says on stderr what went wrong without stopping the job, never quoting credentials.
fn warn(message: &str) {
    eprintln!("sluice: warning: {}", redact(message));
}

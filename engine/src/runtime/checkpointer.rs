//! Checkpoints of a running job: resuming from one, writing each new one in the background,
//! counting failed ones, and saying when its sinks' staged output may be published.
//!
//! The driver takes a checkpoint at an epoch boundary (every row it received processed, the
//! watermark advanced, the sinks' output of the epoch staged); this file turns that into
//! Arrow IPC files plus a manifest and writes them while processing goes on. At most one
//! write is in flight, so sinks publish epochs in order.
//!
//! A checkpoint fails when a sink cannot stage its output, the write fails (after the
//! store's own retries) or its output cannot be published. Up to `tolerable_failures` in a
//! row are tolerated, as in Flink: the job runs on, and what the failed checkpoints staged
//! stays unpublished and is recorded in every later checkpoint until one completes and
//! publishes it, so a crash meanwhile still recovers it exactly once.

use std::time::Instant;

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::checkpoint::redact::redact;
use crate::checkpoint::{
    CheckpointSpec, CheckpointStore, JobState, Manifest, NewCheckpoint, OperatorState, Resume,
    SinkStates,
};
use crate::error::{Error, Result};
use crate::source::Position;
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
    /// Output staged and not yet published, oldest first: recorded in every checkpoint until
    /// one completes and publishes it.
    unpublished: SinkStates,
    /// Checkpoints failed in a row.
    failures: u32,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    task: JoinHandle<Result<Manifest>>,
    staged: SinkStates,
    /// Where every partition stood in this checkpoint (for sources' listeners).
    positions: Vec<Position>,
}

/// A checkpoint that is durable: what its sinks may publish, where its partitions stood.
#[derive(Debug)]
pub(super) struct Completed {
    pub staged: SinkStates,
    pub positions: Vec<Position>,
}

impl Checkpointer {
    /// Opens the store and reads the checkpoint to resume from, if any.
    pub async fn open(spec: &CheckpointSpec) -> Result<(Self, Option<Restored>)> {
        spec.validate()?;
        let store = CheckpointStore::open(&spec.location)?;
        let loaded = match spec.resume {
            Resume::Latest => store.load_latest().await?,
            Resume::Id(id) => {
                let loaded = store.load(id).await?;
                discard_newer(&store, id).await?;
                Some(loaded)
            }
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
            unpublished: SinkStates::default(),
            failures: 0,
        };
        // What killed runs left half-written goes now, not only after the next checkpoint,
        // which a job killed over and over may never reach.
        if let Err(e) = checkpointer.store.clear_incomplete().await {
            warn(&format!("cannot delete incomplete checkpoints: {e}"));
        }
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

    /// Whether every checkpoint taken so far is written and its output published.
    pub fn settled(&self) -> bool {
        self.in_flight.is_none() && self.unpublished.is_empty() && self.failures == 0
    }

    /// Starts writing the checkpoint of the current epoch: `job` with `states` as files, its
    /// sinks' output after what earlier checkpoints left unpublished. The previous write
    /// must be complete.
    pub fn start(
        &mut self,
        mut job: JobState,
        states: Vec<(usize, StateSnapshot)>,
        positions: Vec<Position>,
    ) -> Result<()> {
        if self.in_flight.is_some() {
            return Err(Error::Internal(
                "a checkpoint write is still in flight".into(),
            ));
        }
        let mut sinks = std::mem::take(&mut self.unpublished);
        sinks.append(std::mem::take(&mut job.sinks));
        job.sinks = sinks;
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
            // The checkpoint is complete: failing to delete old ones must not undo that.
            if let Err(e) = store.retain(retain).await {
                warn(&format!("cannot delete old checkpoints: {e}"));
            }
            Ok(manifest)
        });
        self.in_flight = Some(InFlight {
            id,
            task,
            staged,
            positions,
        });
        Ok(())
    }

    /// Waits for the write in flight (if any); returns what its sinks may now publish.
    /// A write that failed is counted (see [`Self::failed`]) and returns `None`.
    pub async fn complete(&mut self) -> Result<Option<Completed>> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(None);
        };
        let written = flight
            .task
            .await
            .map_err(|e| Error::Internal(format!("writing a checkpoint: {e}")))?;
        match written {
            Ok(_) => {
                self.last = Some(flight.id);
                Ok(Some(Completed {
                    staged: flight.staged,
                    positions: flight.positions,
                }))
            }
            Err(e) => {
                let what = format!("checkpoint {} was not written", flight.id);
                self.failed(&what, e, flight.staged).map(|()| None)
            }
        }
    }

    /// The sinks could not stage the current epoch's output (`staged` is what some did
    /// stage): the checkpoint is not taken, and the next one closes the next epoch.
    pub fn skip(&mut self, error: Error, staged: SinkStates) -> Result<()> {
        let what = format!("the sinks could not stage epoch {}", self.epoch);
        self.epoch += 1;
        self.due = Instant::now() + self.spec.interval;
        self.failed(&what, error, staged)
    }

    /// Everything the last complete checkpoint held is published.
    pub fn published(&mut self) {
        self.failures = 0;
    }

    /// A checkpoint failed (`what`, because of `error`), leaving `unpublished` to later
    /// ones. Fails the job once more than `tolerable_failures` failed in a row, or at once
    /// on a bug.
    pub fn failed(&mut self, what: &str, error: Error, unpublished: SinkStates) -> Result<()> {
        if matches!(error, Error::Internal(_)) {
            return Err(error);
        }
        self.unpublished.append(unpublished);
        self.failures += 1;
        let tolerable = self.spec.tolerable_failures;
        if self.failures > tolerable {
            return Err(Error::Checkpoint {
                location: redact(&self.spec.location),
                message: redact(&format!(
                    "{} checkpoints in a row failed, more than checkpoint.tolerable_failures \
                     = {tolerable}; the last: {what}: {error}",
                    self.failures
                )),
            });
        }
        warn(&format!(
            "{what} ({} of {tolerable} tolerable failures in a row; its output will be \
             published by a later checkpoint): {error}",
            self.failures
        ));
        Ok(())
    }
}

/// Says on stderr what went wrong without stopping the job, never quoting credentials.
/// Resuming from checkpoint `id` when newer ones exist starts the job over from `id`: the
/// sinks withdraw what the newer epochs published, so those checkpoints could never be
/// resumed from again, yet the next plain restart would pick the newest (and find its output
/// gone). They are deleted before any data moves, saying so.
async fn discard_newer(store: &CheckpointStore, id: u64) -> Result<()> {
    let newer: Vec<u64> = store
        .folders()
        .await?
        .into_iter()
        .filter(|&f| f > id)
        .collect();
    if newer.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = newer.iter().map(u64::to_string).collect();
    warn(&format!(
        "resuming from checkpoint {id} deletes the newer checkpoints {} (their output is \
         withdrawn)",
        names.join(", ")
    ));
    // Newest first: a crash midway leaves a consistent newest checkpoint, never a gap.
    for f in newer.into_iter().rev() {
        store.delete(f).await?;
    }
    Ok(())
}

fn warn(message: &str) {
    eprintln!("sluice: warning: {}", redact(message));
}

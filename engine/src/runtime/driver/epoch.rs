//! Epoch boundaries: the driver's side of a checkpoint (everything received processed, sinks'
//! output staged, state copied), publishing staged output once a checkpoint is complete, the
//! last checkpoint of a run, and resuming a fresh driver from a checkpoint.

use std::collections::BTreeMap;

use super::Driver;
use crate::checkpoint::{JobState, PartitionState, SinkStates};
use crate::error::{Error, Result};
use crate::runtime::checkpointer::Restored;
use crate::runtime::messages::SinkCommand;
use crate::runtime::sink_writer::SinkWriter;
use crate::sink::Staged;
use crate::source::Position;

impl Driver {
    /// Takes a checkpoint now: processes what was received, lets the watermark catch up,
    /// stages the sinks' output, copies operator state, and starts writing it. A sink that
    /// cannot stage fails the checkpoint, which the checkpointer counts.
    pub(super) async fn checkpoint(&mut self) -> Result<()> {
        if self.checkpointer.is_none() {
            return Ok(());
        }
        self.cut_all().await?;
        self.commit_ready();
        self.advance().await?;
        // One write in flight at most: sinks publish epochs in order.
        self.publish().await?;
        let epoch = match &self.checkpointer {
            Some(c) => c.epoch(),
            None => return Ok(()),
        };
        let mut failure = None;
        let sinks = SinkStates {
            output: prepare(Some(&self.out), epoch, &mut failure).await?,
            late: prepare(self.late.as_ref(), epoch, &mut failure).await?,
            dead_letter: prepare(self.dead.as_ref(), epoch, &mut failure).await?,
        };
        if let Some(error) = failure {
            return match &mut self.checkpointer {
                Some(c) => c.skip(error, sinks),
                None => Ok(()),
            };
        }
        let states = self.with_graph(|graph| graph.snapshot()).await?;
        let sources: BTreeMap<String, PartitionState> = (0..self.partitions)
            .map(|p| {
                let state = PartitionState {
                    position: self.positions[p],
                    max_ts: self.tracker.max_ts(p),
                };
                (self.names[p].clone(), state)
            })
            .collect();
        let job = JobState {
            job: self.job.clone(),
            sources,
            watermark: self.fired,
            operators: Vec::new(),
            sinks,
            counts: self.metrics.snapshot().into(),
        };
        match &mut self.checkpointer {
            Some(c) => c.start(job, states, self.positions.clone()),
            None => Ok(()),
        }
    }

    /// Waits for the checkpoint write in flight and publishes what its sinks staged. What
    /// cannot be published yet is left to the next checkpoint, which records it again.
    pub(super) async fn publish(&mut self) -> Result<()> {
        let Some(checkpointer) = &mut self.checkpointer else {
            return Ok(());
        };
        let Some(completed) = checkpointer.complete().await? else {
            return Ok(());
        };
        self.tell_sources(&completed.positions);
        let staged = completed.staged;
        let mut failure = None;
        let left = SinkStates {
            output: commit(Some(&self.out), staged.output, &mut failure).await?,
            late: commit(self.late.as_ref(), staged.late, &mut failure).await?,
            dead_letter: commit(self.dead.as_ref(), staged.dead_letter, &mut failure).await?,
        };
        let Some(checkpointer) = &mut self.checkpointer else {
            return Ok(());
        };
        match failure {
            None => {
                checkpointer.published();
                Ok(())
            }
            Some(error) => checkpointer.failed("publishing staged output failed", error, left),
        }
    }

    /// Tells the sources that listen ([`CheckpointListener`](crate::source::CheckpointListener))
    /// where their partitions
    /// stood in the checkpoint that just completed; their failures are warnings.
    fn tell_sources(&self, positions: &[Position]) {
        for (stream, listener) in &self.listeners {
            let own: Vec<(String, Position)> = (0..self.partitions)
                .filter(|&p| self.stream_of[p] == *stream)
                .filter_map(|p| Some((self.own_names.get(p)?.clone(), *positions.get(p)?)))
                .collect();
            if let Err(e) = listener.checkpoint_complete(&own) {
                eprintln!(
                    "sluice: warning: {}",
                    crate::checkpoint::redact::redact(&format!(
                        "a source could not record the completed checkpoint: {e}"
                    ))
                );
            }
        }
    }

    /// The last checkpoint of a run (the end of input, a graceful stop): taken, written and
    /// its output published, taken again every interval while it fails, until the job has
    /// failed more checkpoints in a row than it tolerates.
    pub(in crate::runtime) async fn finish(&mut self) -> Result<()> {
        loop {
            self.checkpoint().await?;
            self.publish().await?;
            match &self.checkpointer {
                Some(c) if !c.settled() => tokio::time::sleep(c.interval()).await,
                _ => return Ok(()),
            }
        }
    }

    /// Resumes from `restored`: watermarks, counters, then every sink publishes what that
    /// checkpoint staged and drops anything written after it. Operator state and source
    /// positions are restored before the driver exists (`runtime::run`).
    pub(in crate::runtime) async fn resume(&mut self, restored: Option<&Restored>) -> Result<()> {
        if self.checkpointer.is_none() {
            return Ok(());
        }
        let (epoch, sinks) = match restored {
            Some(r) => {
                for (p, name) in self.names.iter().enumerate() {
                    if let Some(saved) = r.job.sources.get(name) {
                        self.tracker.restore_partition(p, saved.max_ts);
                    }
                }
                self.tracker.restore_current(r.job.watermark);
                self.fired = r.job.watermark;
                self.metrics.set_watermark(r.job.watermark);
                self.metrics.restore_counts(&r.job.counts);
                (r.epoch, r.job.sinks.clone())
            }
            // A fresh start still clears what a run that never completed a checkpoint left.
            None => (0, SinkStates::default()),
        };
        recover(Some(&self.out), epoch, sinks.output).await?;
        recover(self.late.as_ref(), epoch, sinks.late).await?;
        recover(self.dead.as_ref(), epoch, sinks.dead_letter).await
    }
}

/// What the sink staged for `epoch`; a sink that could not stage sets `failure` (the first
/// one is kept) and stages nothing. `Err`: the sink stopped.
async fn prepare(
    writer: Option<&SinkWriter>,
    epoch: u64,
    failure: &mut Option<Error>,
) -> Result<Vec<Staged>> {
    let Some(writer) = writer else {
        return Ok(Vec::new());
    };
    match writer
        .ask(|reply| SinkCommand::Prepare(epoch, reply))
        .await?
    {
        Ok(staged) => Ok(staged.into_iter().collect()),
        Err(e) => {
            failure.get_or_insert(e);
            Ok(Vec::new())
        }
    }
}

/// Publishes `staged` in order and returns what is left unpublished: everything from the
/// first failure on, which sets `failure`. `Err`: the sink stopped.
async fn commit(
    writer: Option<&SinkWriter>,
    staged: Vec<Staged>,
    failure: &mut Option<Error>,
) -> Result<Vec<Staged>> {
    let Some(writer) = writer else {
        return if staged.is_empty() {
            Ok(Vec::new())
        } else {
            Err(Error::Internal(
                "staged output for a sink the job lacks".into(),
            ))
        };
    };
    for (i, s) in staged.iter().enumerate() {
        let answer = writer
            .ask(|reply| SinkCommand::Commit(s.clone(), reply))
            .await?;
        if let Err(e) = answer {
            failure.get_or_insert(e);
            return Ok(staged[i..].to_vec());
        }
    }
    Ok(Vec::new())
}

async fn recover(writer: Option<&SinkWriter>, epoch: u64, staged: Vec<Staged>) -> Result<()> {
    match writer {
        Some(w) => {
            w.ask(|reply| SinkCommand::Recover(epoch, staged, reply))
                .await
        }
        None => Ok(()),
    }
}

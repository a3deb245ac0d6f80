//! Epoch boundaries: the driver's side of a checkpoint (everything received processed, state
//! copied, sinks' output staged), publishing staged output once a checkpoint is complete, and
//! resuming a fresh driver from a checkpoint.

use std::collections::BTreeMap;

use super::checkpointer::Restored;
use super::driver::Driver;
use super::sink_writer::{SinkCommand, SinkWriter};
use crate::checkpoint::{JobState, PartitionState, SinkStates};
use crate::error::{Error, Result};
use crate::sink::Staged;

impl Driver {
    /// Takes a checkpoint now: processes what was received, lets the watermark catch up,
    /// copies operator state, stages the sinks' output, and starts writing it.
    pub(super) async fn checkpoint(&mut self) -> Result<()> {
        if self.checkpointer.is_none() {
            return Ok(());
        }
        self.cut_all().await?;
        self.commit_ready();
        self.advance().await?;
        // One write in flight at most: sinks publish epochs in order.
        self.publish().await?;
        let states = self.with_graph(|graph| graph.snapshot()).await?;
        let epoch = match &self.checkpointer {
            Some(c) => c.epoch(),
            None => return Ok(()),
        };
        let sinks = SinkStates {
            output: prepare(Some(&self.out), epoch).await?,
            late: prepare(self.late.as_ref(), epoch).await?,
            dead_letter: prepare(self.dead.as_ref(), epoch).await?,
        };
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
            Some(c) => c.start(job, states),
            None => Ok(()),
        }
    }

    /// Waits for the checkpoint write in flight and publishes what its sinks staged.
    pub(super) async fn publish(&mut self) -> Result<()> {
        let Some(checkpointer) = &mut self.checkpointer else {
            return Ok(());
        };
        let Some(staged) = checkpointer.complete().await? else {
            return Ok(());
        };
        commit(Some(&self.out), staged.output).await?;
        commit(self.late.as_ref(), staged.late).await?;
        commit(self.dead.as_ref(), staged.dead_letter).await
    }

    /// Resumes from `restored`: watermarks, counters, then every sink publishes what that
    /// checkpoint staged and drops anything written after it. Operator state and source
    /// positions are restored before the driver exists (`runtime::run`).
    pub(super) async fn resume(&mut self, restored: Option<&Restored>) -> Result<()> {
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

async fn prepare(writer: Option<&SinkWriter>, epoch: u64) -> Result<Vec<Staged>> {
    match writer {
        Some(w) => Ok(w
            .ask(|reply| SinkCommand::Prepare(epoch, reply))
            .await?
            .into_iter()
            .collect()),
        None => Ok(Vec::new()),
    }
}

async fn commit(writer: Option<&SinkWriter>, staged: Vec<Staged>) -> Result<()> {
    let Some(writer) = writer else {
        return if staged.is_empty() {
            Ok(())
        } else {
            Err(Error::Internal(
                "staged output for a sink the job lacks".into(),
            ))
        };
    };
    for s in staged {
        writer.send(SinkCommand::Commit(s)).await?;
    }
    Ok(())
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
